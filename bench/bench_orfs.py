"""NuVs ORF finding and hmmscan on a real assembly.

    .venv/bin/python bench/bench_orfs.py

Times ``process_contigs`` on scaffolds_paired.fa (best of 5) against its 0.5 s budget, then
presses the hmm7 vFam profiles and scans every ORF against them with 1 and 2 threads.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import time
from functools import partial
from pathlib import Path

from ringspot.bio import runner
from ringspot.bio.hmmer import hmmpress, hmmscan, parse_tblout
from ringspot.bio.orfs import process_contigs, read_fasta, write_orfs_fasta

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SCAFFOLDS = DATA / "nuvs" / "scaffolds_paired.fa"
PROFILES = DATA / "hmm" / "hmm7" / "profiles.hmm.gz"
ORF_BUDGET = 0.5  # seconds


def timed(function, repeat: int = 1):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    with SCAFFOLDS.open() as handle:
        records = list(read_fasta(handle))
    bases = sum(len(seq) for _, seq in records)
    seconds, contigs = timed(lambda: process_contigs(records), repeat=5)
    orf_count = sum(len(c["orfs"]) for c in contigs)
    print(f"ORFs: {len(records)} scaffolds, {bases:,} bp -> {len(contigs)} contigs, {orf_count} ORFs")
    print(
        f"  best of 5: {seconds * 1000:.1f} ms ({bases / seconds / 1e6:.1f} Mbp/s), "
        f"{seconds / ORF_BUDGET:.1%} of the {ORF_BUDGET} s budget"
    )

    # Tool times below include the runner's wait loop, which looks every POLL_INTERVAL seconds.
    print(f"(tool times are rounded up to the runner's {runner.POLL_INTERVAL} s poll interval)")
    with tempfile.TemporaryDirectory(prefix="bench-orfs-") as work:
        profiles = Path(work, "profiles.hmm")
        profiles.write_bytes(gzip.decompress(PROFILES.read_bytes()))
        orfs_fa = Path(work, "orfs.fa")
        with orfs_fa.open("w") as handle:
            write_orfs_fasta(contigs, handle)
        seconds, _ = timed(lambda: hmmpress(profiles))
        print(f"hmmpress of 7 vFam profiles: {seconds * 1000:.0f} ms")
        for cpu in (1, 2) if (os.cpu_count() or 1) > 1 else (1,):
            tblout = Path(work, f"hmm{cpu}.tsv")
            seconds, _ = timed(partial(hmmscan, profiles, orfs_fa, tblout, cpu=cpu), repeat=3)
            with tblout.open() as handle:
                hits = list(parse_tblout(handle))
            print(
                f"hmmscan {orf_count} ORFs x 7 profiles, --cpu {cpu}: best of 3 {seconds * 1000:.0f} ms, "
                f"{len(hits)} hits, {seconds / orf_count * 1000:.2f} ms per ORF"
            )


if __name__ == "__main__":
    main()
