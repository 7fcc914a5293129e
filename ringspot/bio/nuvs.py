"""NuVs reads and assembly: trimming, elimination of known reads, pair reunion, SPAdes.

Spec ``workflows.md`` section 2, steps 1-5 (ORFs and HMMER are ``orfs.py`` and ``hmmer.py``).
Every tool goes through ``runner`` so a cancel or a timeout kills it with its helpers. Trimming
uses Debian's ``skewer`` (installed by the Makefile) with Virtool's flags; Virtool's images set
``LD_LIBRARY_PATH`` for their own build of it, which the Debian package does not need.

Pairs are reunited by position, not by read name: both mates are written to one FASTQ for
bowtie2 under the record's ordinal (``@17`` for the 17th pair, mate 1 and mate 2 alike), and a
pair survives when either ordinal comes back in bowtie2's ``--un`` output. Virtool compares
Biopython ids, which only works for Casava 1.8 headers where both mates share one; real files
also name mates ``x/1``/``x/2`` or ``x;1``/``x;2`` (the RpRSV sample does), and then Virtool's
mate files drift out of step.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from ringspot.bio import runner
from ringspot.bio.fastq import FastqRecord, open_maybe_gzip, read_fastq

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
        *map(os.fspath, reads),
    ]


def trim_reads(
    reads: Sequence[Path],
    out_dir: Path,
    *,
    library_type: str,
    max_length: int,
    proc: int = 1,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> list[Path]:
    """Trim with skewer into ``out_dir/reads_1.fq.gz`` (and ``reads_2.fq.gz``); return them."""
    if len(reads) not in (1, 2):
        raise ValueError(f"expected one or two read files, got {len(reads)}")
    out_dir.mkdir(parents=True, exist_ok=True)
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


def iter_reads(path: Path) -> Iterator[FastqRecord]:
    """The records of a FASTQ file, gzipped or not; unlike uploads, a tool's output may be empty."""
    with open_maybe_gzip(path) as handle:
        if handle.peek(1)[:1]:
            yield from read_fastq(handle, os.fspath(path))


def count_reads(path: Path) -> int:
    return sum(1 for _ in iter_reads(path)) if path.exists() else 0


def max_read_length(paths: Iterable[Path]) -> int:
    """Length of the longest read in the files (for ``trimming_min_length``)."""
    return max((len(record.sequence) for path in paths for record in iter_reads(path)), default=0)


def _write_record(handle: BinaryIO, name: str, record: FastqRecord) -> None:
    handle.write(f"@{name}\n{record.sequence}\n+\n{record.quality}\n".encode("latin-1"))


def number_reads(reads: Sequence[Path], target: Path) -> int:
    """Write every mate of every file to one FASTQ named by its pair ordinal; return the pair count.

    >>> import gzip, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for mate in (1, 2):
    ...     _ = (folder / f"m{mate}.fq").write_text(f"@a/{mate}\\nAC\\n+\\nII\\n@b/{mate}\\nGT\\n+\\nII\\n")
    >>> number_reads([folder / "m1.fq", folder / "m2.fq"], folder / "all.fq")
    2
    >>> (folder / "all.fq").read_text().split("\\n")[::4]
    ['@0', '@1', '@0', '@1', '']
    """
    count = 0
    with open(target, "wb") as out:
        for path in reads:
            count = 0
            for count, record in enumerate(iter_reads(path), start=1):
                _write_record(out, str(count - 1), record)
    return count


def bowtie2_eliminate_argv(
    index_prefix: os.PathLike | str, reads: os.PathLike | str, unmapped: os.PathLike | str, proc: int
) -> list[str]:
    """bowtie2 with Virtool's flags; reads that align nowhere go to ``unmapped`` (SAM is discarded).

    >>> " ".join(bowtie2_eliminate_argv("idx/reference", "in.fq", "un.fq", 2))
    'bowtie2 -p 2 -k 1 --very-fast-local -x idx/reference --un un.fq -U in.fq'
    """
    return [
        "bowtie2",
        "-p",
        str(proc),
        "-k",
        "1",
        "--very-fast-local",
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
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Keep in ``unmapped`` only the reads of ``reads`` that do not align to the index."""
    runner.run(bowtie2_eliminate_argv(index_prefix, reads, unmapped, proc), timeout=timeout, cancel=cancel)
    if not unmapped.exists():  # bowtie2 writes no --un file when every read aligned
        unmapped.touch()


def surviving_ordinals(unmapped: Path) -> set[int]:
    """Pair ordinals of the reads in a ``number_reads`` file that came through elimination."""
    return {int(record.name.split()[0]) for record in iter_reads(unmapped)}


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


def assemble(
    reads: Sequence[Path],
    out_dir: Path,
    *,
    library_type: str,
    proc: int = 1,
    mem_gb: int = 8,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Assemble with SPAdes; return the scaffolds FASTA (empty when SPAdes built no scaffold)."""
    shutil.rmtree(out_dir, ignore_errors=True)
    argv = spades_argv(reads, out_dir, library_type=library_type, proc=proc, mem_gb=mem_gb)
    runner.run(argv, timeout=timeout, cancel=cancel)
    scaffolds = out_dir / "scaffolds.fasta"
    if not scaffolds.exists():  # too few reads for any contig: SPAdes ends without scaffolds
        scaffolds.touch()
    return scaffolds
