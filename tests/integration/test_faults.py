"""The database server and Redis go away and come back: the API says 503 meanwhile (never a
hang, never a traceback), leaves nothing half-written, and works again when they return
without losing an acknowledged write."""

import os
import signal
import subprocess
import time

import pytest
import requests

from viroscope.core import auth
from viroscope.core.db import connect
from viroscope.core.utils import new_id

from ..conftest import ROOT, VENV_BIN, free_port, wait_port


class Services:
    """A private nx-27017, Redis and API that this module may stop and start at will."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.db_dir, self.db_port = tmp / "db", free_port()
        self.redis_port = free_port()
        self.db_proc = self.start_db()
        self.redis_proc = self.start_redis()

    def start_db(self):
        proc = subprocess.Popen(
            [str(VENV_BIN / "nx-27017"), "--data-dir", str(self.db_dir), "-p", str(self.db_port),
             "--log-file", str(self.tmp / "db.log"), "--pid-file", str(self.tmp / "db.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_port(self.db_port)
        return proc

    def start_redis(self):
        proc = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_port(self.redis_port)
        return proc

    @staticmethod
    def stop(proc):
        proc.terminate()
        proc.wait(15)


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    services = Services(tmp)
    port = free_port()
    env = {**os.environ, "MONGODB_URI": f"mongodb://127.0.0.1:{services.db_port}/faults",
           "BROKER_URL": f"redis://127.0.0.1:{services.redis_port}/0",
           "REDIS_URL": f"redis://127.0.0.1:{services.redis_port}/0",
           "DATA_PATH": str(tmp / "data"), "VIROSCOPE_PORT": str(port)}
    db = connect(env["MONGODB_URI"])
    auth.create_user(db, "admin", "hunter2hunter2", administrator=True)
    _, key = auth.create_api_key(db, db.users.find_one({"_id": "admin"}), "faults", {})
    log = open(tmp / "web.log", "wb")
    web = subprocess.Popen([str(VENV_BIN / "gunicorn"), "--workers", "1", "--threads", "4", "--bind",
                            f"127.0.0.1:{port}", "viroscope.api:create_app()"],
                           env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_port(port)
    session = requests.Session()
    session.auth = ("admin", key)
    services.url, services.session, services.db = f"http://127.0.0.1:{port}", session, db
    yield services
    os.killpg(web.pid, signal.SIGTERM)
    web.wait(15)
    for proc in (services.db_proc, services.redis_proc):
        if proc.poll() is None:
            Services.stop(proc)
    log.close()


def call(services, method, path, **kwargs):
    return services.session.request(method, services.url + path, timeout=20, **kwargs)


def test_database_down_gives_503_and_no_write_is_lost(services):
    created = call(services, "POST", "/api/refs", json={"name": "Kept", "data_type": "genome"})
    assert created.status_code == 201
    ref_id = created.json()["id"]

    Services.stop(services.db_proc)
    started = time.monotonic()
    response = call(services, "GET", f"/api/refs/{ref_id}")
    assert response.status_code == 503
    assert response.json()["message"] == "The database is unavailable; try again shortly"
    assert "Traceback" not in response.text
    assert time.monotonic() - started < 15

    services.db_proc = services.start_db()
    again = call(services, "GET", f"/api/refs/{ref_id}")
    assert again.status_code == 200 and again.json()["name"] == "Kept"


def test_broker_down_gives_503_and_leaves_nothing_half_made(services):
    source = call(services, "POST", "/api/refs", json={"name": "Source", "data_type": "genome"}).json()
    Services.stop(services.redis_proc)
    name = f"Clone {new_id()}"
    response = call(services, "POST", "/api/refs", json={"name": name, "data_type": "genome", "clone_from": source["id"]})
    assert response.status_code == 503
    assert response.json()["message"] == "The task queue is unavailable; try again shortly"
    assert services.db.refs.count_documents({"name": name}) == 0
    failed = services.db.processes.find_one({"type": "clone_reference"})
    assert failed["state"] == "error" and "task queue" in failed["error"]

    removal = call(services, "DELETE", f"/api/refs/{source['id']}")
    assert removal.status_code == 503
    assert call(services, "GET", f"/api/refs/{source['id']}").status_code == 200  # still there, nothing lost

    services.redis_proc = services.start_redis()
    response = call(services, "POST", "/api/refs", json={"name": name, "data_type": "genome", "clone_from": source["id"]})
    assert response.status_code == 201
