"""Faults under ``ringspot up`` itself: the supervisor restarts what dies and the rest keeps serving.

One stack (its own nx-27017 and Redis, the API, the reference and index pools, the scheduler),
started as an operator starts it. A worker process killed mid-build: the API answers throughout
and the job runs again within 60 s and finishes once. The Redis child stopped: the API answers
503 with a message, Redis comes back by itself, and the builds queued before it run. Ctrl-C then
stops everything in order without a traceback.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pymongo
import pytest
import requests

from ringspot.core import auth

from ..conftest import DATA, ROOT, VENV_BIN, free_port, wait_for, wait_port

SMALL = DATA / "reference" / "example-20otus.reference.json.gz"
PROCESS_TYPES = ("web", "worker-references", "worker-indexes", "scheduler")
#: From the kill to the second run's claim, with the default heartbeat timeouts (30 s).
RERUN_WITHIN = 60


class UpStack:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        port, db_port, redis_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "MONGODB_URI": f"mongodb://127.0.0.1:{db_port}/up_faults",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "DATA_PATH": str(tmp / "data"),
            "RINGSPOT_PORT": str(port),
            "RINGSPOT_API_URL": self.url,
        }
        self.log_path = tmp / "up.log"
        only = [arg for name in PROCESS_TYPES for arg in ("--only", name)]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "ringspot"), "up", *only],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_port(db_port, timeout=60)
        wait_port(port, timeout=60)
        # A client of its own, closed before the stop (nx-27017 logs connections open at its exit as errors).
        self.mongo = pymongo.MongoClient(self.env["MONGODB_URI"], serverSelectionTimeoutMS=5000)
        self.db = self.mongo.get_default_database()
        auth.create_user(self.db, "admin", "hunter2hunter2", administrator=True)
        _, key = auth.create_api_key(self.db, self.db.users.find_one({"_id": "admin"}), "up", {})
        self.session = requests.Session()
        self.session.auth = ("admin", key)
        wait_for(lambda: self.log().count("ready for action") >= 2, timeout=90, message="worker pools")
        wait_for(self.answers, timeout=60, interval=0.5, message="the API")

    def answers(self) -> bool:
        try:
            return self.session.get(self.url + "/api/processes", timeout=10).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pid_of(self, name: str) -> int:
        """The latest pid the supervisor logged for process type ``name``."""
        return int(re.findall(rf"{name} started \(pid (\d+)\)", self.log())[-1])

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=30, **kwargs)

    def process(self, process_id: str) -> dict:
        response = self.call("GET", f"/api/processes/{process_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_complete(self, process_id: str, timeout: float = 120) -> dict:
        wait_for(lambda: self.process(process_id)["state"] != "waiting", timeout=timeout, interval=0.2)
        wait_for(lambda: self.process(process_id)["state"] in ("complete", "error"), timeout=timeout, interval=0.2)
        doc = self.process(process_id)
        assert doc["state"] == "complete", doc
        return doc

    def stop(self) -> str:
        self.mongo.close()
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(90)
        return self.log()


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    stack = UpStack(tmp_path_factory.mktemp("up-faults"))
    yield stack
    if stack.proc.poll() is None:
        stack.stop()
    print(stack.log()[-4000:])


def upload_reference(up: UpStack) -> str:
    with open(SMALL, "rb") as handle:
        upload = up.call("POST", "/api/uploads", params={"name": SMALL.name, "type": "reference"}, data=handle)
    assert upload.status_code == 201, upload.text
    return upload.json()["id"]


def start_import(up: UpStack, name: str, upload_id: str) -> requests.Response:
    return up.call("POST", "/api/refs", json={"name": name, "data_type": "genome", "import_from": upload_id})


def import_reference(up: UpStack, name: str) -> dict:
    created = start_import(up, name, upload_reference(up))
    assert created.status_code == 201, created.text
    up.wait_complete(created.json()["process"]["id"])
    return created.json()


def build(up: UpStack, ref_id: str) -> dict:
    response = up.call("POST", f"/api/refs/{ref_id}/indexes")
    assert response.status_code == 201, response.text
    return response.json()


def assert_built_once(up: UpStack, index: dict) -> None:
    job = up.wait_complete(index["job"]["id"], timeout=180)
    states = [s["state"] for s in up.db.processes.find_one({"_id": job["id"]})["status"]]
    assert states.count("complete") == 1
    assert up.call("GET", f"/api/indexes/{index['id']}").json()["ready"] is True


def worker_processes(pool_pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pool_pid)], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def seconds_to_503(call) -> float:
    started = time.monotonic()
    response = call()
    assert response.status_code == 503, response.text
    assert response.json()["id"] == "service_unavailable"
    return time.monotonic() - started


@pytest.mark.parametrize("service", ["db", "redis"])
def test_a_hung_service_gives_503_within_5_s_and_recovers(up, service):
    upload_id = upload_reference(up)
    logged_before = len(up.log())
    os.kill(up.pid_of(service), signal.SIGSTOP)  # hung, not refusing: connections open, no answers
    try:
        if service == "db":
            waited = seconds_to_503(lambda: up.call("GET", "/api/processes"))
        else:
            waited = seconds_to_503(lambda: start_import(up, "During the hang", upload_id))
    finally:
        os.kill(up.pid_of(service), signal.SIGCONT)
    print(f"503 {waited:.1f} s into a hung {service}")
    assert waited < 5
    wait_for(lambda: start_import(up, "After the hang", upload_id).status_code == 201, timeout=30, interval=0.5)
    time.sleep(3)  # what the pools logged during the hang has reached the log
    assert "Traceback" not in up.log()[logged_before:], up.log()[logged_before:][-3000:]


def test_a_worker_killed_mid_build_is_replaced_and_the_job_reruns_once(up):
    ref = import_reference(up, "Killed mid-build")
    pool = up.pid_of("worker-indexes")
    index = build(up, ref["id"])
    job_id = index["job"]["id"]
    wait_for(lambda: up.process(job_id)["state"] == "running", timeout=60, interval=0.02, message="the build to run")
    for pid in worker_processes(pool):
        os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()

    # The API answers throughout; the supervisor starts the pool again; the job reruns once.
    answers = []
    while up.process(job_id)["attempts"] < 2:
        answers.append(up.call("GET", "/api/processes").status_code)
        assert time.monotonic() - killed_at < RERUN_WITHIN, up.log()[-3000:]
        time.sleep(0.5)
    print(f"rerun claimed {time.monotonic() - killed_at:.1f} s after the kill")
    assert set(answers) == {200}
    assert up.pid_of("worker-indexes") != pool
    assert re.search(r"worker-indexes exited with code -?\d+ after \d+ s; restarting in 1 s", up.log())
    assert_built_once(up, index)
    assert up.process(job_id)["attempts"] == 2


def test_redis_stopped_gives_503_then_recovers_and_runs_what_was_queued(up):
    refs = [import_reference(up, f"Queued {n}") for n in range(2)]
    indexes = [build(up, ref["id"]) for ref in refs]  # one pool thread: the second waits in Redis
    os.kill(up.pid_of("redis"), signal.SIGTERM)
    stopped_at = time.monotonic()

    upload_id = upload_reference(up)
    answers: list[requests.Response] = []
    wait_for(
        lambda: answers.append(start_import(up, "During the outage", upload_id)) or answers[-1].status_code == 503,
        timeout=10,
        interval=0.02,
        message="a 503 while Redis is down",
    )
    body = answers[-1].json()
    assert body["id"] == "service_unavailable" and "unavailable" in body["message"]
    wait_for(lambda: re.search(r"redis exited with code \d+ after \d+ s; restarting", up.log()), timeout=5)

    # Redis is back by itself: the queued builds run once each and new work is accepted.
    wait_for(lambda: start_import(up, "After the outage", upload_id).status_code == 201, timeout=30, interval=0.5)
    for index in indexes:
        assert_built_once(up, index)
    print(f"queued builds done {time.monotonic() - stopped_at:.1f} s after Redis stopped")
    assert up.db.indexes.count_documents({"reference.id": {"$in": [r["id"] for r in refs]}}) == 2
    # A refused request created nothing (one sent before Redis went down may have been accepted).
    accepted = sum(answer.status_code == 201 for answer in answers)
    assert up.db.refs.count_documents({"name": "During the outage"}) == accepted


def test_an_upload_shorter_than_its_content_length_is_refused_and_nothing_is_stored(up):
    before = up.db.uploads.count_documents({})
    with socket.create_connection(("127.0.0.1", int(up.url.rsplit(":", 1)[1])), timeout=60) as conn:
        user, key = up.session.auth
        token = base64.b64encode(f"{user}:{key}".encode()).decode()
        conn.sendall(
            b"POST /api/uploads?name=cut.fa&type=subtraction HTTP/1.1\r\nHost: localhost\r\n"
            + f"Authorization: Basic {token}\r\n".encode()
            + b"Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
            + b">cut\nACGT\n" * 100
        )
        conn.shutdown(socket.SHUT_WR)  # the client stops sending 99 kB early
        answer = conn.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 400"), answer
    assert up.db.uploads.count_documents({}) == before
    leftovers = [p for p in (Path(up.env["DATA_PATH"]) / "uploads").rglob("*") if p.is_file()]
    assert len(leftovers) == before


def test_everything_under_data_path_is_private_to_the_service(up):
    upload_reference(up)
    data_path = Path(up.env["DATA_PATH"])
    paths = [data_path, *data_path.rglob("*")]
    assert any(p.name.startswith("appendonly") for p in paths)  # Redis's queue, claim tokens and all
    assert any(p.parent.name == "uploads" for p in paths)
    exposed = [f"{p} {oct(p.stat().st_mode)}" for p in paths if p.stat().st_mode & 0o077]
    assert not exposed


def test_ctrl_c_stops_in_order_without_tracebacks(up):
    before = len(up.log())
    output = up.stop()[before:]
    assert up.proc.returncode == 0
    assert "Traceback" not in output, output
    # Each group is signalled once the one before it has exited.
    order = [output.find(f"stopping {group}") for group in ("worker-", "web", "redis")]
    assert 0 <= order[0] < order[1] < order[2], output
    assert output.find("worker-indexes stopped") < order[1] and output.find("web stopped") < order[2]
