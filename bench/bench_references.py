"""The full plant-virus reference through the API: import, clone, export, history listing.

Starts a private nx-27017 and runs the app in this process (Flask test client) with dramatiq's
StubBroker and an in-thread worker, as the tests do, then measures:

* import of ``ref-plant-viruses-v1.5.0.reference.json.gz`` (2,084 OTUs, 4,783 sequences):
  ``POST /api/refs`` with ``import_from`` until the process is complete (the upload before it
  is timed apart); target <= 15 s;
* peak memory: this process's peak RSS (API + worker + the parsed file) before and after, and
  the database server's peak RSS (``VmHWM``);
* clone of the imported reference until complete; target <= 15 s;
* ``GET /api/refs/:id/export`` of the whole reference;
* ``GET /api/refs/:id/history?per_page=100&page=10``: median and p99 over 200 requests;
  target p99 < 100 ms;
* what an index build does per OTU: ``get_joined_otu`` for each of the 2,084 OTUs.

Run: ``.venv/bin/python bench/bench_references.py``. Prints figures; no asserts.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ["BROKER_URL"] = "stub"  # before any actor module binds to a broker

from bench.services import ROOT, Services, percentile, run  # noqa: E402

SHARED = Path(os.environ.get("RINGSPOT_SHARED", ROOT.parent / "shared"))
PLANT_VIRUSES = SHARED / "data" / "reference" / "ref-plant-viruses-v1.5.0.reference.json.gz"
REQUESTS = 200


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def server_peak_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def wait_process(db, process_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = db.processes.find_one({"_id": process_id})
        if doc["state"] in ("complete", "error", "cancelled"):
            return doc
        time.sleep(0.02)
    raise TimeoutError(process_id)


def main() -> None:
    with Services("references") as services:
        uri = services.database()
        os.environ.update(MONGODB_URI=f"{uri}/bench", DATA_PATH=str(services.path / "data"))

        import dramatiq

        from ringspot.api import create_app
        from ringspot.core import auth
        from ringspot.core.db import close_all, connect
        from ringspot.core.otus import get_joined_otu
        from ringspot.core.settings import from_env

        app = create_app(from_env())
        db = connect(os.environ["MONGODB_URI"])
        auth.create_user(db, "bench", "benchbench", administrator=True)
        _, key = auth.create_api_key(db, db.users.find_one({"_id": "bench"}), "bench", {})
        client = app.test_client()
        credentials = {"auth": ("bench", key)}
        worker = dramatiq.Worker(dramatiq.get_broker(), worker_timeout=20, worker_threads=2)
        worker.start()
        try:
            print(f"file: {PLANT_VIRUSES.name} ({PLANT_VIRUSES.stat().st_size / 1e6:.1f} MB)")
            baseline = rss_mb()

            started = time.monotonic()
            response = client.post(
                "/api/uploads?name=reference.json.gz&type=reference",
                data=PLANT_VIRUSES.read_bytes(),
                content_type="application/octet-stream",
                **credentials,
            )
            upload_id = response.json["id"]
            print(f"upload:                {time.monotonic() - started:6.2f} s")

            started = time.monotonic()
            ref = client.post("/api/refs", json={"name": "Plant viruses", "import_from": upload_id}, **credentials).json
            process = wait_process(db, ref["process"]["id"])
            import_seconds = time.monotonic() - started
            counts = [db[c].count_documents({"reference.id": ref["id"]}) for c in ("otus", "sequences", "history")]
            print(
                f"import until complete: {import_seconds:6.2f} s   (target <= 15 s; state {process['state']}; "
                f"otus/sequences/history {counts})"
            )
            print(
                f"peak RSS of API + worker: {baseline:.0f} MB before, {rss_mb():.0f} MB after the import; "
                f"database server peak {server_peak_mb(dict(services.procs)['db'].pid):.0f} MB"
            )

            started = time.monotonic()
            clone = client.post("/api/refs", json={"name": "Clone", "clone_from": ref["id"]}, **credentials).json
            process = wait_process(db, clone["process"]["id"])
            clone_seconds = time.monotonic() - started
            print(f"clone until complete:  {clone_seconds:6.2f} s   (target <= 15 s; state {process['state']})")
            print(f"peak RSS after the clone: {rss_mb():.0f} MB")

            started = time.monotonic()
            exported = client.get(f"/api/refs/{ref['id']}/export", **credentials).data
            print(f"export:                {time.monotonic() - started:6.2f} s   ({len(exported) / 1e6:.1f} MB gzip)")

            url = f"/api/refs/{ref['id']}/history?per_page=100&page=10"
            timings = []
            for _ in range(REQUESTS):
                started = time.perf_counter()
                response = client.get(url, **credentials)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200 and len(response.json["documents"]) == 100
            print(
                f"history page 10 x{REQUESTS}: median {percentile(timings, 0.5):.1f} ms, "
                f"p99 {percentile(timings, 0.99):.1f} ms   (target p99 < 100 ms)"
            )

            otu_ids = [o["_id"] for o in db.otus.find({"reference.id": ref["id"]}, {"_id": 1})]
            started = time.monotonic()
            for otu_id in otu_ids:
                get_joined_otu(db, otu_id)
            print(
                f"get_joined_otu x{len(otu_ids)}: {time.monotonic() - started:6.2f} s (an index build's per-OTU reads)"
            )
            print(f"peak RSS at the end: {rss_mb():.0f} MB")
        finally:
            worker.stop()
            close_all()  # before the database stops: closing a client of a stopped server waits for it


if __name__ == "__main__":
    run(main)
