"""Index build of the full plant-virus reference through the API, against bare bowtie2-build.

Starts a private nx-27017, Redis, the API under gunicorn and a worker pool for the
``references`` and ``indexes`` queues; imports ref-plant-viruses-v1.5.0 through the API, then
times in one run:

* ``bowtie2-build --threads N`` alone on the same default-isolate FASTA (the floor), and
* ``POST /api/refs/:id/indexes`` until the ``build_index`` job is complete (download of the
  manifest's OTUs, FASTA, bowtie2-build, upload of eight files through the Job API, finalize),

and prints both with the overhead (target: at most 15 %). Run: ``.venv/bin/python bench/bench_index.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.services import (  # noqa: E402
    Services,
    bench_user,
    follow_job,
    free_port,
    run,
    stack_env,
    start_web,
    start_worker,
)
from ringspot.bio import reference as reference_format  # noqa: E402
from ringspot.core.db import connect  # noqa: E402

REFERENCE = ROOT.parent / "shared" / "data" / "reference" / "ref-plant-viruses-v1.5.0.reference.json.gz"
PROC = int(os.environ.get("RINGSPOT_PROC", "2"))


def wait_process(session: requests.Session, url: str, process_id: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = session.get(f"{url}/api/processes/{process_id}", timeout=30).json()
        if doc["state"] in ("complete", "error", "cancelled"):
            if doc["state"] != "complete":
                raise RuntimeError(f"{doc['type']} ended in {doc['state']}: {doc.get('error')}")
            return doc
        time.sleep(0.1)
    raise RuntimeError(f"process {process_id} did not finish")


def bare_build_seconds() -> float:
    """bowtie2-build alone on the default isolates of the same reference."""
    data = reference_format.validate_reference(reference_format.load_reference_file(REFERENCE))
    with tempfile.TemporaryDirectory() as tmp:
        fasta = Path(tmp) / "reference.fa"
        with open(fasta, "w") as handle:
            reference_format.write_fasta(reference_format.iter_default_isolate_fasta(data["otus"]), handle)
        started = time.monotonic()
        subprocess.run(
            ["bowtie2-build", "--threads", str(PROC), str(fasta), str(Path(tmp) / "reference")],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.monotonic() - started


def main() -> None:
    with Services("index") as services:
        port = free_port()
        env = stack_env(services, port, RINGSPOT_PROC=str(PROC), dramatiq_worker_timeout="100")
        start_worker(services, env, ROOT, "references", "indexes")
        start_web(services, env, ROOT)
        db = connect(env["MONGODB_URI"])
        session, url = requests.Session(), f"http://127.0.0.1:{port}"
        session.auth = bench_user(db)

        with open(REFERENCE, "rb") as handle:
            upload = session.post(
                f"{url}/api/uploads", params={"name": REFERENCE.name, "type": "reference"}, data=handle, timeout=60
            ).json()
        ref = session.post(
            f"{url}/api/refs",
            json={"name": "Plant viruses", "data_type": "genome", "import_from": upload["id"]},
            timeout=60,
        ).json()
        wait_process(session, url, ref["process"]["id"])

        bare = bare_build_seconds()
        started = time.perf_counter()
        index = session.post(f"{url}/api/refs/{ref['id']}/indexes", timeout=60).json()
        through_api, steps = follow_job(db, index["job"]["id"], started, what="build_index")
        ready = session.get(f"{url}/api/indexes/{index['id']}", timeout=30).json()
        assert ready["ready"] and len(ready["files"]) == 8

        print(f"bowtie2-build alone ({PROC} threads):     {bare:7.2f} s")
        print(f"build_index through the API and a worker: {through_api:7.2f} s")
        print(f"overhead: {100 * (through_api / bare - 1):+.1f} %  (target <= +15 %)")
        for step, seconds in steps.items():
            print(f"  {step:<14} {seconds:6.2f} s")
        sizes = sum(f["size"] for f in ready["files"])
        print(f"files uploaded through the Job API: {len(ready['files'])}, {sizes / 1e6:.1f} MB")


if __name__ == "__main__":
    run(main)
