"""The real process types: gunicorn API and Dramatiq workers on a real Redis, as `ringspot up` runs them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import pytest
import requests

from ringspot.core import auth
from ringspot.core.db import connect
from ringspot.core.utils import new_id

from ..conftest import ROOT, VENV_BIN, free_port, wait_port


class Stack:
    def __init__(self, url: str, env: dict, db, data_path: str, log):
        self.url, self.env, self.db, self.data_path, self.log = url, env, db, data_path, log
        self.session = requests.Session()
        self.workers: list[subprocess.Popen] = []

    def start_worker(self) -> subprocess.Popen:
        """One more worker pool on every queue, as a Procfile ``worker-*`` line would run it."""
        worker = _start(
            [str(VENV_BIN / "dramatiq"), "ringspot.workers.app", "--processes", "1", "--threads", "2"],
            self.env,
            self.log,
        )
        self.workers.append(worker)
        return worker

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=30, **kwargs)

    def wait_process(self, process_id: str, states=("complete",), timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            doc = self.call("GET", f"/api/processes/{process_id}").json()
            if doc["state"] in states:
                return doc
            if doc["state"] in ("error", "cancelled", "complete"):
                raise AssertionError(f"process ended in {doc['state']}: {doc.get('error')}")
            time.sleep(0.2)
        raise AssertionError(f"process {process_id} still {doc['state']} after {timeout} s")


def _start(argv, env, log):
    return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_stack(database_server: str, broker_url: str, tmp, **extra_env: str):
    """API (gunicorn) + one worker pool for every queue, against nx-27017 and ``broker_url``."""
    port = free_port()
    name = f"stack_{new_id()}"
    env = {
        **os.environ,
        "MONGODB_URI": f"{database_server}/{name}",
        "BROKER_URL": broker_url,
        "DATA_PATH": str(tmp / "data"),
        "RINGSPOT_PORT": str(port),
        "RINGSPOT_API_URL": f"http://127.0.0.1:{port}",
        **extra_env,
    }
    if broker_url.startswith("redis://"):
        env["REDIS_URL"] = broker_url
    log = open(tmp / "stack.log", "wb")  # noqa: SIM115  (the stack writes to it until the test stops it)
    web = _start(
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
        env,
        log,
    )
    db = connect(env["MONGODB_URI"])
    stack = Stack(f"http://127.0.0.1:{port}", env, db, env["DATA_PATH"], log)
    try:
        stack.start_worker()
        wait_port(port)
        auth.create_user(db, "admin", "hunter2hunter2", administrator=True)
        _, key = auth.create_api_key(db, db.users.find_one({"_id": "admin"}), "stack", {})
        stack.session.auth = ("admin", key)
        yield stack
    finally:
        stop_process_group(web)
        for proc in stack.workers:
            stop_process_group(proc)
        log.close()
        print((tmp / "stack.log").read_text()[-3000:])


@pytest.fixture(scope="module")
def stack(database_server, redis_server, tmp_path_factory):
    with running_stack(
        database_server, redis_server, tmp_path_factory.mktemp("stack"), RINGSPOT_HEARTBEAT_TIMEOUT="10"
    ) as stack:
        yield stack
