"""bowtie2's SAM as NumPy columns, parsed a block of whole lines at a time.

With ``-k 100`` bowtie2 writes hundreds of megabytes of SAM for a few million reads, and a
Python loop per line costs more CPU than two busy cores leave spare. Here a block of lines
(megabytes) is split at its newlines and tabs with NumPy and the columns Pathoscope needs are
read in place: QNAME, FLAG, RNAME, POS, the length of SEQ and the ``AS:i`` score, which bowtie2
writes first among the optional fields of an aligned line. A block that strays from that shape
(a header, a line of too few fields, ``AS:i`` elsewhere, a number with a sign or spaces, bytes
that are not ASCII) is read line by line by :func:`pathoscope.read_sam` instead, so both give
the same alignments and the same errors, naming the same line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .pathoscope import P_SCORE_CUTOFF, read_sam

#: Bytes gathered before a block is parsed: large enough that NumPy's per-call cost vanishes.
BLOCK_BYTES = 1 << 22
#: Longest integer field read in place (int64 holds 18 digits); longer ones go line by line.
MAX_DIGITS = 18

_NEWLINE, _TAB, _AT, _HASH, _MINUS, _STAR = (ord(c) for c in "\n\t@#-*")
_AS_TAG = np.frombuffer(b"AS:i:", dtype=np.uint8)
#: Zero bytes around a parsed block: room for fixed-width windows (a QNAME is at most 254 bytes).
_PADDING = 256
#: An odd 64-bit multiplier (the golden ratio's) for :func:`_hash`.
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class SamColumns:
    """The kept lines of a SAM block: names as NumPy bytes arrays, numbers as int64/float64."""

    qname: np.ndarray
    rname: np.ndarray
    pos: np.ndarray
    length: np.ndarray
    score: np.ndarray  # AS:i plus the length of SEQ (p_score)

    def __len__(self) -> int:
        return len(self.pos)


def line_blocks(chunks: Iterable[bytes], block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """Regroup a byte stream into blocks of whole lines of at least ``block_bytes`` (the last may be shorter).

    >>> list(line_blocks([b"a\\nb", b"c\\nd"], block_bytes=2))
    [b'a\\n', b'bc\\n', b'd\\n']
    """
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size >= block_bytes:
            cut = chunk.rfind(b"\n") + 1
            if cut:  # one copy per block: the join
                parts[-1] = chunk[:cut]
                yield b"".join(parts)
                parts, size = ([chunk[cut:]], len(chunk) - cut) if cut < len(chunk) else ([], 0)
    rest = b"".join(parts)
    if rest:
        yield rest if rest.endswith(b"\n") else rest + b"\n"


def parse_blocks(blocks: Iterable[bytes], p_score_cutoff: float = P_SCORE_CUTOFF) -> Iterator[SamColumns]:
    """Parse each block of whole SAM lines, numbering lines across blocks for error messages."""
    first_line = 1
    for block in blocks:
        columns, lines = _parse_block(block, p_score_cutoff, first_line)
        yield columns
        first_line += lines


def parse_sam_block(block: bytes, p_score_cutoff: float = P_SCORE_CUTOFF, first_line: int = 1) -> SamColumns:
    r"""Return the mapped lines of ``block`` scoring at least ``p_score_cutoff``, as :func:`read_sam` keeps them.

    >>> line = b"\t".join([b"r1", b"16", b"NC_1", b"7", b"255", b"4M", b"*", b"0", b"0",
    ...                    b"ACGT", b"IIII", b"AS:i:8", b"XN:i:0"]) + b"\n"
    >>> columns = parse_sam_block(line + b"r2\t4\t*\t0\t0\t*\t*\t0\t0\tACGT\tIIII\tYT:Z:UU\n")
    >>> columns.qname.tolist(), columns.rname.tolist(), columns.pos.tolist(), columns.score.tolist()
    ([b'r1'], [b'NC_1'], [7], [12.0])
    """
    return _parse_block(block, p_score_cutoff, first_line)[0]


def _parse_block(block: bytes, p_score_cutoff: float, first_line: int) -> tuple[SamColumns, int]:
    """The block's columns and its number of lines."""
    buf, ends = _padded(block)
    columns = _parse_bowtie2_lines(buf, ends, p_score_cutoff)
    if columns is None:
        columns = _columns_of(read_sam(block.splitlines(keepends=True), p_score_cutoff, first_line=first_line))
    return columns, len(ends)


def _padded(block: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The block as bytes between zeros, ending with a newline, and where its newlines are."""
    # The zeros keep fixed-width windows over any field inside the array.
    buf = np.zeros(len(block) + 2 * _PADDING + 1, dtype=np.uint8)
    buf[_PADDING : _PADDING + len(block)] = np.frombuffer(block, dtype=np.uint8)
    if block and not block.endswith(b"\n"):
        buf[_PADDING + len(block)] = _NEWLINE
    return buf, np.flatnonzero(buf == _NEWLINE)


def _parse_bowtie2_lines(buf: np.ndarray, ends: np.ndarray, p_score_cutoff: float) -> SamColumns | None:
    """Parse lines of bowtie2's shape in place (``ends``: their newlines); None when any needs the line parser."""
    if not len(ends):
        return _columns_of([])
    if int(buf.max()) >= 128:
        return None
    starts = np.concatenate(([_PADDING], ends[:-1] + 1))
    if bool(np.isin(buf[starts], (_AT, _HASH, _NEWLINE)).any()):
        return None
    tabs = np.flatnonzero(buf == _TAB)
    first_tab = np.searchsorted(tabs, starts)
    tab_count = np.searchsorted(tabs, ends) - first_tab
    if bool((tab_count < 11).any()):  # 11 mandatory fields and AS:i after them
        return None

    def tab(k: int) -> np.ndarray:
        return tabs[first_tab + k]

    flag, flag_ok = _integers(buf, tab(0) + 1, tab(1))
    if not flag_ok.all():
        return None
    rname_start, rname_end = tab(1) + 1, tab(2)
    unmapped_ref = (rname_end - rname_start == 1) & (buf[rname_start] == _STAR)
    mapped = np.flatnonzero(((flag & 4) == 0) & ~unmapped_ref)
    tag_start = tab(10)[mapped] + 1
    tag_end = np.where(tab_count > 11, tabs[np.minimum(first_tab + 11, len(tabs) - 1)], ends)[mapped]
    if not _starts_with_as_tag(buf, tag_start, tag_end):
        return None
    alignment_score, score_ok = _integers(buf, tag_start + len(_AS_TAG), tag_end)
    pos, pos_ok = _integers(buf, tab(2)[mapped] + 1, tab(3)[mapped])
    if not (score_ok.all() and pos_ok.all() and (pos >= 1).all()):
        return None
    length = (tab(9) - tab(8) - 1)[mapped]
    score = (alignment_score + length).astype(np.float64)
    kept = mapped[score >= p_score_cutoff]
    keep = score >= p_score_cutoff
    return SamColumns(
        qname=_names(buf, starts[kept], tab(0)[kept]),
        rname=_names(buf, rname_start[kept], rname_end[kept]),
        pos=pos[keep],
        length=length[keep],
        score=score[keep],
    )


def _starts_with_as_tag(buf: np.ndarray, begin: np.ndarray, end: np.ndarray) -> bool:
    """Whether every field ``[begin, end)`` starts with ``AS:i:`` and has a character after it."""
    if not len(begin):
        return True
    if bool((end - begin <= len(_AS_TAG)).any()):
        return False
    return bool((buf[begin[:, None] + np.arange(len(_AS_TAG))] == _AS_TAG).all())


def _integers(buf: np.ndarray, begin: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Read the decimal integers in ``buf[begin:end]`` (an optional ``-``, then digits); also return which were."""
    if not len(begin):
        return np.zeros(0, dtype=np.int64), np.ones(0, dtype=bool)
    negative = (end > begin) & (buf[np.minimum(begin, len(buf) - 1)] == _MINUS)
    digits_begin = begin + negative
    width = end - digits_begin
    ok = (width >= 1) & (width <= MAX_DIGITS)
    columns = int(min(max(int(width.max()), 1), MAX_DIGITS))
    # Right-aligned digits, one row per field, positions left of the field count as 0.
    inside = np.arange(columns) >= (columns - width)[:, None]
    digits = _windows(buf, end - columns, columns).astype(np.int64) - ord("0")
    ok &= (~inside | ((digits >= 0) & (digits <= 9))).all(axis=1)
    digits[~inside] = 0
    value = digits @ (10 ** np.arange(columns - 1, -1, -1, dtype=np.int64))
    return np.where(negative, -value, value), ok


def _names(buf: np.ndarray, begin: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The fields ``buf[begin:end]`` as a NumPy bytes array (``S`` dtype, as wide as the longest)."""
    width = end - begin
    columns = max(int(width.max()) if len(width) else 0, 1)
    if columns <= _PADDING:
        matrix = _windows(buf, begin, columns)
    else:  # longer than SAM allows a QNAME: index byte by byte
        matrix = buf[np.minimum(begin[:, None] + np.arange(columns), len(buf) - 1)]
    matrix[np.arange(columns) >= width[:, None]] = 0
    return matrix.view(f"S{columns}").ravel()


def _windows(buf: np.ndarray, begin: np.ndarray, columns: int) -> np.ndarray:
    """A copy of ``buf[b : b + columns]`` for each ``b`` in ``begin``, one row each."""
    return np.lib.stride_tricks.sliding_window_view(buf, columns)[begin]


def _columns_of(alignments: Iterable[tuple[str, str, int, int, float]]) -> SamColumns:
    """Columns of alignment tuples (the line parser's output)."""
    rows = list(alignments)
    return SamColumns(
        qname=np.array([row[0].encode() for row in rows], dtype="S") if rows else np.zeros(0, dtype="S1"),
        rname=np.array([row[1].encode() for row in rows], dtype="S") if rows else np.zeros(0, dtype="S1"),
        pos=np.array([row[2] for row in rows], dtype=np.int64),
        length=np.array([row[3] for row in rows], dtype=np.int64),
        score=np.array([row[4] for row in rows], dtype=np.float64),
    )


def first_seen(names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Number distinct values by first appearance: ``(values in that order, each item's number)``.

    >>> values, numbers = first_seen(np.array([b"b", b"a", b"b", b"c"]))
    >>> values.tolist(), numbers.tolist()
    ([b'b', b'a', b'c'], [0, 1, 0, 2])
    """
    if not len(names):
        return names[:0], np.zeros(0, dtype=np.int64)
    if names.dtype.kind == "S":
        # Runs of one name (a read's -k alignments) first, then names by a 64-bit hash: sorting
        # integers is several times faster than sorting strings. Equal hashes of different names
        # would merge them, so the names are compared with their group's first; never seen, but
        # then the names themselves are sorted.
        run_start = np.flatnonzero(np.concatenate(([True], names[1:] != names[:-1])))
        heads = names[run_start]
        first, number = _first_seen_keys(_hash(heads))
        if not bool((heads[first][number] == heads).all()):
            first, number = _first_seen_keys(heads)
        run_of = np.repeat(np.arange(len(run_start)), np.diff(np.append(run_start, len(names))))
        return heads[first], number[run_of]
    first, number = _first_seen_keys(names)
    return names[first], number


def _first_seen_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each distinct key's first item, in first-appearance order, and each item's number."""
    # np.unique sorts stably when asked for indexes, so ``first`` is each value's first item.
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    number = np.empty(len(order), dtype=np.int64)
    number[order] = np.arange(len(order))
    return first[order], number[inverse.ravel()]


def _hash(names: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each name of an ``S`` array, eight bytes at a time."""
    width = names.dtype.itemsize
    padded = np.zeros((len(names), -(-width // 8) * 8), dtype=np.uint8)
    padded[:, :width] = np.ascontiguousarray(names).view(np.uint8).reshape(len(names), width)
    words = padded.view(np.uint64)
    value = np.full(len(names), width, dtype=np.uint64)
    for column in range(words.shape[1]):
        value = (value ^ words[:, column]) * _MULTIPLIER
        value ^= value >> np.uint64(29)
    return value


def mapped_ref_names(blocks: Iterable[bytes]) -> set[str]:
    """The reference names mapped lines of SAM blocks align to (every score counts)."""
    names: set[bytes] = set()
    for columns in parse_blocks(blocks, p_score_cutoff=-math.inf):
        names.update(np.unique(columns.rname).tolist())
    return {name.decode() for name in names}


def best_scores(blocks: Iterable[bytes], p_score_cutoff: float = P_SCORE_CUTOFF) -> tuple[np.ndarray, np.ndarray]:
    """``(read names, p_score)`` of a subtraction SAM, the last line of a read winning (as a dict would)."""
    parts = list(parse_blocks(blocks, p_score_cutoff))
    names = np.concatenate([p.qname for p in parts]) if parts else np.zeros(0, dtype="S1")
    scores = np.concatenate([p.score for p in parts]) if parts else np.zeros(0)
    values, last_from_end = np.unique(names[::-1], return_index=True)
    return values, scores[::-1][last_from_end]
