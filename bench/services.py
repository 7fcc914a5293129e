"""Private services for the stack benchmarks: nx-27017, Redis, gunicorn, a dramatiq worker.

Every process runs in its own session (so a Ctrl-C in the terminal reaches only the
benchmark) and is stopped by ``Services.close``: TERM to its process group, KILL after a
grace period. ``Services`` is a context manager, and SIGTERM/SIGHUP are turned into an
exception so that a killed benchmark still leaves nothing behind; the temporary
directory (database files, logs) goes last.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


_TICKS = os.sysconf("SC_CLK_TCK")


def groups_cpu_seconds(pgids) -> dict[int, float]:
    """CPU seconds used by each process group (Linux /proc): user + system time of its live
    processes and of the children they have reaped (bowtie2 under a worker)."""
    totals = dict.fromkeys(pgids, 0)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) in totals:
            totals[int(fields[2])] += sum(int(f) for f in fields[11:15])
    return {pgid: total / _TICKS for pgid, total in totals.items()}


class Terminated(Exception):
    """The benchmark got SIGTERM or SIGHUP."""


def run(main, *args) -> None:
    """Run a benchmark's ``main``; an interruption exits quietly once its services are stopped."""
    try:
        main(*args)
    except (KeyboardInterrupt, Terminated) as stop:
        print(f"\ninterrupted ({str(stop) or 'SIGINT'}); every service started was stopped", file=sys.stderr)
        sys.exit(130)


def _raise_terminated(signum, frame):
    raise Terminated(signal.Signals(signum).name)


class Services:
    def __init__(self, name: str):
        self.tmp = tempfile.TemporaryDirectory(prefix=f"ringspot-{name}-")
        self.path = Path(self.tmp.name)
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def __enter__(self) -> Services:
        # SIGINT too, even when the shell that started us ignores it (a background job).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _raise_terminated)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def log(self, name: str) -> Path:
        return self.path / f"{name}.log"

    def start(self, name: str, argv: list[str], env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
        with open(self.log(name), "ab") as log:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs.append((name, proc))
        return proc

    def wait_port(self, name: str, port: int, timeout: float = 30) -> None:
        proc = dict(self.procs)[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")
            if port_open(port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{name} not listening on {port} after {timeout} s:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 20) -> str:
        try:
            return "\n".join(self.log(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def database(self) -> str:
        """A private nx-27017 on a free port; returns its base URI (no database name)."""
        port = free_port()
        data = self.path / "db"
        data.mkdir()
        self.start(
            "db",
            [
                str(VENV_BIN / "nx-27017"),
                "--data-dir",
                str(data),
                "-p",
                str(port),
                "--log-file",
                str(self.path / "nx-27017.log"),
                "--pid-file",
                str(self.path / "db.pid"),
            ],
        )
        self.wait_port("db", port)
        return f"mongodb://127.0.0.1:{port}"

    def redis(self) -> str:
        port = free_port()
        data = self.path / "redis"
        data.mkdir()
        self.start(
            "redis",
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data),
            ],
        )
        self.wait_port("redis", port)
        return f"redis://127.0.0.1:{port}/0"

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each service (all processes of its group)."""
        used = groups_cpu_seconds(proc.pid for _, proc in self.procs)
        return {name: used[proc.pid] for name, proc in self.procs}

    def close_one(self, name: str, grace: float = 10.0) -> None:
        """Stop one service early (TERM, then KILL after ``grace`` seconds)."""
        proc = dict(self.procs)[name]
        self.procs = [(n, p) for n, p in self.procs if n != name]
        _signal_group(proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
        _signal_group(proc, signal.SIGKILL)
        proc.wait()

    def close(self, grace: float = 10.0) -> None:
        """Stop everything, last started first (workers and web before Redis and the database)."""
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            procs, self.procs = list(reversed(self.procs)), []
            for _, proc in procs:
                _signal_group(proc, signal.SIGTERM)
            deadline = time.monotonic() + grace
            for _, proc in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
                # The group too: gunicorn and dramatiq workers are children of their masters.
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            self.tmp.cleanup()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def follow_job(db, job_id: str, start: float, poll: float = 0.02, what: str = "job") -> tuple[float, dict[str, float]]:
    """Wait for a job by reading its process document; returns (seconds since ``start``, seconds per step).

    ``start`` is a ``time.perf_counter()`` taken before the request that created the job.
    """
    steps: dict[str, float] = {}
    current, since = None, start
    while True:
        doc = db.processes.find_one({"_id": job_id}, {"state": 1, "step": 1, "error": 1})
        now = time.perf_counter()
        if doc["state"] == "running" and doc.get("step") != current:
            if current is not None:
                steps[current] = now - since
            current, since = doc.get("step"), now
        if doc["state"] in ("complete", "error", "cancelled"):
            if doc["state"] != "complete":
                raise SystemExit(f"{what} ended in {doc['state']}: {doc.get('error')}")
            steps[current] = now - since
            return now - start, steps
        time.sleep(poll)


def stack_env(services: Services, port: int, **extra: str) -> dict:
    """The environment of a private API and its workers: this run's database, Redis and file store."""
    mongo, redis_url = services.database(), services.redis()
    env = {
        **os.environ,
        "MONGODB_URI": f"{mongo}/bench",
        "REDIS_URL": redis_url,
        "BROKER_URL": redis_url,
        "DATA_PATH": str(services.path / "data"),
        "RINGSPOT_PORT": str(port),
        "RINGSPOT_API_URL": f"http://127.0.0.1:{port}",
        "RINGSPOT_PROC": "2",
        **extra,
    }
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def start_web(services: Services, env: dict, cwd: Path) -> None:
    """The API as the Procfile's ``web`` line runs it (2 workers x 4 threads)."""
    port = int(env["RINGSPOT_PORT"])
    services.start(
        "web",
        [
            str(VENV_BIN / "gunicorn"),
            "--workers",
            "2",
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            "ringspot.api:create_app()",
        ],
        env=env,
        cwd=cwd,
    )
    services.wait_port("web", port)


def start_worker(services: Services, env: dict, cwd: Path, *queues: str, name: str = "worker", nice: int = 0) -> None:
    """One worker pool (1 process, 1 thread) on ``queues``; ``name`` names the service and its log,
    so several pools can run side by side; ``nice`` as the Procfile gives tool-heavy pools."""
    services.start(
        name,
        [
            "nice",
            "-n",
            str(nice),
            str(VENV_BIN / "dramatiq"),
            "ringspot.workers.app",
            "--processes",
            "1",
            "--threads",
            "1",
            "--queues",
            *queues,
        ],
        env=env,
        cwd=cwd,
    )


def bench_user(db) -> tuple[str, str]:
    """An administrator with an API key holding every permission: (user id, raw key)."""
    from ringspot.core import auth

    auth.create_user(db, "bench", "bench-password-1", administrator=True)
    _, key = auth.create_api_key(db, db.users.find_one({"_id": "bench"}), "bench", {p: True for p in auth.PERMISSIONS})
    return "bench", key
