"""The S3 file store against the local folder, in the same run: raw transfers, then the main job.

1. The store alone: a 200 MB object streamed in and back out (``put`` from a generator, ``chunks``
   to nowhere), MB/s and the growth of this process's resident memory while it runs.
2. The main job through the API on a private stack (nx-27017, Redis, gunicorn, one worker pool),
   once with ``DATA_PATH`` and once with ``RINGSPOT_STORAGE_URL=s3://…`` on moto's S3 server:
   upload the reads, create_sample, Pathoscope, on the RpRSV sample and on 1 M reads (the RpRSV
   reads repeated, names made unique), against an index of four ringspot viruses from the real
   plant reference. Seconds for the upload request and for each job, end to end.

moto keeps objects in its own process on this machine, so the S3 figures measure the protocol,
multipart and the extra copy through a server, not a network: on real object storage add the
link's bandwidth. Run: ``.venv/bin/python bench/bench_storage.py [READS]`` (default 1000000).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import sys
import time
from pathlib import Path

import boto3
import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.services import (  # noqa: E402
    VENV_BIN,
    Services,
    follow_job,
    free_port,
    run,
    stack_env,
    start_worker,
)
from ringspot.core import auth  # noqa: E402
from ringspot.core.db import connect  # noqa: E402
from ringspot.core.storage import LocalStore, S3Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RINGSPOT_SHARED", ROOT.parent / "shared")) / "data"
PLANT_REFERENCE = DATA / "reference" / "ref-plant-viruses-v1.5.0.reference.json.gz"
RPRSV = [DATA / "samples" / "rprsv-paired-nextseq" / f"paired_{n}.fq.gz" for n in (1, 2)]
KEPT_OTUS = ("Raspberry ringspot virus", "Tomato ringspot virus", "Tobacco ringspot virus", "Beet ringspot virus")
MB = 1024**2
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


class Pattern(io.RawIOBase):
    """``size`` bytes made as they are read."""

    def __init__(self, size: int) -> None:
        self.left, self.block = size, hashlib.sha256(b"bench").digest() * 32768

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left, len(self.block))
        buffer[:n] = self.block[:n]
        self.left -= n
        return n


def store_round_trip(store, size: int) -> dict:
    process = psutil.Process()
    before = process.memory_info().rss
    start = time.perf_counter()
    store.put("bench/object", io.BufferedReader(Pattern(size), 8 * MB), size)
    put = time.perf_counter() - start
    start = time.perf_counter()
    received = sum(len(chunk) for chunk in store.chunks("bench/object"))
    get = time.perf_counter() - start
    assert received == size
    store.delete("bench/object")
    grown = (process.memory_info().rss - before) / MB
    return {"put MB/s": size / MB / put, "get MB/s": size / MB / get, "RSS growth MB": grown}


def small_reference(folder: Path) -> Path:
    with gzip.open(PLANT_REFERENCE, "rt") as handle:
        data = json.load(handle)
    data["otus"] = [otu for otu in data["otus"] if otu["name"] in KEPT_OTUS]
    path = folder / "ringspots.reference.json.gz"
    with gzip.open(path, "wt") as handle:
        json.dump(data, handle)
    return path


def repeated_reads(folder: Path, reads: int) -> list[Path]:
    """Both RpRSV mates repeated to ``reads`` reads in all, each copy's names made unique."""
    paths = []
    for source in RPRSV:
        lines = gzip.decompress(source.read_bytes()).rstrip(b"\n").split(b"\n")
        names = [header.split()[0] for header in lines[0::4]]
        copies = max(1, reads // (2 * len(names)))
        path = folder / f"{copies}x_{source.name}"
        with gzip.open(path, "wb", compresslevel=1) as handle:
            for copy in range(copies):
                # The copy number goes in front: mate suffixes (``;1``, ``/2``) stay at the end.
                lines[0::4] = [b"@%d_%s" % (copy, name[1:]) for name in names]
                handle.write(b"\n".join(lines) + b"\n")
        paths.append(path)
    return paths


def wait_ready(url: str, timeout: float = 60) -> None:
    """Until a web worker answers: the port opens before gunicorn's workers have loaded the app."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + "/metrics", timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


class Api:
    def __init__(self, url: str, key: str) -> None:
        self.url, self.session = url, requests.Session()
        self.session.auth = ("bench", key)

    def call(self, method: str, path: str, **kwargs):
        response = self.session.request(method, self.url + path, timeout=600, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text[:300]}"
        return response.json()

    def upload(self, path: Path, upload_type: str) -> str:
        with open(path, "rb") as handle:
            return self.call("POST", "/api/uploads", params={"name": path.name, "type": upload_type}, data=handle)["id"]


def main_job(services: Services, base: dict, name: str, extra_env: dict, reference: Path, samples: dict) -> dict:
    """One private stack on one store: the reference and index once, then each sample's upload and jobs."""
    port = free_port()
    env = {
        **base,
        **extra_env,
        "DATA_PATH": str(services.path / f"data-{name}"),
        "MONGODB_URI": base["MONGODB_URI"].rsplit("/", 1)[0] + f"/bench_{name}",
        "RINGSPOT_PORT": str(port),
        "RINGSPOT_API_URL": f"http://127.0.0.1:{port}",
    }
    gunicorn = [str(VENV_BIN / "gunicorn"), "--workers", "2", "--threads", "4", "--bind", f"127.0.0.1:{port}"]
    services.start(f"web-{name}", [*gunicorn, "ringspot.api:create_app()"], env=env, cwd=ROOT)
    services.wait_port(f"web-{name}", port)
    wait_ready(f"http://127.0.0.1:{port}")
    start_worker(services, env, ROOT, *QUEUES, name=f"worker-{name}")
    db = connect(env["MONGODB_URI"])
    auth.create_user(db, "bench", "bench-password", administrator=True)
    _, key = auth.create_api_key(db, db.users.find_one({"_id": "bench"}), "bench", {})
    api = Api(f"http://127.0.0.1:{port}", key)

    ref = api.call(
        "POST",
        "/api/refs",
        json={"name": "Ringspots", "data_type": "genome", "import_from": api.upload(reference, "reference")},
    )
    follow_job(db, ref["process"]["id"], time.perf_counter(), what="import")
    index = api.call("POST", f"/api/refs/{ref['id']}/indexes")
    follow_job(db, index["job"]["id"], time.perf_counter(), what="build_index")

    figures = {}
    for label, reads in samples.items():
        start = time.perf_counter()
        uploads = [api.upload(path, "reads") for path in reads]
        upload = time.perf_counter() - start
        start = time.perf_counter()
        sample = api.call("POST", "/api/samples", json={"name": f"{label} {name}", "files": uploads})
        created, _ = follow_job(db, sample["job"]["id"], start, what="create_sample")
        start = time.perf_counter()
        body = {"ref_id": ref["id"], "workflow": "pathoscope_bowtie"}
        analysis = api.call("POST", f"/api/samples/{sample['id']}/analyses", json=body)
        analysed, _ = follow_job(db, analysis["job"]["id"], start, what="pathoscope")
        top = api.call("GET", f"/api/analyses/{analysis['id']}")["results"]["hits"][0]["name"]
        figures[label] = {"upload s": upload, "create_sample s": created, "pathoscope s": analysed, "top hit": top}
    services.close_one(f"worker-{name}")
    services.close_one(f"web-{name}")
    return figures


QUEUES = ("references", "indexes", "samples", "analyses", "maintenance", "webhooks")


def main(reads: int) -> None:
    with Services("storage") as services:
        s3_port = free_port()
        services.start("s3", [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)])
        services.wait_port("s3", s3_port)
        endpoint = f"http://127.0.0.1:{s3_port}"
        os.environ.update({k: os.environ.get(k, v) for k, v in CREDENTIALS.items()})
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")

        print("== the store alone: 200 MB in and out")
        local = LocalStore(str(services.path / "raw"))
        s3 = S3Store("bench", "raw", endpoint_url=endpoint, addressing="path")
        for name, store in (("local", local), ("s3", s3)):
            figures = store_round_trip(store, 200 * MB)
            print(f"{name:6}", "  ".join(f"{k} {v:7.1f}" for k, v in figures.items()))

        reference = small_reference(services.path)
        samples = {"RpRSV": RPRSV, f"{reads // 1000}k reads": repeated_reads(services.path, reads)}
        s3_env = {
            "RINGSPOT_STORAGE_URL": "s3://bench/stack",
            "AWS_ENDPOINT_URL": endpoint,
            "RINGSPOT_S3_ADDRESSING": "path",
        }
        base = stack_env(services, 0)
        results = {}
        for name, extra in (("local", {}), ("s3", s3_env)):
            print(f"== main job, {name} store")
            results[name] = main_job(services, base, name, extra, reference, samples)
            for label, figures in results[name].items():
                print(
                    f"{label:12}",
                    "  ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()),
                )
        print("== s3 / local")
        for label in samples:
            ratios = {
                k: results["s3"][label][k] / results["local"][label][k]
                for k in results["s3"][label]
                if k.endswith(" s")
            }
            print(f"{label:12}", "  ".join(f"{k} x{v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":
    run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
