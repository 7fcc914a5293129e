"""Accuracy record: Pathoscope's diagnosis on every real sample of ``../shared/data/samples``.

For each sample the reads go the way the ``pathoscope_bowtie`` job takes them: mates renamed
apart (every mate a read), small-RNA reads adapter-trimmed, then the two bowtie2 passes with
the job's flags (default isolates of the plant-virus reference, plus the sample's own virus
where that reference lacks it; then every isolate of the candidate OTUs with ``-k 100``),
reassignment and the diagnosis. Prints per sample: library type, the virus the data README
names, its call / reads / breadth / mean depth, the top call that is not that virus, and the
wall time of the whole run against the two raw bowtie2 passes alone (``-S /dev/null``).

Run: ``.venv/bin/python bench/bench_diagnosis.py [--sample NAME ...] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ringspot.bio import diagnosis  # noqa: E402
from ringspot.bio import reference as reference_format  # noqa: E402
from ringspot.bio.alignments import mapped_refs, pathoscope_flags  # noqa: E402
from ringspot.bio.pathoscope import read_sam, run_pathoscope  # noqa: E402
from ringspot.bio.runner import stream_lines  # noqa: E402
from tests.analyses_data import DATA, load_otus  # noqa: E402
from tests.diagnosis_data import SAMPLES, RealSample, add_missing_virus, prepare_reads  # noqa: E402

THREADS = "2"


def build(fasta_records, prefix: Path) -> None:
    fasta = prefix.with_suffix(".fa")
    with open(fasta, "w") as handle:
        reference_format.write_fasta(fasta_records, handle)
    subprocess.run(["bowtie2-build", "--threads", THREADS, str(fasta), str(prefix)], check=True, capture_output=True)


def default_pass(index: Path, reads: Path, library_type: str) -> list[str]:
    flags = pathoscope_flags(library_type)
    return ["bowtie2", "-p", THREADS, "--no-unal", "--no-hd", "--no-sq", *flags, "-x", str(index), "-U", str(reads)]


def isolate_pass(index: Path, reads: Path, library_type: str) -> list[str]:
    return [*default_pass(index, reads, library_type), "-k", "100"]


def timed_raw(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([*argv, "-S", "/dev/null"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def run_sample(sample: RealSample, otus: list[dict], default_index: Path, work: Path) -> dict:
    """Prepare, map twice, reassign and diagnose; time it against the raw passes."""
    start = time.perf_counter()
    reads = prepare_reads(sample, work)
    library = sample.library_type
    candidates = mapped_refs(stream_lines(default_pass(default_index, reads, library), timeout=3600))
    sequence_otu_map = {s["_id"]: o["_id"] for o in otus for i in o["isolates"] for s in i["sequences"]}
    otu_ids = {sequence_otu_map[ref] for ref in candidates}
    records = list(reference_format.iter_all_isolate_fasta(otus, otu_ids))
    lengths = {sequence_id: len(sequence) for sequence_id, sequence in records}
    build(records, work / "isolates")
    alignments = read_sam(stream_lines(isolate_pass(work / "isolates", reads, library), timeout=3600))
    catalog = diagnosis.catalog(o for o in otus if o["_id"] in otu_ids)
    manifest = dict.fromkeys(otu_ids, 0)
    results = run_pathoscope(alignments, lengths, sequence_otu_map, manifest, work / "out", otus=catalog)
    wall = time.perf_counter() - start
    raw = timed_raw(default_pass(default_index, reads, library)) + timed_raw(
        isolate_pass(work / "isolates", reads, library)
    )
    return {"sample": sample, "results": results, "wall": wall, "raw": raw}


def summary(run: dict) -> dict:
    sample, rows = run["sample"], run["results"]["diagnosis"]
    known = next((row for row in rows if row["id"] == sample.otu_id), None)
    other = next((row for row in rows if row["id"] != sample.otu_id), None)
    return {
        "sample": sample.name,
        "library": sample.library_type,
        "virus": sample.virus,
        "rank": rows.index(known) + 1 if known else None,
        "call": known["call"] if known else "absent",
        "reads": known["reads"] if known else 0,
        "breadth": known["breadth"] if known else 0.0,
        "evenness": known["evenness"] if known else 0.0,
        "mean_depth": known["mean_depth"] if known else 0.0,
        "other": f"{other['name']}: {other['call']}, {other['reads']} reads, breadth {other['breadth']:.1%}, "
        f"evenness {other['evenness']:.2f}"
        if other
        else "none",
        "wall": run["wall"],
        "raw": run["raw"],
    }


def print_table(rows: list[dict]) -> None:
    print(
        "| sample | library | virus (data README) | rank | call | reads | breadth | mean depth | "
        "top call of another OTU | wall s | raw bowtie2 s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['sample']} | {r['library']} | {r['virus']} | {r['rank']} | {r['call']} | {r['reads']} | "
            f"{r['breadth']:.1%} | {r['mean_depth']:.1f} | {r['other']} | {r['wall']:.1f} | {r['raw']:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", action="append", help="only these samples (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the full diagnoses here")
    parser.add_argument("--rows", type=int, default=5, help="diagnosis rows printed per sample")
    options = parser.parse_args()
    chosen = [s for s in SAMPLES if not options.sample or s.name in options.sample]
    otus = add_missing_virus(load_otus(), chosen)
    with tempfile.TemporaryDirectory(prefix="bench-diagnosis-") as tmp:
        root = Path(tmp)
        build(reference_format.iter_default_isolate_fasta(otus), root / "default")
        runs = []
        for sample in chosen:
            work = root / sample.name
            work.mkdir()
            run = run_sample(sample, otus, root / "default", work)
            runs.append(run)
            print(f"# {sample.name}: {run['results']['read_count']} reads aligned", file=sys.stderr)
            for row in run["results"]["diagnosis"][: options.rows]:
                print(
                    f"#   {row['name'][:40]:<40} {row['call']:<13} reads {row['reads']:>6} "
                    f"breadth {row['breadth']:.3f} evenness {row['evenness']:.2f} mean {row['mean_depth']:.2f} "
                    f"median {row['median_depth']} segments {row['segments']['covered']}/{row['segments']['total']}",
                    file=sys.stderr,
                )
    print_table([summary(run) for run in runs])
    if options.json:
        options.json.write_text(json.dumps([{"sample": r["sample"].name, **r["results"]} for r in runs], default=str))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
    _ = DATA
