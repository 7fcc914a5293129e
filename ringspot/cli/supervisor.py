"""Run Procfile process types (and the embedded services) under one supervisor.

Each child runs in its own process group; its output is prefixed with its name.
A child that exits on its own is logged and restarted with backoff while the others
keep running (a crashed worker pool, a Redis or database restart: the API answers
503 meanwhile). Ctrl-C or SIGTERM stops them in order (TERM, then KILL after a grace
period): workers and the scheduler, then the API, then Redis and the database.
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


#: Seconds before the first restart of a child that exited; doubled after each quick exit, capped.
FIRST_RESTART_DELAY, MAX_RESTART_DELAY = 1.0, 30.0
#: A child that ran this long before exiting is restarted after the first delay again.
STABLE_AFTER = 60.0
#: Stop order: workers, the scheduler and anything else first, then the API, then the services
#: they all write to, so in-flight work can finish writing and nothing logs a lost connection.
SERVICES = ("redis", "db")
WEB = ("web",)


@dataclass
class Child:
    command: Command
    proc: subprocess.Popen
    started_at: float
    delay: float = FIRST_RESTART_DELAY
    restart_at: float | None = None


class Supervisor:
    """Keeps every child running: one that exits while the stack is up is restarted with backoff."""

    def __init__(self, env: dict, log=print):
        # Procfile commands (and ``env ... dramatiq``) find this installation's programs first.
        venv_bin = str(Path(sys.executable).parent)
        self.env = {**env, "PATH": os.pathsep.join([venv_bin, env.get("PATH", os.defpath)])}
        self.children: dict[str, Child] = {}
        self.stopping = threading.Event()
        self.log = log
        self.lock = threading.Lock()

    def start(self, command: Command) -> subprocess.Popen:
        argv = [_venv_bin(command.argv[0])] + command.argv[1:]
        proc = subprocess.Popen(
            argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        previous = self.children.get(command.name)
        child = Child(command, proc, time.monotonic())
        if previous is not None:
            child.delay = previous.delay
        self.children[command.name] = child
        color = COLORS[list(self.children).index(command.name) % len(COLORS)]
        threading.Thread(target=self._relay, args=(command.name, proc, color), daemon=True).start()
        self._say(f"[dim]{command.name} started (pid {proc.pid})[/dim]")
        return proc

    def _say(self, text: str) -> None:
        with self.lock:
            self.log(text)

    def _relay(self, name: str, proc: subprocess.Popen, color: str) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self._say(f"[{color}]{name:>20}[/{color}] | {raw.decode(errors='replace').rstrip()}")

    def watch(self) -> int:
        """Restart children that exit until a stop is requested; returns the exit status to use."""
        while not self.stopping.wait(0.5):
            for name, child in list(self.children.items()):
                self._look_after(name, child)
        return 0

    def _look_after(self, name: str, child: Child) -> None:
        if child.restart_at is None:
            if child.proc.poll() is None:
                return
            ran_for = time.monotonic() - child.started_at
            if ran_for >= STABLE_AFTER:
                child.delay = FIRST_RESTART_DELAY
            child.restart_at = time.monotonic() + child.delay
            self._say(
                f"[red]{name} exited with code {child.proc.returncode} after {ran_for:.0f} s; "
                f"restarting in {child.delay:.0f} s[/red]"
            )
        elif time.monotonic() >= child.restart_at and not self.stopping.is_set():
            delay = min(child.delay * 2, MAX_RESTART_DELAY)
            self.start(child.command)
            self.children[name].delay = delay

    def stop(self) -> None:
        """Stop in order: workers and the scheduler, then the API, then Redis and the database."""
        self.stopping.set()
        names = list(self.children)
        first = [n for n in names if n not in SERVICES + WEB]
        for group in (first, [n for n in WEB if n in names], [n for n in SERVICES if n in names]):
            self._stop_group(group)

    def _stop_group(self, names: list[str]) -> None:
        """TERM every child of the group, wait for them all (KILL after the grace period)."""
        running = [n for n in names if self.children[n].proc.poll() is None]
        if not running:
            return
        self._say(f"[dim]stopping {', '.join(running)}[/dim]")
        for name in running:
            self._signal(self.children[name].proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for name in running:
            proc = self.children[name].proc
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self._say(f"[yellow]{name} still running after {STOP_GRACE:.0f} s; killing it[/yellow]")
                self._signal(proc, signal.SIGKILL)
                proc.wait()
            self._say(f"[dim]{name} stopped[/dim]")

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
