"""Reading and validating nucleotide FASTA (subtraction hosts, references, contigs).

A host genome can be gigabytes in a handful of records, so the reader works on
blocks of text, never on whole chromosomes: `read_fasta_pieces` yields headers and
slices of sequence text; `read_fasta` joins them into records for small files, and
`nucleotide_composition` counts letters straight from the slices.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

import numpy as np

from ringspot.bio.fastq import BLOCK_BYTES, open_maybe_gzip

#: IUPAC nucleotide codes (either case), the gap '-', and white space, which
#: bowtie2-build and Biopython both ignore inside sequence lines.
_SEQUENCE_BYTES = b"ACGTURYSWKMBDHVNacgturyswkmbdhvn-" + b" \t\r\n"
_NOT_SEQUENCE = re.compile(rb"[^" + re.escape(_SEQUENCE_BYTES) + rb"]")
_WHITESPACE = b" \t\r\n"
_LOWER = bytes.maketrans(b"ACGTN", b"acgtn")

COMPOSITION_LETTERS = ("a", "t", "g", "c", "n")


class FastaRecord(NamedTuple):
    """One sequence: ``id`` is the header's first word, ``description`` the whole header."""

    id: str
    description: str
    sequence: str


class Header(NamedTuple):
    line: int
    text: str


def read_fasta(handle: BinaryIO, source: str | None = None) -> Iterator[FastaRecord]:
    """Yield the records of a FASTA stream opened in binary mode, validating it.

    ``source`` names the file in error messages.

    >>> import io
    >>> text = b">seq1 a host\\nACGT\\nacgn\\n\\n>seq2\\nRYK-\\n"
    >>> [tuple(record) for record in read_fasta(io.BytesIO(text))]
    [('seq1', 'seq1 a host', 'ACGTacgn'), ('seq2', 'seq2', 'RYK-')]
    >>> list(read_fasta(io.BytesIO(b">s\\nACGT\\nAC1T\\n"), "host.fa"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: host.fa: line 3: '1' is not a nucleotide letter (IUPAC codes and '-' only); is this a nucleotide...
    """
    header: Header | None = None
    pieces: list[bytes] = []
    for piece in read_fasta_pieces(handle, source):
        if isinstance(piece, Header):
            if header is not None:
                yield _record(header, pieces)
            header, pieces = piece, []
        else:
            pieces.append(piece.translate(None, _WHITESPACE))
    if header is not None:
        yield _record(header, pieces)


def _record(header: Header, pieces: list[bytes]) -> FastaRecord:
    return FastaRecord(header.text.split()[0], header.text, b"".join(pieces).decode("ascii"))


def read_fasta_pieces(
    handle: BinaryIO, source: str | None = None, block_bytes: int = BLOCK_BYTES
) -> Iterator[Header | bytes]:
    """Yield each `Header` and, after it, slices of its sequence text (line breaks kept).

    Raises ``ValueError`` naming the line for: an empty file, text before the first
    header (FASTQ is named as such), a header without a name, and a character that
    is not an IUPAC nucleotide code, '-' or white space.

    >>> import io
    >>> list(read_fasta_pieces(io.BytesIO(b">a x\\nAC\\nGT\\n>b\\n")))
    [Header(line=1, text='a x'), b'AC\\nGT\\n', Header(line=4, text='b')]
    """
    where = f"{source}: " if source else ""
    lines_before = 0  # lines wholly before the current block
    carry = b""
    headers = 0
    at_eof = False
    line_start = True  # whether the block starts at the start of a line

    while not at_eof:
        chunk = handle.read(block_bytes)
        if isinstance(chunk, str):
            raise TypeError("FASTA must be read from a binary handle (open with 'rb')")
        at_eof = not chunk
        data = carry + chunk
        carry = b""
        starts_line, line_start = line_start, True
        if not at_eof:
            cut = data.rfind(b"\n") + 1
            tail = data[cut:]
            if (cut or starts_line) and tail.startswith(b">"):
                # Keep an unfinished header for the next block: headers are parsed whole.
                data, carry = data[:cut], tail
            else:
                # Unfinished sequence text is passed on as it is, so a chromosome on
                # one line streams through instead of piling up in memory.
                line_start = not tail

        position = 0
        while position < len(data):
            if (position or starts_line) and data.startswith(b">", position):
                end = data.find(b"\n", position)
                end = len(data) if end == -1 else end
                line = lines_before + 1
                name = data[position + 1 : end].decode("latin-1").strip()
                if not name:
                    raise ValueError(f"{where}line {line}: header has no sequence name")
                headers += 1
                yield Header(line, name)
                lines_before += 1
                position = end + 1
                continue

            following = data.find(b"\n>", position)
            end = len(data) if following == -1 else following + 1
            text = data[position:end]
            if headers == 0 and text.strip():
                _fail_before_header(text, lines_before, where)
            _check_letters(text, lines_before, where)
            if headers:
                yield text
            lines_before += text.count(b"\n")
            position = end

    if headers == 0:
        raise ValueError(f"{where}file is empty: no FASTA records found")


def _fail_before_header(text: bytes, lines_before: int, where: str) -> None:
    for number, line in enumerate(text.split(b"\n"), start=lines_before + 1):
        if line.strip():
            shown = line[:40].decode("latin-1")
            if line.startswith(b"@"):
                raise ValueError(f"{where}line {number} starts with '@': this looks like FASTQ, not FASTA")
            raise ValueError(
                f"{where}line {number}: expected a '>' header line but found {shown!r}; is this a FASTA file?"
            )


def _check_letters(text: bytes, lines_before: int, where: str) -> None:
    if not text.translate(None, _SEQUENCE_BYTES):
        return
    bad = _NOT_SEQUENCE.search(text)
    assert bad is not None  # translate() left a byte that is not a sequence letter
    line = lines_before + text.count(b"\n", 0, bad.start()) + 1
    char = chr(text[bad.start()])
    raise ValueError(
        f"{where}line {line}: {char!r} is not a nucleotide letter (IUPAC codes and '-' "
        "only); is this a nucleotide FASTA file?"
    )


def nucleotide_composition(path: str | os.PathLike) -> tuple[int, dict[str, float]]:
    """Count the records of a FASTA file and the share of a, t, g, c and n in it.

    As Virtool's create_subtraction: ``count`` is the number of header lines; letters
    are counted case-insensitively over the sequence lines, and each share is its
    count over the sum of the five counts, rounded to 3 places with Python's ``round``
    (other IUPAC codes count toward neither).
    """
    counts = dict.fromkeys(COMPOSITION_LETTERS, 0)
    records = 0
    with open_maybe_gzip(path) as handle:
        for piece in read_fasta_pieces(handle, os.fspath(path)):
            if isinstance(piece, Header):
                records += 1
                continue
            # NumPy compares ~5x faster than bytes.count on letters this frequent.
            lower = np.frombuffer(piece.translate(_LOWER), dtype=np.uint8)
            for letter in COMPOSITION_LETTERS:
                counts[letter] += int(np.count_nonzero(lower == ord(letter)))
    total = sum(counts.values())
    if total == 0:
        raise ValueError(f"{os.fspath(path)}: no a, t, g, c or n letters in any sequence")
    return records, {letter: round(counts[letter] / total, 3) for letter in COMPOSITION_LETTERS}
