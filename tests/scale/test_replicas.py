"""Two API replicas that share only the database and an S3-compatible store.

Each replica and the worker pool have a ``DATA_PATH`` of their own (nothing on disk is shared):
a file uploaded through one replica is read through the other, a sample created through one from
an upload made through the other, and an analysis started on one reads the same through both.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import time

import boto3
import pymongo
import pytest

from ringspot.core import auth
from ringspot.core.db import connect
from ringspot.core.utils import new_id

from ..analyses_data import PLANT_REFERENCE, RPRSV_READS
from ..conftest import ROOT, VENV_BIN
from ..integration.conftest import stop_process_group
from .web import Web, start_web

#: OTUs kept from the real plant reference: the one the sample carries, and neighbours for its reads to miss.
KEPT_OTUS = ("Raspberry ringspot virus", "Tomato ringspot virus", "Tobacco ringspot virus", "Beet ringspot virus")


def small_reference(folder) -> str:
    with gzip.open(PLANT_REFERENCE, "rt") as handle:
        data = json.load(handle)
    data["otus"] = [otu for otu in data["otus"] if otu["name"] in KEPT_OTUS]
    path = folder / "ringspots.reference.json.gz"
    with gzip.open(path, "wt") as handle:
        json.dump(data, handle)
    return str(path)


class Replicas:
    def __init__(self, a: Web, b: Web, key: str) -> None:
        self.a, self.b, self.auth = a, b, ("admin", key)

    def call(self, web: Web, method: str, path: str, **kwargs):
        return web.call(method, path, auth=self.auth, **kwargs)

    def upload(self, web: Web, path: str, upload_type: str) -> str:
        with open(path, "rb") as handle:
            params = {"name": os.path.basename(path), "type": upload_type}
            response = self.call(web, "POST", "/api/uploads", params=params, data=handle)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def wait(self, web: Web, process_id: str, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            doc = self.call(web, "GET", f"/api/processes/{process_id}").json()
            if doc["state"] == "complete":
                return doc
            assert doc["state"] in ("waiting", "running"), f"process ended {doc['state']}: {doc.get('error')}"
            time.sleep(0.3)
        raise AssertionError(f"process {process_id} still {doc['state']} after {timeout} s")


@pytest.fixture
def replicas(database_server, redis_server, s3_server, tmp_path):
    bucket = f"ringspot-{new_id()}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    name = f"replicas_{new_id()}"
    shared = {
        **os.environ,
        "MONGODB_URI": f"{database_server}/{name}",
        "BROKER_URL": redis_server,
        "REDIS_URL": redis_server,
        "RINGSPOT_STORAGE_URL": f"s3://{bucket}/ringspot",
        "AWS_ENDPOINT_URL": s3_server,
        "RINGSPOT_S3_ADDRESSING": "path",
    }
    a = start_web({**shared, "DATA_PATH": str(tmp_path / "a")}, tmp_path / "a")
    b = start_web({**shared, "DATA_PATH": str(tmp_path / "b")}, tmp_path / "b")
    worker_env = {**shared, "DATA_PATH": str(tmp_path / "worker"), "RINGSPOT_API_URL": b.url}
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [str(VENV_BIN / "dramatiq"), "ringspot.workers.app", "--processes", "1", "--threads", "2"],
            env=worker_env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    db = connect(shared["MONGODB_URI"])
    auth.create_user(db, "admin", "hunter2hunter2", administrator=True)
    _, key = auth.create_api_key(db, db.users.find_one({"_id": "admin"}), "replicas", {})
    try:
        yield Replicas(a, b, key), bucket, tmp_path
    finally:
        stop_process_group(worker)
        a.stop()
        b.stop()
        pymongo.MongoClient(database_server).drop_database(name)
        print((tmp_path / "worker.log").read_text()[-3000:])


def test_upload_on_one_replica_download_and_analysis_through_the_other(replicas, s3_server):
    r, bucket, tmp_path = replicas

    # An upload through A reads back byte for byte through B, with ranges.
    reads = [r.upload(r.a, str(path), "reads") for path in RPRSV_READS]
    original = RPRSV_READS[0].read_bytes()
    assert r.call(r.b, "GET", f"/api/uploads/{reads[0]}").content == original
    part = r.call(r.b, "GET", f"/api/uploads/{reads[0]}", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == original[100:1100]

    # A reference imported from an upload made through B, its index built through A.
    ref_upload = r.upload(r.b, small_reference(tmp_path), "reference")
    body = {"name": "Ringspots", "data_type": "genome", "import_from": ref_upload}
    ref = r.call(r.a, "POST", "/api/refs", json=body).json()
    r.wait(r.b, ref["process"]["id"])
    index = r.call(r.a, "POST", f"/api/refs/{ref['id']}/indexes").json()
    r.wait(r.a, index["job"]["id"])

    # A sample created through B from the reads uploaded through A; its reads read the same on both.
    sample = r.call(r.b, "POST", "/api/samples", json={"name": "RpRSV", "files": reads}).json()
    r.wait(r.a, sample["job"]["id"])
    for name in ("reads_1.fq.gz", "reads_2.fq.gz"):
        through_a = r.call(r.a, "GET", f"/api/samples/{sample['id']}/reads/{name}").content
        assert through_a and through_a == r.call(r.b, "GET", f"/api/samples/{sample['id']}/reads/{name}").content

    # Pathoscope started on A; its results are the same through both, and find the virus.
    body = {"ref_id": ref["id"], "workflow": "pathoscope_bowtie"}
    analysis = r.call(r.a, "POST", f"/api/samples/{sample['id']}/analyses", json=body).json()
    r.wait(r.b, analysis["job"]["id"])
    through_a = r.call(r.a, "GET", f"/api/analyses/{analysis['id']}").json()
    through_b = r.call(r.b, "GET", f"/api/analyses/{analysis['id']}").json()
    assert through_a["results"] == through_b["results"]
    assert through_a["results"]["hits"][0]["name"] == "Raspberry ringspot virus"
    report = f"/api/analyses/{analysis['id']}/files/report.tsv"
    through_a_report = r.call(r.a, "GET", report).content
    assert through_a_report.startswith(b"Total Number of Aligned Reads:")
    assert through_a_report == r.call(r.b, "GET", report).content

    # Nothing was kept on the replicas' own disks: the files are objects in the bucket.
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3_server).list_objects_v2(Bucket=bucket)["Contents"]]
    assert f"ringspot/analyses/{analysis['id']}/results.json" in keys
    assert f"ringspot/indexes/{index['id']}/reference.1.bt2" in keys
    for replica in ("a", "b"):
        stored = [p for p in (tmp_path / replica).rglob("*") if p.is_file() and "metrics-" not in str(p)]
        assert [p for p in stored if p.suffix != ".log"] == []
