"""Machines made of network namespaces: each host its own network stack, wired by bridges.

Two networks, as a lab would wire them: the *database* network (MongoDB) joins only the database
host and the API hosts; the *service* network (the broker, the object store, the API) joins every
host. Job workers sit on the service network only, so they cannot reach MongoDB even if they
tried. The test itself (the root namespace) has an address on both, as an operator's shell would.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from ringspot.core.utils import new_id


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


def namespaces_available() -> str | None:
    """None where namespaces and bridges can be made here, else why not."""
    probe = f"rsprobe{new_id(4)}"
    try:
        run("ip", "netns", "add", probe)
        run("ip", "netns", "del", probe)
        run("ip", "link", "add", probe[:15], "type", "bridge")
        run("ip", "link", "del", probe[:15])
    except FileNotFoundError:
        return "the ip command (iproute2) is not installed"
    except subprocess.CalledProcessError as error:
        return f"network namespaces cannot be made here ({error.stderr.strip() or error}); the test needs root"
    return None


@dataclass
class Host:
    name: str
    namespace: str
    addresses: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self, argv: list[str], env: dict, log_path) -> subprocess.Popen:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.namespace, *argv],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def pids(self) -> list[int]:
        """Every process running in this host's namespace, tools included."""
        found = subprocess.run(["ip", "netns", "pids", self.namespace], capture_output=True, text=True).stdout
        return [int(pid) for pid in found.split()]

    def kill_everything(self) -> int:
        """SIGKILL every process on the host, as a machine that loses power; how many there were."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        return len(pids)

    def can_reach(self, address: str, port: int) -> bool:
        probe = f"import socket; socket.create_connection(({address!r}, {port}), timeout=2).close()"
        argv = ["ip", "netns", "exec", self.namespace, sys.executable, "-c", probe]
        done = subprocess.run(argv, capture_output=True)
        return done.returncode == 0


class Network:
    """Bridges in the root namespace, one namespace per host, veth pairs between them."""

    def __init__(self) -> None:
        self.tag = new_id(4)
        # A subnet per run, so runs side by side on one machine do not collide.
        octet = random.randint(1, 250)
        self.subnets = {"database": f"10.231.{octet}", "service": f"10.232.{octet}"}
        self.bridges = {net: f"rsbr{self.tag}{net[0]}" for net in self.subnets}
        self.hosts: dict[str, Host] = {}
        self._next = dict.fromkeys(self.subnets, 1)
        for net, bridge in self.bridges.items():
            run("ip", "link", "add", bridge, "type", "bridge")
            run("ip", "addr", "add", f"{self.subnets[net]}.254/24", "dev", bridge)
            run("ip", "link", "set", bridge, "up")

    def root_address(self, net: str) -> str:
        return f"{self.subnets[net]}.254"

    def add_host(self, name: str, *nets: str) -> Host:
        host = Host(name, f"rs{self.tag}{name}")
        run("ip", "netns", "add", host.namespace)
        run("ip", "netns", "exec", host.namespace, "ip", "link", "set", "lo", "up")
        for net in nets:
            number = self._next[net]
            self._next[net] += 1
            outside, inside = f"v{self.tag}{name[:3]}{net[0]}", f"eth{net[0]}"
            run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside, "netns", host.namespace)
            run("ip", "link", "set", outside, "master", self.bridges[net])
            run("ip", "link", "set", outside, "up")
            address = f"{self.subnets[net]}.{number}"
            run("ip", "netns", "exec", host.namespace, "ip", "addr", "add", f"{address}/24", "dev", inside)
            run("ip", "netns", "exec", host.namespace, "ip", "link", "set", inside, "up")
            host.addresses[net] = address
        self.hosts[name] = host
        return host

    def close(self) -> None:
        for host in self.hosts.values():
            host.kill_everything()
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True)
        for bridge in self.bridges.values():
            subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def wait_listening(address: str, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listening on {address}:{port} after {timeout} s")
