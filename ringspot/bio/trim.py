"""Reads made ready for mapping: small-RNA adapters found and cut with cutadapt, mates named apart.

A small-RNA read is an insert of 18-30 nt followed by the kit's 3' adapter (and, for QIAseq,
a 12-nt UMI after it): until the adapter is cut away, a read of a 21-nt siRNA is a 76-nt read
that aligns nowhere end to end, or aligns on 20 nt in local mode wherever chance allows. The
adapter is detected among the common kits by how many reads carry its first bases, or given
on the sample. cutadapt (Debian's package) trims it, and reads left under 18 nt are dropped:
too short to place on a genome.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import runner
from .fastq import open_maybe_gzip, read_fastq_blocks, write_distinct_mates

#: 3' adapters of the common small-RNA kits. Poly-A stands for kits that tail the RNA with A.
KIT_ADAPTERS: Mapping[str, str] = {
    "TruSeq small RNA": "TGGAATTCTCGGGTGCCAAGG",
    "QIAseq miRNA": "AACTGTAGGCACCATCAAT",
    "NEBNext": "AGATCGGAAGAGCACACGTCT",
    "poly-A": "A" * 20,
}
#: Name of an adapter given on the sample rather than detected.
GIVEN = "given on the sample"
#: Bases of an adapter's start a read must carry to count as carrying the adapter.
PROBE_LENGTH = 12
#: Reads looked at to detect the adapter (the first of the file).
DETECTION_READS = 100_000
#: A kit is detected when at least this fraction of the reads carry its adapter (a plant genome
#: alone puts runs of 12 A in up to 13 % of 101-nt reads: the grapevine sample).
DETECTION_FRACTION = 0.25
#: Reads shorter than this after trimming are dropped.
MIN_LENGTH = 18
#: Reads longer than this are not small RNAs; a small-RNA sample made mostly of them with no
#: adapter found was probably declared small-RNA by mistake, or uses an unknown kit.
LONG_READ = 50


@dataclass(frozen=True)
class Detection:
    """What the first reads of a file say: the kit adapter found (or None) and the read lengths."""

    adapter: str | None
    kit: str | None
    fraction: float  # of the reads looked at that carry the adapter
    reads: int  # reads looked at
    long_fraction: float  # of the reads looked at that are longer than LONG_READ


@dataclass
class TrimSummary:
    """What trimming did to one sample: kept with its quality document."""

    adapter: str | None
    kit: str | None
    reads_in: int = 0
    reads_out: int = 0
    reads_with_adapter: int = 0
    too_short: int = 0
    min_length: int = MIN_LENGTH
    lengths: list[list[int]] = field(default_factory=list)  # [[length, reads], ...] after trimming

    def as_dict(self) -> dict:
        return asdict(self)


def detect_adapter(path: str | os.PathLike, reads: int = DETECTION_READS) -> Detection:
    """Detect the kit adapter of a small-RNA read file from its first ``reads`` records.

    The kit whose adapter start (``PROBE_LENGTH`` bases) is in most reads wins, if at least
    ``DETECTION_FRACTION`` of them carry it; poly-A needs a run of ``PROBE_LENGTH`` A.
    """
    probes = {kit: adapter[:PROBE_LENGTH].encode() for kit, adapter in KIT_ADAPTERS.items()}
    carrying: Counter[str] = Counter()
    seen = long = 0
    for sequence in _first_sequences(path, reads):
        seen += 1
        long += len(sequence) > LONG_READ
        for kit, probe in probes.items():
            if probe in sequence:
                carrying[kit] += 1
    best = carrying.most_common(1)
    fraction = best[0][1] / seen if best else 0.0
    found = best[0][0] if best and fraction >= DETECTION_FRACTION else None
    return Detection(
        adapter=KIT_ADAPTERS[found] if found else None,
        kit=found,
        fraction=round(fraction, 4),
        reads=seen,
        long_fraction=round(long / seen, 4) if seen else 0.0,
    )


def _first_sequences(path: str | os.PathLike, count: int) -> Iterable[bytes]:
    left = count
    with open_maybe_gzip(path) as handle:
        if not handle.peek(1)[:1]:  # type: ignore[attr-defined]
            return
        for block in read_fastq_blocks(handle, os.fspath(path), block_bytes=1 << 20):
            raw = block.data.tobytes()
            for start, end in zip(block.seq_starts.tolist(), block.seq_ends.tolist(), strict=True):
                yield raw[start:end].upper()
                left -= 1
                if not left:
                    return


def cutadapt_argv(
    source: str | os.PathLike,
    target: str | os.PathLike,
    adapter: str | None,
    report: str | os.PathLike,
    *,
    min_length: int = MIN_LENGTH,
    cores: int = 1,
) -> list[str]:
    """The cutadapt command: cut the 3' adapter and all after it, drop reads under ``min_length``.

    A poly-A adapter is given to cutadapt as ``A{100}``, its notation for a tail of A of any length,
    with at most 2 % errors: at cutadapt's default 10 % the tail eats into inserts' last bases.
    Without an adapter (none was found) reads are only length-filtered.

    >>> " ".join(cutadapt_argv("in.fq.gz", "out.fq", "AACTGTAGGCACCATCAAT", "r.json"))
    'cutadapt -a AACTGTAGGCACCATCAAT -m 18 -j 1 --json r.json -o out.fq in.fq.gz'
    >>> cutadapt_argv("in.fq", "out.fq", "A" * 20, "r.json")[2]
    'A{100};e=0.02'
    >>> " ".join(cutadapt_argv("in.fq", "out.fq", None, "r.json"))
    'cutadapt -m 18 -j 1 --json r.json -o out.fq in.fq'
    """
    if adapter and set(adapter) == {"A"}:
        adapter = "A{100};e=0.02"
    return [
        "cutadapt",
        *(["-a", adapter] if adapter else []),
        "-m",
        str(min_length),
        "-j",
        str(cores),
        "--json",
        os.fspath(report),
        "-o",
        os.fspath(target),
        os.fspath(source),
    ]


def trim_small_rna(
    source: Path,
    target: Path,
    *,
    adapter: str | None,
    kit: str | None = None,
    cores: int = 1,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> TrimSummary:
    """Trim ``adapter`` from ``source`` into ``target`` with cutadapt; return what it did."""
    report = target.with_name(target.name + ".cutadapt.json")
    runner.run(cutadapt_argv(source, target, adapter, report, cores=cores), timeout=timeout, cancel=cancel)
    with open(report) as handle:
        counts = json.load(handle)["read_counts"]
    return TrimSummary(
        adapter=adapter,
        kit=kit,
        reads_in=counts["input"],
        reads_out=counts["output"],
        reads_with_adapter=counts.get("read1_with_adapter") or 0,
        too_short=(counts.get("filtered") or {}).get("too_short") or 0,
        lengths=length_histogram(target),
    )


def length_histogram(path: str | os.PathLike) -> list[list[int]]:
    """``[[length, reads], ...]`` of a FASTQ file, by increasing length."""
    lengths: Counter[int] = Counter()
    with open_maybe_gzip(path) as handle:
        if not handle.peek(1)[:1]:  # type: ignore[attr-defined]
            return []
        for block in read_fastq_blocks(handle, os.fspath(path)):
            lengths.update((block.seq_ends - block.seq_starts).tolist())
    return [[length, count] for length, count in sorted(lengths.items())]


def srna_warnings(detection: Detection) -> list[str]:
    """Warnings for a sample declared small-RNA whose reads do not look like it."""
    if detection.adapter is None and detection.long_fraction > 0.5:
        return [
            f"{detection.long_fraction:.0%} of the reads are longer than {LONG_READ} nt and no small-RNA "
            "adapter was found: the library may not be small-RNA, or its adapter must be given on the sample"
        ]
    return []


#: ``adapter`` value asking for the adapter to be detected on the reads themselves.
DETECT = "detect"


def trim_files(
    reads: Sequence[Path],
    folder: Path,
    *,
    adapter: str | None,
    cores: int = 1,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[Path], TrimSummary]:
    """Trim each read file into ``folder/trimmed_<n>.fq``; return them and their summary together.

    ``adapter`` is a sequence, None (none found: reads are only length-filtered) or ``DETECT``
    (detected on the first file). Mates are trimmed one file at a time: after trimming, pairs
    no longer line up, which mapping mates as unpaired reads does not need.
    """
    kit = GIVEN if adapter not in (None, DETECT) else None
    if adapter == DETECT:
        detection = detect_adapter(reads[0])
        adapter, kit = detection.adapter, detection.kit
    folder.mkdir(parents=True, exist_ok=True)
    trimmed, summaries = [], []
    for number, path in enumerate(reads, start=1):
        target = folder / f"trimmed_{number}.fq"
        summaries.append(
            trim_small_rna(path, target, adapter=adapter, kit=kit, cores=cores, timeout=timeout, cancel=cancel)
        )
        trimmed.append(target)
    return trimmed, combined(summaries)


def combined(summaries: Sequence[TrimSummary]) -> TrimSummary:
    """One summary for the files of a sample: counts and length histograms added up."""
    lengths: Counter[int] = Counter()
    for summary in summaries:
        for length, count in summary.lengths:
            lengths[length] += count
    first = summaries[0]
    return TrimSummary(
        adapter=first.adapter,
        kit=first.kit,
        reads_in=sum(s.reads_in for s in summaries),
        reads_out=sum(s.reads_out for s in summaries),
        reads_with_adapter=sum(s.reads_with_adapter for s in summaries),
        too_short=sum(s.too_short for s in summaries),
        min_length=first.min_length,
        lengths=[[length, count] for length, count in sorted(lengths.items())],
    )


def reads_for_mapping(
    reads: Sequence[Path],
    folder: Path,
    *,
    library_type: str,
    adapter: str | None = DETECT,
    cores: int = 1,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> list[Path]:
    """The read files to give bowtie2 as unpaired reads (``-U a,b``), prepared for the library.

    Small-RNA reads are cut at their adapter first. Mates of a pair are written under names
    distinct per file (``x/1``, ``x/2``), so each mate is a read of its own in every count,
    whatever the naming convention of the files; one file needs no renaming.
    """
    if library_type == "srna":
        reads, _ = trim_files(reads, folder, adapter=adapter, cores=cores, timeout=timeout, cancel=cancel)
    if len(reads) == 2:
        mates = folder / "mates.fq"
        folder.mkdir(parents=True, exist_ok=True)
        write_distinct_mates(list(reads), mates)
        return [mates]
    return list(reads)
