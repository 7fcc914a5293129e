"""Four machines made of network namespaces, as the README's operations section lays them out.

* ``db``: MongoDB (nx-27017) on the database network; Redis and the S3-compatible store on the
  service network.
* ``api``: the ``web`` process type and the server-operation pool (references, maintenance), on both.
* ``w1``, ``w2``: job pools (indexes, samples, analyses) on the service network only, with no
  database settings: they reach the broker and the API, nothing else.

A reference is imported and built, a sample created and a Pathoscope analysis run across them;
then every process on the worker host running the analysis is killed, and the job reruns on the
other host within the promised minute and finishes once.
"""

from __future__ import annotations

import gzip
import os
import time

import boto3
import psutil
import pytest
import requests

from ringspot.core import auth
from ringspot.core.db import connect
from ringspot.core.utils import new_id

from ..analyses_data import RPRSV_READS
from ..conftest import S3_CREDENTIALS, VENV_BIN, wait_for
from .hosts import Network, namespaces_available, wait_listening
from .test_replicas import small_reference

RERUN_WITHIN = 60
JOB_QUEUES = ("indexes", "samples", "analyses")
SERVER_QUEUES = ("references", "maintenance", "webhooks")

unavailable = namespaces_available()
pytestmark = pytest.mark.skipif(unavailable is not None, reason=f"multi-host test skipped: {unavailable}")


def bare_environment() -> dict:
    """What a freshly installed machine has: no database, broker, store or API settings."""
    drop = ("MONGODB_URI", "REDIS_URL", "BROKER_URL", "DATA_PATH", "RINGSPOT_API_URL", "RINGSPOT_STORAGE_URL")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AWS_")}


def pool(queues: tuple[str, ...]) -> list[str]:
    return [
        str(VENV_BIN / "dramatiq"),
        "ringspot.workers.app",
        "--processes",
        "1",
        "--threads",
        "1",
        "--queues",
        *queues,
    ]


@pytest.fixture
def lab(tmp_path):
    net = Network()
    try:
        yield from _lab(net, tmp_path)
    finally:
        net.close()


def _lab(net: Network, tmp_path):
    db_host = net.add_host("db", "database", "service")
    api_host = net.add_host("api", "database", "service")
    workers = [net.add_host("w1", "service"), net.add_host("w2", "service")]
    db_ip, services_ip, api_ip = (
        db_host.addresses["database"],
        db_host.addresses["service"],
        api_host.addresses["service"],
    )
    base = bare_environment()

    (tmp_path / "db").mkdir()
    db_host.start(
        [str(VENV_BIN / "nx-27017"), "--host", db_ip, "-p", "27017", "--data-dir", str(tmp_path / "db"),
         "--log-file", str(tmp_path / "db" / "nx.log"), "--pid-file", str(tmp_path / "db" / "nx.pid")],
        base, tmp_path / "db.log",
    )  # fmt: skip
    db_host.start(
        ["redis-server", "--bind", services_ip, "--port", "6379", "--protected-mode", "no", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        base, tmp_path / "redis.log",
    )  # fmt: skip
    db_host.start([str(VENV_BIN / "moto_server"), "-H", services_ip, "-p", "5000"], base, tmp_path / "s3.log")
    for port, address in ((27017, db_ip), (6379, services_ip), (5000, services_ip)):
        wait_listening(address, port)

    bucket = f"ringspot-{new_id()}"
    s3_url = f"http://{services_ip}:5000"
    boto3.client("s3", endpoint_url=s3_url, **_boto_credentials()).create_bucket(Bucket=bucket)
    broker = {"BROKER_URL": f"redis://{services_ip}:6379/0", "REDIS_URL": f"redis://{services_ip}:6379/0"}
    api_url = f"http://{api_ip}:9950"
    server_env = {
        **base,
        **broker,
        **S3_CREDENTIALS,
        "MONGODB_URI": f"mongodb://{db_ip}:27017/ringspot",
        "RINGSPOT_STORAGE_URL": f"s3://{bucket}/lab",
        "AWS_ENDPOINT_URL": s3_url,
        "RINGSPOT_S3_ADDRESSING": "path",
        "DATA_PATH": str(tmp_path / "api"),
        "RINGSPOT_HOST": api_ip,
        "RINGSPOT_PORT": "9950",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "api" / "metrics"),
    }
    gunicorn = [str(VENV_BIN / "gunicorn"), "-c", "python:ringspot.api.gunicorn_conf", "--workers", "2"]
    api_host.start([*gunicorn, "--threads", "4", "--bind", f"{api_ip}:9950", "ringspot.api:create_app()"],
                   server_env, tmp_path / "web.log")  # fmt: skip
    api_host.start(pool(SERVER_QUEUES), server_env, tmp_path / "server-pool.log")
    for number, host in enumerate(workers, 1):
        env = {**base, **broker, "RINGSPOT_API_URL": api_url, "DATA_PATH": str(tmp_path / f"w{number}")}
        host.start(pool(JOB_QUEUES), env, tmp_path / f"{host.name}.log")
    wait_listening(api_ip, 9950)

    database = connect(server_env["MONGODB_URI"])
    auth.create_user(database, "admin", "hunter2hunter2", administrator=True)
    _, key = auth.create_api_key(database, database.users.find_one({"_id": "admin"}), "lab", {})
    session = requests.Session()
    session.auth = ("admin", key)
    wait_for(lambda: _answers(session, api_url), timeout=60, message="the API host")
    yield {"net": net, "api": api_url, "session": session, "db": database, "workers": workers, "bucket": bucket}
    for name in ("web", "server-pool", "w1", "w2"):
        print(f"--- {name}\n" + (tmp_path / f"{name}.log").read_text(errors="replace")[-1500:])


def _boto_credentials() -> dict:
    return {
        "aws_access_key_id": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    }


def _answers(session: requests.Session, api_url: str) -> bool:
    try:
        return session.get(f"{api_url}/api/jobs/counts", timeout=5).status_code == 200
    except requests.RequestException:
        return False


class Client:
    def __init__(self, lab: dict) -> None:
        self.url, self.session = lab["api"], lab["session"]

    def call(self, method: str, path: str, **kwargs) -> dict:
        response = self.session.request(method, self.url + path, timeout=120, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json()

    def upload(self, path, upload_type: str) -> str:
        with open(path, "rb") as handle:
            params = {"name": os.path.basename(path), "type": upload_type}
            return self.call("POST", "/api/uploads", params=params, data=handle)["id"]

    def process(self, process_id: str) -> dict:
        return self.call("GET", f"/api/processes/{process_id}")

    def wait(self, process_id: str, timeout: float = 300) -> dict:
        def done():
            doc = self.process(process_id)
            assert doc["state"] in ("waiting", "running", "complete"), f"{doc['state']}: {doc.get('error')}"
            return doc if doc["state"] == "complete" else None

        return wait_for(done, timeout=timeout, interval=0.3, message=f"process {process_id}")


def repeated_pairs(folder, copies: int) -> list:
    """The RpRSV mates ``copies`` times over, each copy's read names made unique in front, where
    they keep their mate suffixes (``;1``, ``;2``) and so still pair up when the sample is created."""
    paths = []
    for source in RPRSV_READS:
        lines = gzip.decompress(source.read_bytes()).rstrip(b"\n").split(b"\n")
        names = [header.split()[0] for header in lines[0::4]]
        path = folder / source.name
        with gzip.open(path, "wb", compresslevel=1) as handle:
            for copy in range(copies):
                lines[0::4] = [b"@%d_%s" % (copy, name[1:]) for name in names]
                handle.write(b"\n".join(lines) + b"\n")
        paths.append(path)
    return paths


def running_bowtie2(host) -> bool:
    for pid in host.pids():
        try:
            if "bowtie2" in " ".join(psutil.Process(pid).cmdline()):
                return True
        except psutil.Error:
            continue
    return False


def test_hosts_share_only_the_api_the_broker_and_the_store(lab, tmp_path):
    net, api = lab["net"], Client(lab)
    w1, w2 = lab["workers"]
    db_host, api_host = net.hosts["db"], net.hosts["api"]

    # Worker hosts reach the broker, the store and the API, and not the database.
    assert w1.can_reach(db_host.addresses["service"], 6379) and w1.can_reach(api_host.addresses["service"], 9950)
    assert not w1.can_reach(db_host.addresses["database"], 27017)
    assert api_host.can_reach(db_host.addresses["database"], 27017)

    ref = api.call(
        "POST",
        "/api/refs",
        json={
            "name": "Ringspots",
            "data_type": "genome",
            "import_from": api.upload(small_reference(tmp_path), "reference"),
        },
    )
    api.wait(ref["process"]["id"])
    index = api.call("POST", f"/api/refs/{ref['id']}/indexes")
    api.wait(index["job"]["id"])

    reads = [api.upload(path, "reads") for path in repeated_pairs(tmp_path, 6)]
    sample = api.call("POST", "/api/samples", json={"name": "RpRSV x6", "files": reads})
    api.wait(sample["job"]["id"])

    analysis = api.call(
        "POST", f"/api/samples/{sample['id']}/analyses", json={"ref_id": ref["id"], "workflow": "pathoscope_bowtie"}
    )
    job_id = analysis["job"]["id"]
    victim = wait_for(
        lambda: next((host for host in (w1, w2) if running_bowtie2(host)), None),
        timeout=180,
        interval=0.1,
        message="bowtie2 running on a worker host",
    )
    survivor = w2 if victim is w1 else w1
    assert victim.kill_everything() >= 2  # the pool and its tools
    killed_at = time.monotonic()
    assert api.process(job_id)["state"] == "running"  # killed mid-run, as a lost machine leaves it

    wait_for(lambda: api.process(job_id)["attempts"] == 2, timeout=RERUN_WITHIN + 30, message="the rerun")
    rerun_after = time.monotonic() - killed_at
    wait_for(lambda: running_bowtie2(survivor), timeout=60, interval=0.1, message="bowtie2 on the other host")
    api.wait(job_id, timeout=300)
    assert rerun_after < RERUN_WITHIN, f"rerun started {rerun_after:.0f} s after the host died"
    print(f"rerun started {rerun_after:.1f} s after every process on {victim.name} was killed")

    result = api.call("GET", f"/api/analyses/{analysis['id']}")
    assert result["results"]["hits"][0]["name"] == "Raspberry ringspot virus"
    assert api.process(job_id)["attempts"] == 2
    counts = api.call("GET", "/api/jobs/counts")
    assert counts["pathoscope_bowtie"]["complete"] == 1 and counts["pathoscope_bowtie"]["running"] == 0
    assert counts["build_index"]["complete"] == 1 and counts["create_sample"]["complete"] == 1
