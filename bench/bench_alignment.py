"""The alignment job on the real process types against bare ``bowtie2 | samtools sort``, in one run.

Starts a private nx-27017, Redis, and the Procfile's ``web`` and ``worker-alignments`` lines
(gunicorn; one ``alignments`` pool, 2 bowtie2 threads), puts the plant-virus reference's Raspberry
ringspot virus OTU and the RpRSV sample in place, and times, alternating so that load drifts hit
both alike:

* bare: ``bowtie2 --local --no-unal -p 2 -x NC_005266 -U r1,r2 | samtools sort -o x.bam -`` as
  one would type it (its Bowtie2 index built beforehand, not timed), and the whole by-hand
  equivalent of the job (``bowtie2-build`` + the pipeline + ``samtools index``);
* the job, from ``POST /api/samples/:id/alignments`` to the job's ``complete``: cold (the
  worker builds the genome's index) and warm (cached); per-step times from polling the job,
  and the queue pick-up (job created -> claimed) apart.

Samples: ``rprsv-paired-nextseq`` (20,000 reads) and, unless ``--skip-large``, a sample of
``--reads`` reads built by repeating its real reads (names made unique per copy). Prints figures
(medians of ``--repeat`` runs); asserts only that the job maps as many reads as the bare run.
Run: ``.venv/bin/python bench/bench_alignment.py [--repeat 5] [--reads 1000000] [--skip-large]``
(target: warm job <= 1.2x bare ``bowtie2 | samtools sort``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_pathoscope import build_large_sample  # noqa: E402
from bench.services import (  # noqa: E402
    Services,
    bench_user,
    follow_job,
    free_port,
    run,
    stack_env,
)
from ringspot.cli.supervisor import read_procfile  # noqa: E402
from ringspot.core.db import connect  # noqa: E402
from tests.analyses_data import (  # noqa: E402
    RPRSV_READS,
    insert_otus,
    insert_reference,
    insert_sample,
    load_otus,
)

RPRSV, NC_005266 = "9fe2f60d", "o6g9f7oq"
FLAGS = ["--local", "--no-unal"]


def bare(work: Path, reads: list[Path], index: Path, build: bool = False) -> tuple[float, float, int]:
    """(seconds of ``bowtie2 | samtools sort``, seconds of the by-hand whole, mapped reads)."""
    work.mkdir(exist_ok=True)
    bam = work / "bare.bam"
    start = time.perf_counter()
    if build:
        subprocess.run(
            ["bowtie2-build", "--quiet", "--threads", "2", str(index.with_suffix(".fa")), str(work / "by-hand")],
            check=True,
            capture_output=True,
        )
        index = work / "by-hand"
    mapping = time.perf_counter()
    bowtie2 = subprocess.Popen(
        ["bowtie2", *FLAGS, "-p", "2", "-x", str(index), "-U", ",".join(map(str, reads))],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    sort = subprocess.run(
        ["samtools", "sort", "-T", str(work / "sort"), "-o", str(bam), "-"],
        stdin=bowtie2.stdout,
        stderr=subprocess.DEVNULL,
    )
    bowtie2.stdout.close()
    if bowtie2.wait() or sort.returncode:
        raise SystemExit("bare bowtie2 | samtools sort failed")
    piped = time.perf_counter() - mapping
    subprocess.run(["samtools", "index", str(bam)], check=True)
    whole = time.perf_counter() - start
    mapped = int(
        subprocess.run(
            ["samtools", "view", "-c", "-F", "4", str(bam)], check=True, capture_output=True, text=True
        ).stdout
    )
    return piped, whole, mapped


def seconds_between(earlier: str, later: str) -> float:
    parse = lambda t: datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    return (parse(later) - parse(earlier)).total_seconds()


def job(api: requests.Session, url: str, db, sample_id: str) -> tuple[float, float, dict, dict]:
    """(seconds from request to complete, seconds of queue pick-up, seconds per step, statistics)."""
    start = time.perf_counter()
    response = api.post(f"{url}/api/samples/{sample_id}/alignments", json={"sequence_id": NC_005266})
    response.raise_for_status()
    job_id = response.json()["job"]["$ref"].rsplit("/", 1)[1]
    total, steps = follow_job(db, job_id, start, poll=0.01, what="alignment")
    doc = db.processes.find_one({"_id": job_id})
    claimed = next(s["timestamp"] for s in doc["status"] if s["state"] == "running")
    alignment = db.alignments.find_one({"_id": response.json()["id"]})
    return total, seconds_between(doc["created_at"], claimed), steps, alignment["statistics"]


def measure(
    label: str,
    services: Services,
    api,
    url: str,
    db,
    work: Path,
    reads: list[Path],
    sample_id: str,
    index: Path,
    repeat: int,
) -> None:
    cache = Path(work / "data" / "cache" / "alignment-refs")
    subprocess.run(["rm", "-rf", str(cache)], check=True)
    cold = job(api, url, db, sample_id)
    bares, wholes, warms = [], [], []
    for _ in range(repeat):
        piped, whole, mapped = bare(work / "bare", reads, index, build=True)
        bares.append(piped)
        wholes.append(whole)
        warms.append(job(api, url, db, sample_id))
    assert all(w[3]["mapped_reads"] == mapped for w in warms), (mapped, [w[3] for w in warms])
    piped, whole = statistics.median(bares), statistics.median(wholes)
    warm_total = statistics.median(w[0] for w in warms)
    pickup = statistics.median(w[1] for w in warms)
    stats = warms[0][3]
    print(
        f"\n{label}: {stats['mapped_reads']:,} reads mapped, breadth {stats['breadth']:.1%}, "
        f"mean depth {stats['mean_depth']:.1f}, identity {stats['identity']:.2f}%"
    )
    print(
        f"  bare bowtie2 | samtools sort                 {piped:7.2f} s   (median of {repeat}: "
        + ", ".join(f"{b:.2f}" for b in bares)
        + ")"
    )
    print(f"  by hand: bowtie2-build + pipeline + index    {whole:7.2f} s")
    print(f"  job, cold (index built on the worker)        {cold[0]:7.2f} s   = {cold[0] / piped:.2f}x bare")
    print(
        f"  job, warm (index cached)                     {warm_total:7.2f} s   = {warm_total / piped:.2f}x bare, "
        f"{warm_total / whole:.2f}x by hand   (median of {repeat}: " + ", ".join(f"{w[0]:.2f}" for w in warms) + ")"
    )
    print(
        f"      of which queue pick-up (created -> claimed) {pickup:.2f} s; in the job "
        f"{warm_total - pickup:.2f} s = {(warm_total - pickup) / piped:.2f}x bare"
    )
    median_steps = {step: statistics.median(w[2].get(step, 0) for w in warms) for step in warms[0][2]}
    print("      steps (warm, median): " + ", ".join(f"{step} {s:.2f}" for step, s in median_steps.items()))
    print("      cold steps: " + ", ".join(f"{step} {s:.2f}" for step, s in cold[2].items()))
    print(f"  load average now: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="warm runs (and bare runs) per sample")
    parser.add_argument("--reads", type=int, default=1_000_000, help="reads of the large sample")
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    with Services("alignment") as services:
        work = services.path
        data_path = work / "data"
        port = free_port()
        env = stack_env(services, port)
        commands = {c.name: c.argv for c in read_procfile(ROOT / "Procfile", env)}
        services.start("web", commands["web"], env=env, cwd=ROOT)
        services.wait_port("web", port)
        services.start("worker", commands["worker-alignments"], env=env, cwd=ROOT)
        print("worker pool as the Procfile runs it: " + " ".join(commands["worker-alignments"]))
        db = connect(env["MONGODB_URI"])
        api = requests.Session()
        api.auth = bench_user(db)
        url = f"http://127.0.0.1:{port}"

        otu = next(o for o in load_otus() if o["_id"] == RPRSV)
        reference = insert_reference(db, public=True)
        insert_otus(db, reference["_id"], [otu])
        sequence = next(s for i in otu["isolates"] for s in i["sequences"] if s["_id"] == NC_005266)
        index = work / "NC_005266"
        index.with_suffix(".fa").write_text(f">NC_005266\n{sequence['sequence']}\n")
        subprocess.run(["bowtie2-build", "--quiet", str(index.with_suffix(".fa")), str(index)], check=True)
        time.sleep(2)  # let the worker finish starting (its first message would wait for it)

        sample = insert_sample(db, str(data_path), RPRSV_READS, user_id="bench")
        measure(
            "rprsv-paired-nextseq: 20,000 reads (both mates unpaired) against NC_005266 (7,935 bases)",
            services,
            api,
            url,
            db,
            work,
            RPRSV_READS,
            sample["_id"],
            index,
            args.repeat,
        )
        if not args.skip_large:
            reads = build_large_sample(work, args.reads)
            large = insert_sample(db, str(data_path), reads, user_id="bench")
            measure(
                f"{args.reads:,} reads (RpRSV reads repeated) against NC_005266",
                services,
                api,
                url,
                db,
                work,
                reads,
                large["_id"],
                index,
                max(1, min(args.repeat, 2)),
            )


if __name__ == "__main__":
    run(main)
