"""API replicas as the Procfile's ``web`` line runs them: gunicorn, its metrics hooks, real ports."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import requests

from ..conftest import ROOT, VENV_BIN, free_port, wait_for, wait_port


class Web:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        # A new connection per call, so the kernel hands calls to any of the workers.
        headers = {"Connection": "close", **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def start_web(env: dict, folder: Path, *, workers: int = 2) -> Web:
    """One ``web`` replica on a port of its own, with its own metrics folder."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **env,
        "RINGSPOT_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(folder / f"metrics-{port}"),
    }
    argv = [
        str(VENV_BIN / "gunicorn"),
        "-c",
        "python:ringspot.api.gunicorn_conf",
        "--workers",
        str(workers),
        "--threads",
        "4",
        "--bind",
        f"127.0.0.1:{port}",
        "ringspot.api:create_app()",
    ]
    log = folder / f"web-{port}.log"
    with open(log, "ab") as handle:
        proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    wait_port(port, timeout=60)
    web = Web(proc, f"http://127.0.0.1:{port}", log)
    wait_for(lambda: _answers(web), timeout=60, message=f"the web replica on port {port} (log: {log})")
    return web


def _answers(web: Web) -> bool:
    if web.proc.poll() is not None:
        raise AssertionError(f"gunicorn exited with {web.proc.returncode}: {web.log.read_text()[-2000:]}")
    try:
        return web.call("GET", "/metrics").status_code == 200
    except requests.ConnectionError:
        return False
