"""pathoscope_bowtie end to end on the real process types, against the two raw bowtie2 passes.

Starts a private nx-27017, Redis, the API under gunicorn and one ``analyses`` worker pool
(``dramatiq ringspot.workers.app --queues analyses``, 2 bowtie2 threads), puts the plant-virus
reference with a real default-isolate index and a sample in place, then times in one run:

* the two raw mapping passes alone, each as bowtie2 is run by hand (``-S /dev/null``):
  pass 1 all reads against the default isolates, pass 2 all reads against the isolate index
  of the candidate OTUs with ``-k 100 --al``;
* the analysis from ``POST /api/samples/:id/analyses`` to the job's ``complete``: a cold run
  (index download and ``bowtie2-build`` of the isolate index on this worker) and a warm run
  (both cached); per-step times come from polling the job's ``step``.

Samples: ``rprsv-paired-nextseq`` (20,000 reads) and a 1-million-read paired sample built by
repeating its real reads (names made unique per copy). Peak memory: the worker process's
``VmHWM`` and the largest bowtie2 child of the raw passes. Ends with the README's performance
rows: each size's warm analysis against its floor, in wall time and in CPU seconds (on a shared
machine the CPU ratio is the steadier one). Asserts nothing but the read counts. Run:
``.venv/bin/python bench/bench_pathoscope.py [--reads N] [--skip-large]`` (targets: warm analysis
<= 1.05x the raw passes at 1 M reads, <= 1.3x at 20,000).
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import shutil
import subprocess
import sys
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
    stack_env,
    start_web,
    start_worker,
)
from ringspot.bio import reference as reference_format  # noqa: E402
from ringspot.core.analyses import load_results  # noqa: E402
from ringspot.core.db import connect  # noqa: E402
from tests.analyses_data import (  # noqa: E402
    RPRSV_READS,
    build_index_files,
    insert_index,
    insert_reference,
    insert_sample,
    load_otus,
)

MAPPING = ["--local", "--score-min", "L,20,1.0", "-N", "0", "-L", "15"]


def build_large_sample(folder: Path, reads: int) -> list[Path]:
    """Two mate files of ``reads / 2`` records each, repeating the real mates with numbered names."""
    paths = []
    for source, name in zip(RPRSV_READS, ("big_1.fq.gz", "big_2.fq.gz"), strict=False):
        with gzip.open(source, "rb") as handle:
            lines = handle.read().splitlines()
        records = [lines[i : i + 4] for i in range(0, len(lines), 4)]
        path = folder / name
        with open(path, "wb") as raw:
            pigz = subprocess.Popen(["pigz", "-4", "-c"], stdin=subprocess.PIPE, stdout=raw)
            written, copy = 0, 0
            while written < reads // 2:
                batch = records[: reads // 2 - written]
                pigz.stdin.write(b"".join(b"%s:%d\n%s\n+\n%s\n" % (h.split()[0], copy, s, q) for h, s, _, q in batch))
                written += len(batch)
                copy += 1
            pigz.stdin.close()
            if pigz.wait():
                raise SystemExit("pigz failed")
        paths.append(path)
    return paths


def timed(argv: list) -> float:
    start = time.perf_counter()
    subprocess.run([str(a) for a in argv], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def raw_passes(work: Path, reads: list[Path], otus: list[dict], index_prefix: Path) -> tuple[float, float, int, float]:
    """(pass 1 s, pass 2 s, aligned reads, CPU s of both): the mapping passes alone, as run by hand."""
    work.mkdir(exist_ok=True)
    joined = ",".join(map(str, reads))
    default = [
        "bowtie2",
        "-p",
        "2",
        "--local",
        "--no-unal",
        "--no-hd",
        "--no-sq",
        "--score-min",
        "L,20,1.0",
        "-N",
        "0",
        "-L",
        "15",
        "-x",
        index_prefix,
        "-U",
        joined,
    ]
    cpu = children_cpu_seconds()
    first = timed(default + ["-S", "/dev/null"])
    cpu = children_cpu_seconds() - cpu
    # The isolate index of the candidates (not timed: the warm analysis has it cached too).
    output = subprocess.run([str(a) for a in default], check=True, capture_output=True, text=True).stdout
    candidates = {line.split("\t")[2] for line in output.splitlines()}
    sequence_otu_map = {s["_id"]: o["_id"] for o in otus for i in o["isolates"] for s in i["sequences"]}
    with open(work / "isolates.fa", "w") as handle:
        reference_format.write_fasta(
            reference_format.iter_all_isolate_fasta(otus, {sequence_otu_map[c] for c in candidates}), handle
        )
    subprocess.run(
        ["bowtie2-build", "--threads", "2", str(work / "isolates.fa"), str(work / "isolates")],
        check=True,
        capture_output=True,
    )
    before = children_cpu_seconds()
    second = timed(
        [
            "bowtie2",
            "-p",
            "2",
            "--no-hd",
            "--no-sq",
            "--no-unal",
            *MAPPING,
            "-k",
            "100",
            "--al",
            work / "aligned.fq",
            "-x",
            work / "isolates",
            "-U",
            joined,
            "-S",
            "/dev/null",
        ]
    )
    cpu += children_cpu_seconds() - before
    with open(work / "aligned.fq", "rb") as fastq:
        aligned = sum(1 for _ in fastq) // 4
    return first, second, aligned, cpu


def stack_cpu_seconds(services: Services) -> float:
    """CPU seconds of the API, the worker pool (bowtie2 included) and the database."""
    return sum(used for name, used in services.cpu_seconds().items() if name in ("web", "worker", "db"))


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def worker_peak_mib(services: Services) -> float:
    """Largest VmHWM among the worker pool's processes (master and forked worker)."""
    proc = dict(services.procs)["worker"]
    peak = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != proc.pid:
                continue
            with open(f"/proc/{entry.name}/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except (OSError, ProcessLookupError):
            continue
    return peak / 1024


def analyse(
    services: Services, api: requests.Session, url: str, db, sample_id: str, ref_id: str
) -> tuple[float, dict, dict, float]:
    """(seconds from request to complete, seconds per step, results, CPU s of the stack) of one analysis."""
    cpu = stack_cpu_seconds(services)
    start = time.perf_counter()
    response = api.post(
        f"{url}/api/samples/{sample_id}/analyses",
        json={"workflow": "pathoscope_bowtie", "ref_id": ref_id, "subtractions": []},
    )
    response.raise_for_status()
    job_id = response.json()["job"]["id"]
    total, steps = follow_job(db, job_id, start, poll=0.02, what="analysis")
    time.sleep(0.5)  # the worker reaps bowtie2 and reports before the job shows complete; let it settle
    cpu = stack_cpu_seconds(services) - cpu
    analysis = load_results(str(services.path / "data"), db.analyses.find_one({"_id": response.json()["id"]}))
    return total, steps, analysis["results"], cpu


#: One row per sample size for the closing table: (sample, floor s, job s, floor CPU s, job CPU s, load).
SUMMARY: list[tuple[str, float, float, float, float, float]] = []


def report(label: str, raw: tuple[float, float, int, float], runs: list[tuple[str, float, dict, dict, float]]) -> None:
    first, second, aligned, raw_cpu = raw
    passes = first + second
    print(f"\n{label}")
    print(f"  raw bowtie2 pass 1 (default isolates)    {first:7.2f} s")
    print(f"  raw bowtie2 pass 2 (isolates, -k 100)    {second:7.2f} s   ({aligned:,} reads aligned)")
    print(f"  the two raw passes                       {passes:7.2f} s   CPU {raw_cpu:7.2f} s")
    for name, total, steps, results, cpu in runs:
        print(
            f"  analysis, {name:<30} {total:7.2f} s   CPU {cpu:7.2f} s   = {total / passes:.2f}x the raw passes "
            f"(CPU {cpu / raw_cpu:.2f}x)   read_count {results['read_count']:,}, {len(results['hits'])} hits"
        )
        print("      " + ", ".join(f"{step} {seconds:.2f}" for step, seconds in steps.items()))
    _, total, _, _, cpu = runs[-1]
    SUMMARY.append((label.split(":")[0].split(" (")[0], passes, total, raw_cpu, cpu, os.getloadavg()[0]))
    print(f"  load average during the run: {os.getloadavg()[0]:.1f} (2 cores; above 2 the wall times are contended)")


def print_summary() -> None:
    """The README's performance rows: the warm job against its floor, the two raw bowtie2 passes."""
    print("\nPathoscope against its floor (the two raw bowtie2 passes), warm caches; CPU counts every process")
    print("| Pathoscope, warm | floor s | job s | ratio | floor CPU s | job CPU s | CPU ratio | load |")
    print("|---|---|---|---|---|---|---|---|")
    for sample, floor, job, floor_cpu, job_cpu, load in SUMMARY:
        print(
            f"| {sample} | {floor:.2f} | {job:.2f} | {job / floor:.2f}x | {floor_cpu:.2f} | {job_cpu:.2f} "
            f"| {job_cpu / floor_cpu:.2f}x | {load:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=1_000_000, help="reads of the large sample")
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    with Services("pathoscope") as services:
        work = services.path
        data_path = work / "data"
        port = free_port()
        env = stack_env(services, port)
        start_web(services, env, ROOT)
        start_worker(services, env, ROOT, "analyses")
        db = connect(env["MONGODB_URI"])
        api = requests.Session()
        api.auth = bench_user(db)
        url = f"http://127.0.0.1:{port}"

        otus = load_otus()
        start = time.perf_counter()
        index_files = build_index_files(otus, work / "index")
        print(
            f"default-isolate index of {len(otus):,} OTUs built in {time.perf_counter() - start:.1f} s "
            "(once, not part of any figure)"
        )
        reference = insert_reference(db, public=True)
        insert_index(db, str(data_path), reference["_id"], otus, index_files)

        sample = insert_sample(db, str(data_path), RPRSV_READS, user_id="bench")
        raw = raw_passes(work / "raw-rprsv", RPRSV_READS, otus, index_files / "reference")
        runs = []
        for name in ("cold (nothing cached)", "warm (caches filled)"):
            total, steps, results, cpu = analyse(services, api, url, db, sample["_id"], reference["_id"])
            runs.append((name, total, steps, results, cpu))
        assert runs[0][3]["read_count"] == raw[2], (runs[0][3]["read_count"], raw[2])
        report("rprsv-paired-nextseq: 20,000 reads (2 x 10,000, up to 151 bp)", raw, runs)
        print(f"  worker peak RSS {worker_peak_mib(services):.0f} MiB")

        if not args.skip_large:
            start = time.perf_counter()
            reads = build_large_sample(work, args.reads)
            print(f"\nbuilt {args.reads:,} reads by repeating the real ones in {time.perf_counter() - start:.1f} s")
            large = insert_sample(db, str(data_path), reads, user_id="bench")
            raw = raw_passes(work / "raw-large", reads, otus, index_files / "reference")
            total, steps, results, cpu = analyse(services, api, url, db, large["_id"], reference["_id"])
            report(
                f"{args.reads:,} reads (RpRSV reads repeated)", raw, [("warm index cache", total, steps, results, cpu)]
            )
            print(f"  worker peak RSS {worker_peak_mib(services):.0f} MiB")
        print_summary()
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"\npeak RSS of the largest child of this script (bowtie2 of the raw passes, bowtie2-build): "
            f"{children:.0f} MiB"
        )
        shutil.rmtree(data_path, ignore_errors=True)


if __name__ == "__main__":
    main()
