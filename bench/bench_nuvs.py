"""NuVs on the RpRSV sample, end to end through the real stack, against SPAdes alone.

    .venv/bin/python bench/bench_nuvs.py

Starts a private nx-27017, Redis, the API under gunicorn (the Procfile's ``web`` line) and a
dramatiq worker for the ``analyses`` and ``hmms`` queues; puts a 20-OTU reference (no RpRSV)
with its Bowtie2 index and the RpRSV sample (20,000 reads) in place; installs the hmm7 vFam
profiles through the API; then times, in the same run:

* SPAdes alone on the sample's raw reads, with the job's threads, memory and k-mers
  (best of two, before and after the job);
* the ``nuvs`` job from ``POST /api/samples/:id/analyses`` to its process reading ``complete``
  (trim, eliminate, reunite, SPAdes, ORFs, hmmscan, uploads and finalize through the Job API),
  with the time of each step from the job's status history;

and prints the ratio (target <= 1.3x). Then ORF finding on ``scaffolds_paired.fa`` (target
< 0.5 s, best of 5) and hmmscan of all its ORFs against hmm7. No asserts.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.services import (  # noqa: E402
    ROOT,
    Services,
    bench_user,
    free_port,
    stack_env,
    start_web,
    start_worker,
)

DATA = ROOT.parent / "shared" / "data"
READS = [
    DATA / "samples" / "rprsv-paired-nextseq" / "paired_1.fq.gz",
    DATA / "samples" / "rprsv-paired-nextseq" / "paired_2.fq.gz",
]
SMALL_REFERENCE = DATA / "reference" / "example-20otus.reference.json.gz"
HMM7 = DATA / "hmm" / "hmm7"
SCAFFOLDS = DATA / "nuvs" / "scaffolds_paired.fa"
TARGET_RATIO, ORF_BUDGET = 1.3, 0.5


class Api:
    def __init__(self, url: str, user: str, key: str):
        self.url = url
        self.auth = "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()

    def call(self, method: str, path: str, body=None, raw: bytes | None = None) -> dict:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        kind = "application/octet-stream" if raw is not None else "application/json"
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Authorization": self.auth, "Content-Type": kind}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path} -> {error.code}: {error.read()[:300]!r}") from None

    def wait(self, process_id: str, timeout: float = 600, steps: list | None = None) -> dict:
        """Poll the process until it ends; ``steps`` collects (step, first seen at) as it moves on."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            doc = self.call("GET", f"/api/processes/{process_id}")
            if steps is not None and doc.get("step") and (not steps or steps[-1][0] != doc["step"]):
                steps.append((doc["step"], time.perf_counter()))
            if doc["state"] in ("complete", "error", "cancelled"):
                return doc
            time.sleep(0.05)
        raise RuntimeError(f"process {process_id} still running after {timeout} s")


def put_reference_and_index(db, data_path: Path) -> tuple[str, str]:
    """The 20-OTU reference, its OTUs and a ready Bowtie2 index of their default isolates."""
    from ringspot.bio import reference as reference_format
    from ringspot.core.utils import new_id, now

    with gzip.open(SMALL_REFERENCE, "rt") as handle:
        otus = json.load(handle)["otus"]
    ref_id, index_id = new_id(), new_id()
    db.refs.insert_one(
        {
            "_id": ref_id,
            "name": "Small",
            "data_type": "genome",
            "organism": "virus",
            "public": True,
            "created_at": now(),
            "user": {"id": "bench"},
            "users": [],
            "groups": [],
        }
    )
    folder = data_path / "indexes" / index_id
    folder.mkdir(parents=True)
    with open(folder / "reference.fa", "w") as handle:
        reference_format.write_fasta(reference_format.iter_default_isolate_fasta(otus), handle)
    subprocess.run(
        ["bowtie2-build", "--threads", "2", str(folder / "reference.fa"), str(folder / "reference")],
        check=True,
        capture_output=True,
    )
    files = [
        {
            "id": n,
            "name": p.name,
            "reference": index_id,
            "size": p.stat().st_size,
            "type": "bowtie2",
            "uploaded_at": now(),
        }
        for n, p in enumerate(sorted(folder.glob("*.bt2")), 1)
    ]
    db.indexes.insert_one(
        {
            "_id": index_id,
            "version": 0,
            "created_at": now(),
            "ready": True,
            "has_files": True,
            "files": files,
            "job": {"id": new_id()},
            "reference": {"id": ref_id},
            "user": {"id": "bench"},
            "manifest": {otu["_id"]: 0 for otu in otus},
            "sequence_otu_map": {},
        }
    )
    return ref_id, index_id


def put_sample(db, data_path: Path) -> str:
    from ringspot.core.utils import new_id, now

    sample_id = new_id()
    folder = data_path / "samples" / sample_id
    folder.mkdir(parents=True)
    reads = []
    for number, path in enumerate(READS, 1):
        shutil.copyfile(path, folder / f"reads_{number}.fq.gz")
        reads.append({"name": f"reads_{number}.fq.gz", "size": path.stat().st_size, "uploaded_at": now()})
    db.samples.insert_one(
        {
            "_id": sample_id,
            "name": "RpRSV",
            "library_type": "normal",
            "paired": True,
            "reads": reads,
            "files": [],
            "quality": None,
            "subtractions": [],
            "group": "none",
            "all_read": True,
            "all_write": False,
            "group_read": False,
            "group_write": False,
            "user": {"id": "bench"},
            "created_at": now(),
            "ready": True,
        }
    )
    return sample_id


def spades_alone(reads: list[Path], work: Path, proc: int, mem_gb: int) -> float:
    from ringspot.bio import runner
    from ringspot.bio.nuvs import spades_argv

    out = work / "spades-alone"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    runner.run(spades_argv(reads, out, library_type="normal", proc=proc, mem_gb=mem_gb))
    return time.perf_counter() - started


def reads_nuvs_assembles(work: Path, index_prefix: Path, proc: int) -> list[Path]:
    """The reads the job hands to SPAdes, made the same way: trimmed, eliminated, pairs reunited."""
    from ringspot.bio import nuvs

    trimmed = nuvs.trim_reads(READS, work / "trimmed", library_type="normal", max_length=151, proc=proc)
    nuvs.number_reads(trimmed, work / "numbered.fq")
    nuvs.eliminate_reads(index_prefix, work / "numbered.fq", work / "unmapped.fq", proc=proc)
    survivors = nuvs.surviving_ordinals(work / "unmapped.fq")
    targets = [work / "unmapped_1.fq", work / "unmapped_2.fq"]
    nuvs.reunite_pairs(trimmed, survivors, targets)
    return targets


def nuvs_end_to_end(proc: int, mem_gb: int) -> None:
    from ringspot.core.db import connect

    with Services("nuvs") as services:
        port = free_port()
        data_path = services.path / "data"
        env = stack_env(services, port, RINGSPOT_PROC=str(proc), RINGSPOT_MEM_GB=str(mem_gb))
        db = connect(env["MONGODB_URI"])
        user_id, key = bench_user(db)
        ref_id, _ = put_reference_and_index(db, data_path)
        sample_id = put_sample(db, data_path)

        start_worker(services, env, ROOT, "analyses", "hmms")
        start_web(services, env, ROOT)
        api = Api(f"http://127.0.0.1:{port}", user_id, key)

        profiles = api.call(
            "POST", "/api/uploads?name=profiles.hmm.gz&type=hmm", raw=(HMM7 / "profiles.hmm.gz").read_bytes()
        )
        annotations = api.call(
            "POST", "/api/uploads?name=annotations.json.gz&type=hmm", raw=(HMM7 / "annotations.json.gz").read_bytes()
        )
        install = api.call(
            "POST",
            "/api/hmms/status/updates",
            {"upload_id": profiles["id"], "annotations_upload_id": annotations["id"]},
        )
        installed = api.wait(install["id"])
        if installed["state"] != "complete":
            raise RuntimeError(f"install_hmms: {installed['error']}\n{services.tail('worker')}")

        work = services.path / "spades"
        work.mkdir()
        index_prefix = next((data_path / "indexes").iterdir()) / "reference"
        same_reads = reads_nuvs_assembles(work, index_prefix, proc)
        alone = [spades_alone(same_reads, work, proc, mem_gb)]
        raw = spades_alone(READS, work, proc, mem_gb)
        steps: list = []
        started = time.perf_counter()
        analysis = api.call("POST", f"/api/samples/{sample_id}/analyses", {"workflow": "nuvs", "ref_id": ref_id})
        job = api.wait(analysis["job"]["id"], steps=steps)
        ended = time.perf_counter()
        nuvs_seconds = ended - started
        if job["state"] != "complete":
            raise RuntimeError(f"nuvs: {job['error']}\n{services.tail('worker')}")
        alone.append(spades_alone(same_reads, work, proc, mem_gb))
        spades_seconds = min(alone)

        result = api.call("GET", f"/api/analyses/{analysis['id']}")["results"]["hits"]
        ratio = nuvs_seconds / spades_seconds
        print(f"NuVs on the RpRSV sample (20,000 reads; -t {proc} -m {mem_gb}):")
        print(
            f"  SPAdes alone on the reads NuVs assembles (trimmed, eliminated): "
            f"{alone[0]:.1f} s before the job, {alone[1]:.1f} s after"
        )
        print(f"  SPAdes alone on the raw reads: {raw:.1f} s")
        print(
            f"  nuvs job, POST to complete: {nuvs_seconds:.1f} s -> {len(result)} contigs, "
            f"{sum(len(c['orfs']) for c in result)} ORFs, "
            f"{sum(len(o['hits']) for c in result for o in c['orfs'])} HMM hits"
        )
        print(
            f"  ratio to SPAdes alone on the same reads: {ratio:.2f}x (target <= {TARGET_RATIO}x): "
            f"{'met' if ratio <= TARGET_RATIO else 'MISSED'}; to SPAdes on the raw reads: {nuvs_seconds / raw:.2f}x"
        )
        print("  job steps (as seen polling the process every 50 ms):")
        marks = [("(queued)", started)] + steps + [("(end)", ended)]
        for (step, at), (_, following) in zip(marks, marks[1:], strict=False):
            print(f"    {step:<24} {following - at:6.2f} s")


def orfs_and_hmmscan(proc: int) -> None:
    from ringspot.bio.hmmer import hmmpress, hmmscan, parse_tblout
    from ringspot.bio.orfs import process_contigs, read_fasta, write_orfs_fasta

    with SCAFFOLDS.open() as handle:
        records = list(read_fasta(handle))
    best, contigs = float("inf"), []
    for _ in range(5):
        started = time.perf_counter()
        contigs = process_contigs(records)
        best = min(best, time.perf_counter() - started)
    orf_count = sum(len(c["orfs"]) for c in contigs)
    print(
        f"\nORF finding on {SCAFFOLDS.name}: {len(records)} scaffolds -> {len(contigs)} contigs, {orf_count} ORFs "
        f"in {best * 1000:.1f} ms (best of 5; target < {ORF_BUDGET} s: {'met' if best < ORF_BUDGET else 'MISSED'})"
    )
    with tempfile.TemporaryDirectory(prefix="bench-nuvs-") as work:
        profiles = Path(work, "profiles.hmm")
        profiles.write_bytes(gzip.decompress((HMM7 / "profiles.hmm.gz").read_bytes()))
        hmmpress(profiles)
        orfs_fa = Path(work, "orfs.fa")
        with orfs_fa.open("w") as handle:
            write_orfs_fasta(contigs, handle)
        cpu = max(proc - 1, 0)
        started = time.perf_counter()
        hmmscan(profiles, orfs_fa, Path(work, "hmm.tsv"), cpu=cpu)
        seconds = time.perf_counter() - started
        with open(Path(work, "hmm.tsv")) as handle:
            hits = list(parse_tblout(handle))
        print(
            f"hmmscan of all {orf_count} ORFs against 7 vFam profiles (--cpu {cpu}): {seconds * 1000:.0f} ms, "
            f"{len(hits)} hits (runner polls every 0.1 s)"
        )


def main() -> None:
    proc = min(2, os.cpu_count() or 1)
    mem_gb = int(os.environ.get("RINGSPOT_MEM_GB", 8))
    nuvs_end_to_end(proc, mem_gb)
    orfs_and_hmmscan(proc)


if __name__ == "__main__":
    main()
