"""Run Procfile process types (and the embedded services) under one supervisor.

Each child runs in its own process group; its output is prefixed with its name.
Ctrl-C or SIGTERM stops them all (TERM, then KILL after a grace period); if one
exits on its own the others are stopped too, so a broken stack never half-runs.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

COLORS = ("cyan", "magenta", "green", "yellow", "blue", "red")
STOP_GRACE = 10.0


@dataclass
class Command:
    name: str
    argv: list[str]


def read_procfile(path: Path, env: dict) -> list[Command]:
    """``name: command`` lines; ``$VAR`` and ``${VAR:-default}`` are expanded from ``env``."""
    commands = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, command = line.partition(":")
        if not sep or not name.strip() or not command.strip():
            raise ValueError(f"{path}:{number}: expected 'name: command', got {line!r}")
        commands.append(Command(name.strip(), shlex.split(expand(command.strip(), env))))
    return commands


def expand(text: str, env: dict) -> str:
    """Shell-style ``${VAR:-default}`` and ``$VAR`` expansion without a shell."""
    import re

    def replace(match):
        name, default = match.group(1) or match.group(3), match.group(2)
        return env.get(name) or (default or "")

    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)", replace, text)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return True
        time.sleep(0.1)
    return False


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def database_command(uri: str, data_path: Path) -> Command:
    host, port = host_port(uri, 27017)
    db_dir = data_path / "db"
    db_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        _venv_bin("nx-27017"),
        "--data-dir",
        str(db_dir),
        "--host",
        host,
        "-p",
        str(port),
        "--log-file",
        str(data_path / "logs" / "db.log"),
        "--pid-file",
        str(data_path / "db.pid"),
    ]
    return Command("db", argv)


def redis_command(url: str, data_path: Path) -> Command:
    host, port = host_port(url, 6379)
    redis_dir = data_path / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    # Append-only file: queued messages survive a restart of the embedded Redis.
    argv = [
        "redis-server",
        "--bind",
        host,
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--dir",
        str(redis_dir),
    ]
    return Command("redis", argv)


def _venv_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


class Supervisor:
    def __init__(self, env: dict, log=print):
        # Procfile commands (and ``env ... dramatiq``) find this installation's programs first.
        venv_bin = str(Path(sys.executable).parent)
        self.env = {**env, "PATH": os.pathsep.join([venv_bin, env.get("PATH", os.defpath)])}
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = threading.Event()
        self.log = log
        self.lock = threading.Lock()

    def start(self, command: Command) -> subprocess.Popen:
        argv = [_venv_bin(command.argv[0])] + command.argv[1:]
        proc = subprocess.Popen(
            argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.children[command.name] = proc
        color = COLORS[len(self.children) % len(COLORS)]
        threading.Thread(target=self._relay, args=(command.name, proc, color), daemon=True).start()
        return proc

    def _relay(self, name: str, proc: subprocess.Popen, color: str) -> None:
        for raw in proc.stdout:
            with self.lock:
                self.log(f"[{color}]{name:>20}[/{color}] | {raw.decode(errors='replace').rstrip()}")

    def watch(self) -> int:
        """Block until a stop is requested or a child dies; returns the exit status to use."""
        while not self.stopping.wait(0.5):
            for name, proc in self.children.items():
                if proc.poll() is not None:
                    self.log(f"[red]{name} exited with code {proc.returncode}; stopping everything[/red]")
                    self.stop()
                    return 1
        return 0

    def stop(self) -> None:
        self.stopping.set()
        # Workers and web first, the database and Redis last, so in-flight work can finish writing.
        order = [n for n in self.children if n not in ("db", "redis")] + [
            n for n in ("redis", "db") if n in self.children
        ]
        for name in order:
            self._signal(self.children[name], signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for name in order:
            proc = self.children[name]
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait()

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
