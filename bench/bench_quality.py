"""How fast is the sample quality pass, against the cost of just decompressing?

Builds a gzipped FASTQ of one million reads (36-151 bp) by repeating the real reads
of ``rprsv-paired-nextseq`` mate 1, then times in one run:

* ``gzip -dc FILE | wc -l``: the floor, the time to decompress and scan the file;
* ``fastqc_report``: the whole quality pass (every record validated, FastQC's figures);
* ``count_records``: validation alone, through zlib (what other readers use).

Floor and quality pass alternate for three rounds and the best time of each is kept, so
a machine busy with other work skews both alike. It prints reads per second, the ratio
to the floor (target: at most 1.3x), the CPU time of each (gzip and wc for the floor,
both threads of the pass: one inflates (ISA-L) and parses, the other counts), and
the peak RSS of this process.
Run: ``.venv/bin/python bench/bench_quality.py [READS]``. No asserts.
"""

from __future__ import annotations

import gzip
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ringspot.bio.fastq import count_records
from ringspot.bio.quality import fastqc_report

SHARED = Path(os.environ.get("RINGSPOT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SOURCE = SHARED / "data" / "samples" / "rprsv-paired-nextseq" / "paired_1.fq.gz"


def build_reads(path: Path, reads: int) -> None:
    """Write ``reads`` records by repeating the real ones as concatenated gzip members.

    Compressing the 10,000 real reads once and repeating that member is valid gzip
    (``gzip -dc`` and Python read all members) and takes a second instead of the 20 s
    that compressing 300 MB would; repeated read names do not matter to these passes.
    """
    with gzip.open(SOURCE, "rb") as handle:
        lines = handle.read().splitlines(keepends=True)
    per_copy = len(lines) // 4
    member = gzip.compress(b"".join(lines), compresslevel=6)
    copies, rest = divmod(reads, per_copy)
    with open(path, "wb") as out:
        for _ in range(copies):
            out.write(member)
        if rest:
            out.write(gzip.compress(b"".join(lines[: 4 * rest]), compresslevel=6))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: Rounds of (floor, quality pass); the best of each is reported.
ROUNDS = 3

#: The quality pass may take this many times the floor.
TARGET = 1.3


def timed(function) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process's threads and of the children it waited for)."""
    start, cpu = time.perf_counter(), _cpu_seconds()
    function()
    return time.perf_counter() - start, _cpu_seconds() - cpu


def _cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def line(label: str, seconds: float, cpu: float, reads: int, floor: float | None = None) -> None:
    ratio = f"  {seconds / floor:5.2f}x the floor" if floor else " " * 17
    print(f"{label:<38} {seconds:7.2f} s  {reads / seconds:>10,.0f} reads/s{ratio}  CPU {cpu:5.2f} s")


def main() -> None:
    reads = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "reads.fq.gz"
        start = time.perf_counter()
        build_reads(path, reads)
        size = path.stat().st_size
        print(f"built {reads:,} reads, {size / 2**20:.1f} MiB gzipped, in {time.perf_counter() - start:.1f} s")
        rss_before = peak_rss_mib()

        results: dict[str, Any] = {}

        def floor_pass() -> None:
            gunzip = subprocess.Popen(["gzip", "-dc", str(path)], stdout=subprocess.PIPE)
            wc = subprocess.run(["wc", "-l"], stdin=gunzip.stdout, capture_output=True, check=True)
            if gunzip.stdout is not None:
                gunzip.stdout.close()
            gunzip.wait()
            results["lines"] = int(wc.stdout)

        def quality_pass() -> None:
            results["report"] = fastqc_report(path)

        floors, passes = [], []
        for _ in range(ROUNDS):
            floors.append(timed(floor_pass))
            passes.append(timed(quality_pass))
        (floor, floor_cpu), (seconds, cpu) = min(floors), min(passes)
        line(f"gzip -dc | wc -l (floor, best of {ROUNDS})", floor, floor_cpu, reads)
        line(f"fastqc_report (best of {ROUNDS})", seconds, cpu, reads, floor)
        line("count_records (validation, zlib)", *timed(lambda: count_records(path)), reads, floor)
        report = results["report"]
        print(
            f"wc -l / 4 = {results['lines'] // 4:,}; report: count {report.count:,}, "
            f"length {report.length}, gc {report.gc}%"
        )
        print(f"peak RSS {peak_rss_mib():.0f} MiB (before the passes: {rss_before:.0f} MiB)")
        verdict = "within" if seconds / floor <= TARGET else "OVER"
        print(f"ratio to the floor: {seconds / floor:.2f}x ({verdict} the {TARGET}x target)")


if __name__ == "__main__":
    main()
