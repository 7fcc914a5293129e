"""Reading, validating and gzipping FASTQ read files.

Uploaded reads are untrusted: a truncated upload, a FASTA file picked by mistake or a
mate file cut short must fail sample creation with a message that says what is wrong
and where, not with a crash deep inside a quality pass or bowtie2.

Parsing is done a block at a time: a few megabytes of decompressed text are split into
lines with NumPy and whole records are checked at once (``@`` header, ``+`` separator,
sequence and quality of equal length, quality characters in ``!``..``~``). The record
generator and the quality statistics (`ringspot.bio.quality`) share that one pass, so
what is accepted for statistics is exactly what is accepted as reads.
"""

from __future__ import annotations

import gzip
import os
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple, cast

import numpy as np
from isal import igzip, isal_zlib

#: Decompressed bytes parsed per block: large enough that NumPy's per-call cost
#: vanishes, small enough that memory stays flat whatever the file size.
BLOCK_BYTES = 4 << 20

GZIP_MAGIC = b"\x1f\x8b"

#: Longest record read: nanopore reads reach a few Mbp; text that runs on past this without
#: finishing a record is no read, and holding more of it would only fill memory.
LONGEST_RECORD_BYTES = 64 << 20

#: Lowest and highest quality characters any FASTQ encoding uses ('!' and '~').
#: FastQC refuses anything below '!' and cannot count anything above '~'.
LOWEST_QUALITY_CHAR = 33
HIGHEST_QUALITY_CHAR = 126

#: What a broken gzip stream raises, inflated by zlib or by ISA-L (whose stubs
#: declare its error class as an instance, hence the cast).
_INFLATE_ERRORS = (EOFError, zlib.error, cast("type[Exception]", isal_zlib.error), OSError)

_NEWLINE = 10
_CARRIAGE_RETURN = 13
_AT = ord("@")
_PLUS = ord("+")


class FastqRecord(NamedTuple):
    """One read: ``name`` is the header line without its ``@``."""

    name: str
    sequence: str
    quality: str


def is_gzipped(path: str | os.PathLike) -> bool:
    """True when the file starts with the gzip magic bytes (whatever its extension)."""
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_maybe_gzip(path: str | os.PathLike, *, fast_inflate: bool = False) -> BinaryIO:
    """Open ``path`` for binary reading, decompressing it if it is gzipped.

    Uploads are named by users, so ``reads.fq`` may be gzipped and ``reads.fq.gz``
    may not be: the magic bytes decide, not the extension.

    With ``fast_inflate``, ISA-L inflates the stream, several times faster than zlib. On a
    damaged stream it drops what it inflated just before the break, so its error may name
    an earlier record than the first one missing; zlib's reader names that one.
    """
    if is_gzipped(path):
        if fast_inflate:
            return cast(BinaryIO, igzip.open(path, "rb"))
        return cast(BinaryIO, gzip.open(path, "rb"))
    return open(path, "rb")


@dataclass(frozen=True)
class FastqBlock:
    """Whole, validated records lying in one buffer, located by offset arrays.

    ``seq_starts[i]:seq_ends[i]`` and ``qual_starts[i]:qual_ends[i]`` slice ``data``
    for record ``first_record + i`` (records count from 1). Line ends exclude any
    ``\\r`` so Windows line endings read like Unix ones.
    """

    data: np.ndarray  # uint8 view of the buffer
    first_record: int
    header_starts: np.ndarray
    header_ends: np.ndarray
    seq_starts: np.ndarray
    seq_ends: np.ndarray
    qual_starts: np.ndarray
    qual_ends: np.ndarray

    def __len__(self) -> int:
        return len(self.seq_starts)

    def records(self) -> Iterator[FastqRecord]:
        raw = self.data.tobytes()
        for hs, he, ss, se, qs, qe in zip(
            self.header_starts.tolist(),
            self.header_ends.tolist(),
            self.seq_starts.tolist(),
            self.seq_ends.tolist(),
            self.qual_starts.tolist(),
            self.qual_ends.tolist(),
            strict=False,
        ):
            yield FastqRecord(
                raw[hs + 1 : he].decode("latin-1"),
                raw[ss:se].decode("latin-1"),
                raw[qs:qe].decode("latin-1"),
            )


def read_fastq(handle: BinaryIO, source: str | None = None) -> Iterator[FastqRecord]:
    """Yield the records of a FASTQ stream opened in binary mode, validating them.

    ``source`` names the file in error messages.

    >>> import io
    >>> reads = io.BytesIO(b"@r1 first\\nACGT\\n+\\nIIII\\n@r2\\nGGN\\n+r2\\n#AB\\n")
    >>> [tuple(record) for record in read_fastq(reads)]
    [('r1 first', 'ACGT', 'IIII'), ('r2', 'GGN', '#AB')]
    >>> list(read_fastq(io.BytesIO(b"@r1\\nACGT\\n+\\nIII\\n"), "x.fq"))
    Traceback (most recent call last):
    ...
    ValueError: x.fq: record 1 (line 2): sequence has 4 letters but quality has 3 characters; the file may be corrupt or not FASTQ
    """  # noqa: E501
    for block in read_fastq_blocks(handle, source):
        yield from block.records()


def read_fastq_blocks(
    handle: BinaryIO, source: str | None = None, block_bytes: int = BLOCK_BYTES
) -> Iterator[FastqBlock]:
    """Yield `FastqBlock`s of validated records from a binary FASTQ stream.

    Raises ``ValueError`` naming the record and line for: an empty file, FASTA given
    as reads, a header without ``@``, a missing ``+`` line, sequence and quality of
    different lengths, quality characters outside ``!``..``~``, a file that stops
    inside a record, and a gzip stream that is truncated or corrupt.

    >>> import io
    >>> blocks = read_fastq_blocks(io.BytesIO(b"@a\\nAC\\n+\\nII\\n@b\\nA\\n+\\nI"))
    >>> sum(len(block) for block in blocks)
    2
    >>> list(read_fastq_blocks(io.BytesIO(b"@a\\nAC\\n+\\nII\\n@b\\nA\\n"), "x.fq"))
    Traceback (most recent call last):
    ...
    ValueError: x.fq: file ends inside record 2 (line 5): it has 2 of 4 lines; the file is truncated
    """
    where = f"{source}: " if source else ""
    carry = b""
    records_done = 0
    started = False
    at_eof = False

    while not at_eof:
        chunk, error = _read_some(handle, block_bytes)
        at_eof = not chunk
        data = carry + chunk
        if not started and data:
            started = True
            _check_first_bytes(data, where)

        consumed = 0
        for block in _blocks_from(data, records_done, where, final=at_eof and error is None):
            records_done += len(block)
            consumed += len(block.data)
            yield block
        carry = data[consumed:]

        if error is not None:
            raise ValueError(
                f"{where}gzip data is truncated or corrupt at record {records_done + 1} "
                f"(line {4 * records_done + 1}): {error}; the upload was probably cut "
                "short, upload the file again"
            ) from error
        if len(carry) > LONGEST_RECORD_BYTES:
            raise ValueError(
                f"{where}record {records_done + 1} (line {4 * records_done + 1}) runs past "
                f"{LONGEST_RECORD_BYTES >> 20} MiB without ending: this is not sequencing reads"
            )

    if records_done == 0:
        raise ValueError(f"{where}file is empty: no FASTQ records found")


def _read_some(handle: BinaryIO, size: int) -> tuple[bytes, Exception | None]:
    """Read up to ``size`` bytes, keeping what was decompressed before a gzip error.

    ``read1`` returns one decompressed piece at a time, so when a truncated gzip stream
    raises, every whole record before the break has been seen and the error can name
    the first record that is missing.
    """
    read = getattr(handle, "read1", None) or handle.read
    pieces: list[bytes] = []
    have = 0
    try:
        while have < size:
            piece = read(size - have)
            if isinstance(piece, str):
                raise TypeError("FASTQ must be read from a binary handle (open with 'rb')")
            if not piece:
                break
            pieces.append(piece)
            have += len(piece)
    except _INFLATE_ERRORS as error:
        return b"".join(pieces), error
    return b"".join(pieces), None


def _check_first_bytes(data: bytes, where: str) -> None:
    """Name the two wrong files users pick most (FASTA, reads gzipped twice), or a first byte that is no '@'."""
    text = data.lstrip()
    if not text:
        return
    if text[:1] == b">":
        line = data[: len(data) - len(text)].count(b"\n") + 1
        raise ValueError(
            f"{where}line {line} starts with '>': this looks like FASTA, not FASTQ; reads must be FASTQ with qualities"
        )
    if text[:2] == GZIP_MAGIC:
        raise ValueError(f"{where}file is gzipped twice (gzip data inside gzip data)")
    if data[:1] != b"@":
        # Said before any line ends: binary data (a gzip bomb of zeros, say) may hold none.
        first = data[:40].split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
        raise ValueError(
            f"{where}record 1 (line 1): header should start with '@' but is {first!r}; "
            "the file may be corrupt, truncated or not FASTQ"
        )


def _blocks_from(data: bytes, records_before: int, where: str, final: bool) -> Iterator[FastqBlock]:
    """Parse the whole records at the front of ``data``; the rest stays for later.

    With ``final`` the stream has ended, so leftover text is a truncated record.
    """
    if final and data and data[-1:] != b"\n" and data.strip():
        data += b"\n"  # a last line without newline is still a line
    buffer = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buffer == _NEWLINE)
    whole_lines = len(newlines) - len(newlines) % 4

    if whole_lines:
        end = int(newlines[whole_lines - 1]) + 1
        yield _parse_block(buffer[:end], newlines[:whole_lines], records_before, where)
        records_before += whole_lines // 4
    else:
        end = 0

    if final:
        rest = data[end:]
        if rest.strip():
            line_count = rest.count(b"\n")
            record = records_before + 1
            raise ValueError(
                f"{where}file ends inside record {record} (line {4 * records_before + 1}): "
                f"it has {line_count} of 4 lines; the file is truncated"
            )


def _parse_block(buffer: np.ndarray, newlines: np.ndarray, records_before: int, where: str) -> FastqBlock:
    starts = np.empty(len(newlines), dtype=np.int64)
    starts[0] = 0
    starts[1:] = newlines[:-1] + 1
    ends = newlines.astype(np.int64)
    # Drop '\r' of CRLF files; a non-empty line ending in '\r' is the only case.
    has_cr = (ends > starts) & (buffer[ends - 1] == _CARRIAGE_RETURN)
    ends = ends - has_cr

    header_starts, seq_starts, plus_starts, qual_starts = (starts[k::4] for k in range(4))
    header_ends, seq_ends, plus_ends, qual_ends = (ends[k::4] for k in range(4))

    def fail(index: int, line_in_record: int, problem: str) -> None:
        record = records_before + index + 1
        line = 4 * (record - 1) + line_in_record
        raise ValueError(f"{where}record {record} (line {line}): {problem}")

    # An empty line has its '\n' at its start, so it fails these tests too.
    bad = np.flatnonzero(buffer[header_starts] != _AT)
    if len(bad):
        index = int(bad[0])
        text = _line_text(buffer, header_starts[index], header_ends[index])
        fail(index, 1, f"header should start with '@' but is {text!r}; the file may be corrupt, truncated or not FASTQ")

    bad = np.flatnonzero(buffer[plus_starts] != _PLUS)
    if len(bad):
        index = int(bad[0])
        text = _line_text(buffer, plus_starts[index], plus_ends[index])
        fail(
            index,
            3,
            f"third line should start with '+' but is {text!r}; "
            "sequences must be on one line and the file may be corrupt",
        )

    seq_lengths = seq_ends - seq_starts
    qual_lengths = qual_ends - qual_starts
    bad = np.flatnonzero(seq_lengths != qual_lengths)
    if len(bad):
        index = int(bad[0])
        fail(
            index,
            2,
            f"sequence has {seq_lengths[index]} letters but quality has "
            f"{qual_lengths[index]} characters; the file may be corrupt or not FASTQ",
        )

    bad_quality = _first_bad_quality(buffer, qual_starts, qual_ends)
    if bad_quality is not None:
        record, char = bad_quality
        fail(
            record,
            4,
            f"quality character {chr(char)!r} (code {char}) is outside "
            "'!'..'~'; qualities must be Phred+33 or Phred+64 text",
        )

    return FastqBlock(
        data=buffer,
        first_record=records_before + 1,
        header_starts=header_starts,
        header_ends=header_ends,
        seq_starts=seq_starts,
        seq_ends=seq_ends,
        qual_starts=qual_starts,
        qual_ends=qual_ends,
    )


def _first_bad_quality(buffer: np.ndarray, qual_starts: np.ndarray, qual_ends: np.ndarray) -> tuple[int, int] | None:
    """Locate the first quality character outside '!'..'~' as (record index, code)."""
    lengths = qual_ends - qual_starts
    # Shifted so that '!' is 0, a byte below '!' wraps past '~': one maximum per line
    # then finds both kinds. One reduceat pass over [start, end) pairs gives it (the odd
    # segments are the text between quality lines, ignored).
    shifted = buffer - np.uint8(LOWEST_QUALITY_CHAR)
    bounds = np.empty(2 * len(qual_starts), dtype=np.int64)
    bounds[0::2] = qual_starts
    bounds[1::2] = qual_ends
    highest = np.maximum.reduceat(shifted, bounds)[0::2]
    # reduceat gives the byte at start for an empty segment: empty reads are fine.
    bad = np.flatnonzero((lengths > 0) & (highest > HIGHEST_QUALITY_CHAR - LOWEST_QUALITY_CHAR))
    if not len(bad):
        return None
    index = int(bad[0])
    line = buffer[int(qual_starts[index]) : int(qual_ends[index])]
    out = np.flatnonzero((line < LOWEST_QUALITY_CHAR) | (line > HIGHEST_QUALITY_CHAR))
    return index, int(line[out[0]])


def _line_text(buffer: np.ndarray, start: int, end: int, limit: int = 40) -> str:
    text = buffer[int(start) : min(int(end), int(start) + limit)].tobytes()
    return text.decode("latin-1")


def count_records(path: str | os.PathLike) -> int:
    """Count the records of a FASTQ file (gzipped or not), validating every one."""
    with open_maybe_gzip(path) as handle:
        return sum(len(block) for block in read_fastq_blocks(handle, os.fspath(path)))


def count_and_validate_pair(path_1: str | os.PathLike, path_2: str | os.PathLike) -> int:
    """Validate two mate files and return their common record count.

    Mates pair up by position, so a mate file with fewer records means a truncated
    upload or files from different runs: that is an error naming the file that ran
    out first and the record it lacks.
    """
    count_1 = count_records(path_1)
    count_2 = count_records(path_2)
    check_pair_counts(path_1, count_1, path_2, count_2)
    return count_1


def check_pair_counts(path_1: str | os.PathLike, count_1: int, path_2: str | os.PathLike, count_2: int) -> None:
    """Raise ``ValueError`` unless both mates have the same number of records."""
    if count_1 == count_2:
        return
    short, short_count, other, other_count = (
        (path_1, count_1, path_2, count_2) if count_1 < count_2 else (path_2, count_2, path_1, count_1)
    )
    raise ValueError(
        f"mate files differ in record count: {os.fspath(short)} ran out first, at record "
        f"{short_count + 1} (it has {short_count} records, {os.fspath(other)} has "
        f"{other_count}); the mates may be truncated or from different samples"
    )


def gzip_copy(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    move: bool = False,
    check: bool = True,
    compresslevel: int = 6,
) -> Path:
    """Write ``dst`` as a gzipped copy of ``src``, streaming; return ``dst``.

    An ``src`` that is already gzipped is not recompressed: with ``check`` it is first
    read to the end so a truncated or corrupt upload fails here (``ValueError``), then
    it is copied, or renamed when ``move`` is true. Plain input is compressed (level 6,
    as pigz and gzip default) and left in place. ``dst`` appears only when complete.
    """
    src, dst = Path(src), Path(dst)
    partial = dst.with_name(dst.name + ".partial")
    if is_gzipped(src):
        if check:
            _check_gzip(src)
        if move:
            shutil.move(src, dst)
            return dst
        shutil.copyfile(src, partial)
    else:
        with open(src, "rb") as reader, gzip.open(partial, "wb", compresslevel) as writer:
            shutil.copyfileobj(reader, writer, BLOCK_BYTES)
    os.replace(partial, dst)
    return dst


def _check_gzip(path: Path) -> None:
    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(BLOCK_BYTES):
                pass
    except (EOFError, zlib.error, OSError) as error:
        raise ValueError(f"{path}: gzip data is truncated or corrupt: {error}; upload the file again") from error


# ---------------------------------------------------------------- mates


#: Mate marks a read name may end with, per mate: ``x/1``, ``x;1`` (and ``x.1`` when comparing).
_MATE_MARKS = ("/", ";")
_PAIRING_MARKS = ("/", ";", ".")
#: Records of each mate file compared to decide whether the files are mates at all.
PAIRING_SAMPLE = 1000


def read_word(name: str) -> str:
    """The read name proper: a header up to its first whitespace (what aligners keep as QNAME).

    >>> read_word("M1:7:1101:3102:1309 2:N:0:ACATCG"), read_word("")
    ('M1:7:1101:3102:1309', '')
    """
    words = name.split(None, 1)
    return words[0] if words else ""


def mate_base(name: str, mate: int, marks: tuple[str, ...] = _MATE_MARKS) -> str:
    """The name both mates share: the read word without its own mate mark (``/1``, ``;2`` ...).

    >>> [mate_base(name, 1) for name in ("a/1", "a;1", "a 1:N:0:GG", "a/2", "SRR7.65411")]
    ['a', 'a', 'a', 'a/2', 'SRR7.65411']
    """
    word = read_word(name)
    for mark in marks:
        if word.endswith(f"{mark}{mate}"):
            return word[:-2]
    return word


def distinct_mate_name(name: str, mate: int) -> str:
    """The name a mate is mapped under: distinct per mate file, the shared name kept before ``/``.

    Casava 1.8 (``x 1:N:0:..``), SRA (``x`` in both files), ``x/1`` and ``x;1`` all become
    ``x/1`` and ``x/2``, so every mate counts as its own read wherever reads are counted by name.

    >>> [distinct_mate_name(n, m) for n, m in (("x 1:N:0:GG", 1), ("x 2:N:0:GG", 2), ("x;2", 2), ("SRR7.9", 2))]
    ['x/1', 'x/2', 'x/2', 'SRR7.9/2']
    """
    return f"{mate_base(name, mate)}/{mate}"


def write_distinct_mates(paths: list[Path] | tuple[Path, ...], target: str | os.PathLike) -> list[int]:
    """Write the records of both mate files to one plain FASTQ under ``distinct_mate_name``s.

    Returns the record count of each file. Sequences and qualities are copied unchanged; the
    header's comment (``1:N:0:..``) is dropped, as aligners drop it anyway.
    """
    counts = []
    with open(target, "wb") as out:
        for mate, path in enumerate(paths, start=1):
            count = 0
            with open_maybe_gzip(path) as handle:
                for block in read_fastq_blocks(handle, os.fspath(path)):
                    out.write(_renamed_block(block, mate))
                    count += len(block)
            counts.append(count)
    return counts


def _renamed_block(block: FastqBlock, mate: int) -> bytes:
    """The block's records under distinct mate names (bytes methods only: this runs on every read)."""
    raw = block.data.tobytes()
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n")
    lines = raw.split(b"\n")[: 4 * len(block)]
    marks, suffix = (b"/%d" % mate, b";%d" % mate), b"/%d" % mate
    words = [header.split(None, 1)[0] for header in lines[0::4]]  # headers start with '@': never empty
    lines[0::4] = [word[:-2] + suffix if word[-2:] in marks else word + suffix for word in words]
    lines[2::4] = [b"+"] * len(block)
    lines.append(b"")
    return b"\n".join(lines)


def first_names(path: str | os.PathLike, count: int = PAIRING_SAMPLE) -> list[str]:
    """The read words of the first ``count`` records of a FASTQ file."""
    names: list[str] = []
    with open_maybe_gzip(path) as handle:
        for block in read_fastq_blocks(handle, os.fspath(path), block_bytes=1 << 20):
            names.extend(read_word(record.name) for record in block.records())
            if len(names) >= count:
                break
    return names[:count]


def check_mates_share_names(path_1: str | os.PathLike, path_2: str | os.PathLike, labels: tuple[str, str]) -> None:
    """Raise ``ValueError`` when two files declared mates share no read name among their first records.

    Names match as they are (Casava 1.8, SRA) or without their mate marks (``/1``, ``;1``,
    ``.1``). Two lanes or two samples uploaded as a pair fail here, the message naming both
    files (``labels``, the user's names) and the first names that differ.
    """
    names_1, names_2 = first_names(path_1), first_names(path_2)
    if set(names_1) & set(names_2):
        return
    bases_1 = [mate_base(name, 1, _PAIRING_MARKS) for name in names_1]
    bases_2 = [mate_base(name, 2, _PAIRING_MARKS) for name in names_2]
    if set(bases_1) & set(bases_2):
        return
    record, name_1, name_2 = next(
        (number, a, b) for number, (a, b) in enumerate(zip(names_1, names_2, strict=False), start=1) if a != b
    )
    raise ValueError(
        f"{labels[0]} and {labels[1]} are not mates of one pair: they share no read name in their first "
        f"{min(len(names_1), len(names_2))} records (record {record} is {name_1!r} in {labels[0]} and {name_2!r} in "
        f"{labels[1]}); they may be two lanes or two samples, upload them as separate samples"
    )
