"""NuVs reads and assembly: trimming, elimination of known reads, pair reunion, SPAdes.

Spec ``workflows.md`` section 2, steps 1-5 (ORFs and HMMER are ``orfs.py`` and ``hmmer.py``).
Every tool goes through ``runner`` so a cancel or a timeout kills it with its helpers. Trimming
uses Debian's ``skewer`` (installed by the Makefile) with Virtool's flags; Virtool's images set
``LD_LIBRARY_PATH`` for their own build of it, which the Debian package does not need.

Pairs are reunited by position, not by read name: both mates are written to one FASTQ for
bowtie2 under the record's ordinal and mate (``@17/1`` and ``@17/2`` for the 17th pair, so each
mate is a read of its own), and a pair survives when either mate comes back in bowtie2's ``--un``
output. Virtool compares
Biopython ids, which only works for Casava 1.8 headers where both mates share one; real files
also name mates ``x/1``/``x/2`` or ``x;1``/``x;2`` (the RpRSV sample does), and then Virtool's
mate files drift out of step.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ringspot.bio import runner, trim
from ringspot.bio.alignments import pathoscope_flags
from ringspot.bio.fastq import FastqRecord, open_maybe_gzip, read_fastq, write_distinct_mates

#: SPAdes k-mer sizes by library type (sRNA reads are 18-30 nt).
KMERS = {"srna": "17,21,23"}
DEFAULT_KMERS = "21,33,55,75"


def trimming_min_length(library_type: str, max_length: int) -> int:
    """Shortest read skewer keeps, from the library type and the longest read of the sample.

    >>> [trimming_min_length("normal", n) for n in (50, 79, 80, 151, 160, 250)]
    [35, 35, 100, 100, 160, 160]
    >>> trimming_min_length("amplicon", 151)
    143
    """
    if library_type == "amplicon":
        return round(0.95 * max_length)
    if max_length < 80:
        return 35
    if max_length < 160:
        return 100
    return 160


def skewer_argv(
    reads: Sequence[os.PathLike | str], prefix: os.PathLike | str, *, min_length: int, proc: int
) -> list[str]:
    """The skewer command of Virtool's trimming step (``-m pe`` for two mate files).

    >>> " ".join(skewer_argv(["r1.fq.gz"], "tmp/reads", min_length=100, proc=2))
    'skewer -r 0.1 -d 0.03 -m any -l 100 -q 20 -Q 25 -t 2 --quiet -z -o tmp/reads r1.fq.gz'
    """
    mode = "pe" if len(reads) == 2 else "any"
    return [
        "skewer",
        "-r",
        "0.1",
        "-d",
        "0.03",
        "-m",
        mode,
        "-l",
        str(min_length),
        "-q",
        "20",
        "-Q",
        "25",
        "-t",
        str(proc),
        "--quiet",
        "-z",
        "-o",
        os.fspath(prefix),
        *(os.fspath(path) for path in reads),
    ]


def trim_reads(
    reads: Sequence[Path],
    out_dir: Path,
    *,
    library_type: str,
    max_length: int,
    proc: int = 1,
    adapter: str | None = trim.DETECT,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> list[Path]:
    """Trim the reads into ``out_dir``; return the trimmed files.

    Small-RNA reads lose their kit adapter with cutadapt (``adapter``, or the one detected),
    keeping reads of 18 nt and more; other libraries go through skewer as in Virtool
    (``reads_1.fq.gz`` and ``reads_2.fq.gz``).
    """
    if len(reads) not in (1, 2):
        raise ValueError(f"expected one or two read files, got {len(reads)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    if library_type == "srna":
        return trim_small_rna_reads(reads, out_dir, adapter=adapter, proc=proc, timeout=timeout, cancel=cancel)
    prefix = out_dir / "skewer"
    argv = skewer_argv(reads, prefix, min_length=trimming_min_length(library_type, max_length), proc=proc)
    runner.run(argv, timeout=timeout, cancel=cancel)
    produced = ["-trimmed-pair1.fastq.gz", "-trimmed-pair2.fastq.gz"] if len(reads) == 2 else ["-trimmed.fastq.gz"]
    trimmed = []
    for number, suffix in enumerate(produced, start=1):
        target = out_dir / f"reads_{number}.fq.gz"
        os.replace(f"{prefix}{suffix}", target)
        trimmed.append(target)
    return trimmed


def trim_small_rna_reads(
    reads: Sequence[Path],
    out_dir: Path,
    *,
    adapter: str | None = trim.DETECT,
    proc: int = 1,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> list[Path]:
    """cutadapt each read file with ``adapter`` (``trim.DETECT``: detected on the first file).

    Mates come back as one file of single reads named apart: a small RNA is shorter than a read, so
    both mates carry the same molecule and pairing adds nothing, while trimming each file on its own
    leaves the two out of step.
    """
    trimmed, _ = trim.trim_files(reads, out_dir, adapter=adapter, cores=proc, timeout=timeout, cancel=cancel)
    if len(trimmed) == 2:
        single = out_dir / "mates.fq"
        write_distinct_mates(trimmed, single)
        return [single]
    return trimmed


def iter_reads(path: Path) -> Iterator[FastqRecord]:
    """The records of a FASTQ file, gzipped or not; unlike uploads, a tool's output may be empty."""
    with open_maybe_gzip(path) as handle:
        if handle.peek(1)[:1]:  # type: ignore[attr-defined]  # gzip and buffered files both peek
            yield from read_fastq(handle, os.fspath(path))


def count_reads(path: Path) -> int:
    return sum(1 for _ in iter_reads(path)) if path.exists() else 0


def max_read_length(paths: Iterable[Path]) -> int:
    """Length of the longest read in the files (for ``trimming_min_length``)."""
    return max((len(record.sequence) for path in paths for record in iter_reads(path)), default=0)


def _write_record(handle: BinaryIO, name: str, record: FastqRecord) -> None:
    handle.write(f"@{name}\n{record.sequence}\n+\n{record.quality}\n".encode("latin-1"))


def number_reads(reads: Sequence[Path], target: Path) -> int:
    """Write every mate of every file to one FASTQ named by pair ordinal and mate; return the pair count.

    >>> import gzip, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for mate in (1, 2):
    ...     _ = (folder / f"m{mate}.fq").write_text(f"@a/{mate}\\nAC\\n+\\nII\\n@b/{mate}\\nGT\\n+\\nII\\n")
    >>> number_reads([folder / "m1.fq", folder / "m2.fq"], folder / "all.fq")
    2
    >>> (folder / "all.fq").read_text().split("\\n")[::4]
    ['@0/1', '@1/1', '@0/2', '@1/2', '']
    """
    count = 0
    with open(target, "wb") as out:
        for mate, path in enumerate(reads, start=1):
            count = 0
            for count, record in enumerate(iter_reads(path), start=1):
                _write_record(out, f"{count - 1}/{mate}", record)
    return count


def bowtie2_eliminate_argv(
    index_prefix: os.PathLike | str,
    reads: os.PathLike | str,
    unmapped: os.PathLike | str,
    proc: int,
    library_type: str = "normal",
) -> list[str]:
    """bowtie2 with Virtool's flags; reads that align nowhere go to ``unmapped`` (SAM is discarded).

    Small-RNA reads are too short for local scoring's minimum: they are eliminated end to end,
    as Pathoscope maps them.

    >>> " ".join(bowtie2_eliminate_argv("idx/reference", "in.fq", "un.fq", 2))
    'bowtie2 -p 2 -k 1 --very-fast-local -x idx/reference --un un.fq -U in.fq'
    >>> bowtie2_eliminate_argv("idx/reference", "in.fq", "un.fq", 2, "srna")[5:8]
    ['--end-to-end', '--score-min', 'L,-0.6,-0.3']
    """
    return [
        "bowtie2",
        "-p",
        str(proc),
        "-k",
        "1",
        *(pathoscope_flags("srna") if library_type == "srna" else ["--very-fast-local"]),
        "-x",
        os.fspath(index_prefix),
        "--un",
        os.fspath(unmapped),
        "-U",
        os.fspath(reads),
    ]


def eliminate_reads(
    index_prefix: Path,
    reads: Path,
    unmapped: Path,
    *,
    proc: int = 1,
    library_type: str = "normal",
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Keep in ``unmapped`` only the reads of ``reads`` that do not align to the index."""
    argv = bowtie2_eliminate_argv(index_prefix, reads, unmapped, proc, library_type)
    runner.run(argv, timeout=timeout, cancel=cancel)
    if not unmapped.exists():  # bowtie2 writes no --un file when every read aligned
        unmapped.touch()


def surviving_ordinals(unmapped: Path) -> set[int]:
    """Pair ordinals of the reads in a ``number_reads`` file that came through elimination."""
    return {int(record.name.split()[0].split("/")[0]) for record in iter_reads(unmapped)}


def reunite_pairs(trimmed: Sequence[Path], survivors: set[int], targets: Sequence[Path]) -> int:
    """Write the pairs whose ordinal survived, both mates with their original names; return the count.

    A pair survives if either of its mates did.
    """
    kept = 0
    for path, target in zip(trimmed, targets, strict=True):
        kept = 0
        with open(target, "wb") as out:
            for ordinal, record in enumerate(iter_reads(path)):
                if ordinal in survivors:
                    _write_record(out, record.name, record)
                    kept += 1
    return kept


def spades_argv(
    reads: Sequence[os.PathLike | str], out_dir: os.PathLike | str, *, library_type: str, proc: int, mem_gb: int
) -> list[str]:
    """SPAdes as NuVs runs it: k-mers by library type, no ``--meta`` or ``--careful``.

    >>> " ".join(spades_argv(["u1.fq", "u2.fq"], "spades", library_type="normal", proc=2, mem_gb=8))
    'spades.py -t 2 -m 8 -k 21,33,55,75 -o spades -1 u1.fq -2 u2.fq'
    >>> " ".join(spades_argv(["u.fq"], "spades", library_type="srna", proc=2, mem_gb=8))
    'spades.py -t 2 -m 8 -k 17,21,23 -o spades -s u.fq'
    """
    argv = [
        "spades.py",
        "-t",
        str(proc),
        "-m",
        str(mem_gb),
        "-k",
        KMERS.get(library_type, DEFAULT_KMERS),
        "-o",
        os.fspath(out_dir),
    ]
    if len(reads) == 2:
        return argv + ["-1", os.fspath(reads[0]), "-2", os.fspath(reads[1])]
    if len(reads) == 1:
        return argv + ["-s", os.fspath(reads[0])]
    raise ValueError(f"expected one or two read files, got {len(reads)}")


#: What SPAdes writes to its log when the reads hold nothing it can assemble -> why, for a lab.
NOTHING_TO_ASSEMBLE = {
    "Invalid kmer coverage histogram": "too few reads for SPAdes to estimate k-mer coverage",
    "file is empty": "no reads were left to assemble",
}


@dataclass(frozen=True)
class Assembly:
    """SPAdes' scaffolds (an empty file when none were built) and, then, why."""

    scaffolds: Path
    note: str | None = None


def nothing_to_assemble(log_text: str) -> str | None:
    """Why SPAdes built nothing, when its log says the reads hold nothing to assemble; else None.

    >>> nothing_to_assemble("ERROR General (kmer_coverage_model.cpp : 187) Invalid kmer coverage histogram")
    'too few reads for SPAdes to estimate k-mer coverage (SPAdes: Invalid kmer coverage histogram)'
    >>> nothing_to_assemble("== Error ==  not enough memory") is None
    True
    """
    for message, why in NOTHING_TO_ASSEMBLE.items():
        if message in log_text:
            return f"{why} (SPAdes: {message})"
    return None


def spades_progress(log_text: str, kmers: str) -> float:
    """How far SPAdes is (0..1) from its log: read error correction, then one pass per k-mer size.

    A pass under way counts half.

    >>> log = "===== Read error correction finished.\\n===== K21 finished.\\n===== K33 started.\\n"
    >>> spades_progress(log, "21,33,55,75")
    0.5
    """
    stages = ["Read error correction", *(f"K{k}" for k in kmers.split(","))]
    done = 0.0
    for stage in stages:
        if f"===== {stage} finished." in log_text:
            done += 1
        elif f"===== {stage} started." in log_text:
            done += 0.5
    return done / len(stages)


def assemble_reads(
    reads: Sequence[Path],
    out_dir: Path,
    *,
    library_type: str,
    proc: int = 1,
    mem_gb: int = 8,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> Assembly:
    """Assemble with SPAdes, reporting its progress from its log as it goes.

    When SPAdes stops because the reads hold nothing to assemble (too few of them: it exits 21
    on an "Invalid kmer coverage histogram"), the assembly is empty and its note says why; any
    other failure raises ``ToolError`` as before.
    """
    shutil.rmtree(out_dir, ignore_errors=True)
    argv = spades_argv(reads, out_dir, library_type=library_type, proc=proc, mem_gb=mem_gb)
    log_path = out_dir / "spades.log"
    scaffolds = out_dir / "scaffolds.fasta"
    stop = threading.Event()
    watcher = threading.Thread(
        target=_follow_progress, args=(log_path, argv[argv.index("-k") + 1], on_progress, stop), daemon=True
    )
    if on_progress is not None:
        watcher.start()
    try:
        runner.run(argv, timeout=timeout, cancel=cancel)
    except runner.ToolError as error:
        note = nothing_to_assemble(_read_text(log_path) + "\n" + error.stderr_tail)
        if note is None:
            raise
        out_dir.mkdir(parents=True, exist_ok=True)
        scaffolds.write_text("")
        return Assembly(scaffolds, note)
    finally:
        stop.set()
        if watcher.is_alive():
            watcher.join(timeout=5)
    if on_progress is not None:
        on_progress(1.0)
    if not scaffolds.exists():  # SPAdes ran to its end without building any scaffold
        scaffolds.touch()
        return Assembly(scaffolds, "SPAdes built no scaffold from the reads left")
    return Assembly(scaffolds)


#: Seconds between two looks at SPAdes' log.
PROGRESS_INTERVAL = 2.0


def _follow_progress(log_path: Path, kmers: str, on_progress: Callable[[float], None], stop: threading.Event) -> None:
    reported = -1.0
    while not stop.wait(PROGRESS_INTERVAL):
        progress = spades_progress(_read_text(log_path), kmers)
        if progress != reported:
            on_progress(progress)
            reported = progress


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
