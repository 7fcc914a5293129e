"""Shared fixtures: a real nx-27017 database server and a real Redis, started once per session.

The API tests run the app in-process with dramatiq's StubBroker and an in-thread
worker (``stub_worker``); ``live_server`` serves the app over HTTP for job actors,
which only speak the Job API. Integration tests start the real process types.
"""

from __future__ import annotations

import os

os.environ["BROKER_URL"] = "stub"  # before any actor module binds to a broker

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dramatiq
import pymongo
import pytest
from werkzeug.serving import make_server

from ringspot.core import auth
from ringspot.core.db import close_all
from ringspot.core.settings import from_env
from ringspot.core.utils import new_id

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


def start_database(tmp: Path, port: int | None = None) -> tuple[subprocess.Popen, int]:
    """nx-27017 keeping its files in ``tmp``; give the ``port`` of a server to start it again."""
    port = port or free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "nx-27017"),
            "--data-dir",
            str(tmp),
            "-p",
            str(port),
            "--log-file",
            str(tmp / "db.log"),
            "--pid-file",
            str(tmp / "db.pid"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_port(port)
    return proc, port


def start_redis(tmp: Path, port: int | None = None, persistent: bool = False) -> tuple[subprocess.Popen, int]:
    """Redis in ``tmp``; ``persistent`` keeps every write in an append-only file synced on each
    write, so a restart on the same ``port`` and folder loses nothing it acknowledged."""
    port = port or free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    persistence = ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", *persistence, "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_port(port)
    return proc, port


def start_rabbitmq(tmp: Path) -> tuple[subprocess.Popen, int]:
    """A private RabbitMQ node (its own name, ports, config and files), ready in about 10 s."""
    port, dist_port = free_port(), free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{port}\n")
    (tmp / "rabbitmq-env.conf").write_text("")
    (tmp / "enabled_plugins").write_text("[].\n")
    env = {
        **os.environ,
        "HOME": str(tmp),
        "RABBITMQ_NODENAME": f"ringspot{port}@localhost",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_CONFIG_FILE": str(tmp / "rabbitmq.conf"),
        "RABBITMQ_CONF_ENV_FILE": str(tmp / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(tmp / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(tmp / "mnesia"),
        "RABBITMQ_LOG_BASE": str(tmp / "log"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }
    # The server script itself, not Debian's wrapper (which would switch to the rabbitmq user).
    proc = subprocess.Popen(
        ["/usr/lib/rabbitmq/bin/rabbitmq-server"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=open(tmp / "server.log", "wb"),  # noqa: SIM115  (the server keeps it for its lifetime)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_port(port, timeout=90)
    return proc, port


def start_s3(tmp: Path) -> tuple[subprocess.Popen, str]:
    """moto's S3-compatible server as its own process; its endpoint URL. Any key and secret sign."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    with open(tmp / "s3.log", "wb") as log:
        proc = subprocess.Popen(
            [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_port(port)
    return proc, f"http://127.0.0.1:{port}"


S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ringspot",
    "AWS_SECRET_ACCESS_KEY": "ringspot",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def database_server(tmp_path_factory):
    proc, port = start_database(tmp_path_factory.mktemp("nx"))
    yield f"mongodb://127.0.0.1:{port}"
    close_all()  # before the server goes, or closing waits for it
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    proc, port = start_redis(tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def rabbitmq_server(tmp_path_factory):
    proc, port = start_rabbitmq(tmp_path_factory.mktemp("rabbitmq"))
    yield f"amqp://guest:guest@127.0.0.1:{port}/%2F"
    os.killpg(proc.pid, signal.SIGTERM)  # the script and the Erlang VM it started
    proc.wait(30)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """An S3-compatible endpoint for the session; tests make their own buckets."""
    for key, value in S3_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    proc, url = start_s3(tmp_path_factory.mktemp("s3"))
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def settings(database_server, tmp_path, monkeypatch):
    """Settings of one test: its own database and data folder, also exported to the environment."""
    name = f"t_{new_id()}"
    env = {
        "MONGODB_URI": f"{database_server}/{name}",
        "DATA_PATH": str(tmp_path / "data"),
        "RINGSPOT_HEARTBEAT_TIMEOUT": "5",
        # Jobs reach the API only where a test serves it (``live_server``); never a stray server.
        "RINGSPOT_API_URL": "http://127.0.0.1:1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield from_env()
    client = pymongo.MongoClient(database_server)
    client.drop_database(name)
    client.close()


@pytest.fixture
def db(settings):
    from ringspot.core.db import connect

    return connect(settings.mongodb_uri)


@pytest.fixture
def app(settings):
    from ringspot.api import create_app

    return create_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def stub_broker():
    broker = dramatiq.get_broker()
    broker.flush_all()
    return broker


@pytest.fixture
def stub_worker(stub_broker, app):
    worker = dramatiq.Worker(stub_broker, worker_timeout=50, worker_threads=2)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def live_server(app, settings, monkeypatch):
    """The app on a real HTTP port, for actors that speak the Job API."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("RINGSPOT_API_URL", url)
    yield url
    server.shutdown()


class User:
    """A user with an API key, for calling the test client as that user."""

    def __init__(self, client, user_id: str, key: str):
        self.client, self.id, self.key = client, user_id, key

    def _call(self, method, url, **kwargs):
        return getattr(self.client, method)(url, auth=(self.id, self.key), **kwargs)

    def get(self, url, **kw):
        return self._call("get", url, **kw)

    def post(self, url, **kw):
        return self._call("post", url, **kw)

    def patch(self, url, **kw):
        return self._call("patch", url, **kw)

    def put(self, url, **kw):
        return self._call("put", url, **kw)

    def delete(self, url, **kw):
        return self._call("delete", url, **kw)


@pytest.fixture
def make_user(client, db):
    """Create a user with an API key: ``make_user("bob", permissions=[...], administrator=False)``."""

    def make(user_id=None, *, administrator=False, permissions=(), groups=()):
        user_id = user_id or f"user_{new_id(5)}"
        auth.create_user(db, user_id, "hunter2hunter2", administrator=administrator)
        perms = {p: p in permissions for p in auth.PERMISSIONS}
        update = {"permissions": perms, "groups": list(groups)}
        db.users.update_one({"_id": user_id}, {"$set": update})
        _, raw = auth.create_api_key(db, db.users.find_one({"_id": user_id}), "test", perms)
        return User(client, user_id, raw)

    return make


@pytest.fixture
def admin(make_user):
    return make_user("admin", administrator=True)


@pytest.fixture
def plain_user(make_user):
    return make_user("plain")


def wait_for(predicate, timeout=30.0, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")
