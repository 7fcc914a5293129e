"""Time the Pathoscope matrix build and EM on test.vta.gz and on a synthetic 1-million-read set.

Prints figures only (best of N wall-clock runs, peak RSS); nothing is asserted.
Run: .venv/bin/python bench/bench_pathoscope_em.py [--copies 50] [--repeat 20]
"""

from __future__ import annotations

import argparse
import gzip
import random
import resource
import time
from pathlib import Path

from ringspot.bio.pathoscope import (
    build_matrix,
    calculate_coverage,
    compute_best_hit,
    em,
    read_vta,
)

DATA = Path("/work/shared/data/pathoscope")
#: A perturbed copy loses 0, 1, 2 or 3 mismatches' worth of score (bowtie2 --mp 6: -8 each).
PENALTIES = (0.0, 0.0, 0.0, 0.0, 8.0, 16.0, 24.0)


def best_of(repeat: int, function, *args):
    """Return (best seconds, last result) of ``repeat`` calls."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_rss_mb() -> float:
    """Return the peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_vta() -> list:
    """Parse test.vta.gz into a list of alignment tuples."""
    with gzip.open(DATA / "test.vta.gz", "rt") as handle:
        return list(read_vta(handle))


def synthetic(alignments: list, copies: int, seed: int = 1):
    """Yield ``copies`` perturbed copies of ``alignments``, read ids suffixed per copy."""
    rng = random.Random(seed)
    for copy in range(copies):
        suffix = f"/{copy}"
        for read_id, ref_id, pos, length, score in alignments:
            yield read_id + suffix, ref_id, pos, length, score - rng.choice(PENALTIES) if copy else score


def reassign(matrix):
    """The numeric part of the step after the matrix: EM and both best-hit counts."""
    initial = compute_best_hit(matrix, matrix.x0)
    result = em(matrix)
    return result, initial, compute_best_hit(matrix, result.x)


def bench_real(repeat: int) -> list:
    """Print timings on test.vta.gz and return its alignments."""
    ref_lengths = __import__("json").loads((DATA / "ref_lengths.json").read_text())
    parse_s, alignments = best_of(repeat, load_vta)
    build_s, matrix = best_of(repeat, build_matrix, alignments)
    em_s, result = best_of(repeat, em, matrix)
    hits_s, _ = best_of(repeat, reassign, matrix)
    full_s, full = best_of(repeat, lambda: em(matrix, epsilon=0))
    cov_s, _ = best_of(repeat, calculate_coverage, matrix, result.x, ref_lengths)
    print(
        f"test.vta.gz: {len(alignments):,} alignments, {len(matrix.reads):,} reads, "
        f"{len(matrix.refs)} refs, {len(matrix.nu_read):,} multi-mapped, EM iterations {result.iterations}"
    )
    print(f"  parse (gzip + read_vta)      {parse_s * 1000:8.1f} ms   (best of {repeat})")
    print(f"  build_matrix                 {build_s * 1000:8.1f} ms")
    print(f"  em                           {em_s * 1000:8.1f} ms")
    print(f"  em, epsilon=0 ({full.iterations} iterations) {full_s * 1000:6.1f} ms")
    print(f"  em + 2 x compute_best_hit    {hits_s * 1000:8.1f} ms")
    print(f"  build + em                   {(build_s + em_s) * 1000:8.1f} ms")
    print(f"  calculate_coverage           {cov_s * 1000:8.1f} ms")
    return alignments


def bench_synthetic(alignments: list, copies: int, repeat: int) -> None:
    """Print timings and peak memory on ``copies`` perturbed copies of the real alignments."""
    generate_s, count = best_of(1, lambda: sum(1 for _ in synthetic(alignments, copies)))
    rss_before = peak_rss_mb()
    build_s, matrix = best_of(1, lambda: build_matrix(synthetic(alignments, copies)))
    rss_matrix = peak_rss_mb()
    em_s, result = best_of(max(1, repeat // 5), em, matrix)
    full_s, full = best_of(1, lambda: em(matrix, epsilon=0))
    hits_s, _ = best_of(1, reassign, matrix)
    print(
        f"synthetic: {count:,} alignments, {len(matrix.reads):,} reads, "
        f"{len(matrix.nu_read):,} multi-mapped, EM iterations {result.iterations}"
    )
    print(f"  generating the tuples alone  {generate_s:8.2f} s")
    print(f"  build_matrix (incl. gen.)    {build_s:8.2f} s  -> {build_s - generate_s:.2f} s without generation")
    print(f"  em                           {em_s:8.2f} s   (best of {max(1, repeat // 5)})")
    print(f"  em, epsilon=0 ({full.iterations} iterations) {full_s:6.2f} s")
    print(f"  em + 2 x compute_best_hit    {hits_s:8.2f} s")
    print(
        f"  peak RSS: {rss_before:.0f} MiB before the build, {rss_matrix:.0f} MiB after it, "
        f"{peak_rss_mb():.0f} MiB at the end"
    )


def main() -> None:
    """Run both benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=50, help="copies of test.vta (50 = ~1M reads)")
    parser.add_argument("--repeat", type=int, default=20, help="runs per timing on test.vta")
    args = parser.parse_args()
    alignments = bench_real(args.repeat)
    bench_synthetic(alignments, args.copies, args.repeat)


if __name__ == "__main__":
    main()
