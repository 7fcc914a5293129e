"""Pathoscope: reassign multi-mapped reads to reference sequences with PathoScope's EM.

This follows the classic Virtool / PathoScope 2.0 behaviour described in
``spec/workflows.md`` sections 1.2-1.6 with the quirks of section 7 kept on purpose:
``init_pi`` is pi after the first iteration, the EM stops after one iteration when at most
one read is multi-mapped, the first score of a duplicate (read, ref) pair enters the matrix,
the report stops at the first uninteresting row of a descending tuple sort, low-confidence
hits are counted for a read's best entries only, subtraction drops single alignments (ties
eliminate), and sums run in the order alignments arrive so that results repeat run to run
and match the reference loop algorithm to the last bits wherever NumPy allows it.

Alignments travel as tuples ``(read_id, ref_id, pos, length, p_score)``: ``pos`` is the
1-based SAM position, ``length`` the length of the read's SEQ and ``p_score`` the bowtie2
``AS:i`` score plus that length.

The matrix is built in one pass over the alignments into compact NumPy arrays, so a SAM
stream from bowtie2 is read once; the EM, best-hit counts and coverage are array operations
with no Python loop per read.
"""

from __future__ import annotations

import csv
import math
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np

from . import diagnosis

#: Alignments scoring below this are ignored (Virtool: constant, "not configurable").
P_SCORE_CUTOFF = 0.01
#: EM parameters used by Virtool (workflow-pathoscope ``em(&u, nu, &refs, 50, 1e-7, 0, 0)``).
MAX_ITER = 50
EPSILON = 1e-7

REPORT_HEADER = [
    "Genome",
    "Final Guess",
    "Final Best Hit",
    "Final Best Hit Read Numbers",
    "Final High Confidence Hits",
    "Final Low Confidence Hits",
    "Initial Guess",
    "Initial Best Hit",
    "Initial Best Hit Read Numbers",
    "Initial High Confidence Hits",
    "Initial Low Confidence Hits",
]

Alignment = tuple[str, str, int, int, float]


# --------------------------------------------------------------------------------------------
# Parsers
# --------------------------------------------------------------------------------------------


def _as_text(line: str | bytes, number: int, what: str) -> str:
    """Return ``line`` as str, decoding bytes from a pipe."""
    if isinstance(line, bytes):
        try:
            return line.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"{what} line {number}: not ASCII text; is this a compressed or binary file?") from None
    return line


def read_vta(handle: Iterable[str | bytes]) -> Iterator[Alignment]:
    """Yield ``(read_id, ref_id, pos, length, p_score)`` from VTA lines.

    VTA is Virtool's alignment table: ``read_id,ref_id,pos,length,p_score`` per line.

    >>> import io
    >>> list(read_vta(io.StringIO("r1,NC_1,18,101,254.0\\n\\nr2,NC_2,5,101,303\\n")))
    [('r1', 'NC_1', 18, 101, 254.0), ('r2', 'NC_2', 5, 101, 303.0)]
    >>> list(read_vta(io.StringIO("r1,NC_1,18,101\\n")))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: VTA line 1: expected 5 comma-separated fields (read_id,ref_id,pos,length,p_score), found 4; ...
    """
    for number, line in enumerate(handle, 1):
        line = _as_text(line, number, "VTA").rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != 5:
            raise ValueError(
                f"VTA line {number}: expected 5 comma-separated fields "
                f"(read_id,ref_id,pos,length,p_score), found {len(fields)}; is this a VTA file?"
            )
        read_id, ref_id, pos, length, p_score = fields
        yield read_id, ref_id, *_parse_numbers(pos, length, p_score, number, "VTA")


def _parse_numbers(pos: str, length: str, p_score: str, number: int, what: str):
    """Return ``(pos, length, p_score)`` as numbers, or raise naming the line."""
    try:
        pos_, length_, score = int(pos), int(length), float(p_score)
    except ValueError:
        raise ValueError(
            f"{what} line {number}: pos {pos!r} and length {length!r} must be integers and "
            f"p_score {p_score!r} a number; are the columns in the expected order?"
        ) from None
    if pos_ < 1 or length_ < 0 or not math.isfinite(score):
        raise ValueError(
            f"{what} line {number}: pos must be >= 1 (1-based), length >= 0 and p_score finite, "
            f"found pos={pos_}, length={length_}, p_score={p_score}; is this an unmapped line?"
        )
    return pos_, length_, score


def find_sam_align_score(fields: Sequence[str]) -> float:
    """Return the p_score of split SAM ``fields``: ``AS:i`` plus the length of SEQ.

    >>> find_sam_align_score(["r1", "0", "NC_1", "1", "255", "4M", "*", "0", "0",
    ...                       "ACGT", "IIII", "XN:i:0", "AS:i:-3"])
    1.0
    """
    read_length = float(len(fields[9]))
    for field in fields[11:]:
        if field.startswith("AS:i:"):
            return int(field[5:]) + read_length
    raise ValueError("no AS:i tag; was the SAM written by bowtie2?")


def read_sam(
    handle: Iterable[str | bytes], p_score_cutoff: float = P_SCORE_CUTOFF, first_line: int = 1
) -> Iterator[Alignment]:
    r"""Yield ``(read_id, ref_id, pos, length, p_score)`` for the mapped lines of a bowtie2 SAM.

    Skips ``@``/``#`` lines, unmapped lines (flag 4 or RNAME ``*``) and lines scoring below
    ``p_score_cutoff``. Lines may be str or bytes (bowtie2's stdout); errors number them from
    ``first_line`` (a block of a longer stream).

    >>> line = "\t".join(["r1", "16", "NC_1", "7", "255", "4M", "*", "0", "0",
    ...                   "ACGT", "IIII", "AS:i:8"]) + "\n"
    >>> list(read_sam(["@HD\tVN:1.0\n", line.encode()]))
    [('r1', 'NC_1', 7, 4, 12.0)]
    >>> list(read_sam(["r1\t0\tNC_1\n"]))
    Traceback (most recent call last):
    ...
    ValueError: SAM line 1: expected at least 11 tab-separated fields, found 3; is this a SAM file?
    """
    for number, line in enumerate(handle, first_line):
        line = _as_text(line, number, "SAM")
        if not line.strip() or line[0] in "@#":
            continue
        fields = line.rstrip("\r\n").split("\t")
        alignment = _parse_sam_fields(fields, number)
        if alignment is not None and alignment[4] >= p_score_cutoff:
            yield alignment


def _parse_sam_fields(fields: list[str], number: int) -> Alignment | None:
    """Return the alignment of split SAM ``fields``, or None for an unmapped line."""
    if len(fields) < 11:
        raise ValueError(
            f"SAM line {number}: expected at least 11 tab-separated fields, found {len(fields)}; is this a SAM file?"
        )
    try:
        flag = int(fields[1])
    except ValueError:
        raise ValueError(f"SAM line {number}: FLAG {fields[1]!r} is not an integer; is this a SAM file?") from None
    if flag & 4 or fields[2] == "*":
        return None
    try:
        score = find_sam_align_score(fields)
    except ValueError as error:
        raise ValueError(f"SAM line {number}: {error}") from None
    try:
        pos = int(fields[3])
    except ValueError:
        pos = 0
    if pos < 1:
        raise ValueError(f"SAM line {number}: POS {fields[3]!r} is not a 1-based position; is the line mapped?")
    return fields[0], fields[2], pos, len(fields[9]), score


# --------------------------------------------------------------------------------------------
# Subtraction
# --------------------------------------------------------------------------------------------


def read_subtraction_scores(
    sam_lines: Iterable[str | bytes], p_score_cutoff: float = P_SCORE_CUTOFF
) -> dict[str, float]:
    """Return ``{read_id: p_score}`` from a subtraction SAM (the last line of a read wins)."""
    return {read_id: score for read_id, _, _, _, score in read_sam(sam_lines, p_score_cutoff)}


def eliminate_subtraction(
    alignments: Iterable[Alignment], subtraction_scores: Mapping[str, float]
) -> tuple[Iterator[Alignment], set[str]]:
    """Drop each alignment its read scores at least as well against the host.

    Returns ``(kept_alignments, subtracted_read_ids)``. ``kept_alignments`` is a lazy
    iterator so a SAM stream is never held in memory; ``subtracted_read_ids`` fills up as it
    is consumed and is complete once the iterator is exhausted. Ties eliminate (spec 1.4).
    """
    subtracted: set[str] = set()

    def kept() -> Iterator[Alignment]:
        for alignment in alignments:
            host_score = subtraction_scores.get(alignment[0])
            if host_score is not None and host_score >= alignment[4]:
                subtracted.add(alignment[0])
            else:
                yield alignment

    return kept(), subtracted


# --------------------------------------------------------------------------------------------
# Matrix
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Matrix:
    """Alignments kept in one pass plus the u/nu matrix of PathoScope in array form.

    Per-alignment arrays are in arrival order. Unique reads (``u_*``) are in first-seen
    order; multi-mapped reads are rows in the order PathoScope's dict receives them (when a
    second distinct reference appears) and their entries are flattened, row after row, in
    arrival order, so that sums over them run in the reference implementation's order.
    """

    reads: Sequence[str] | np.ndarray
    refs: list[str]
    read_index: np.ndarray  # per alignment
    ref_index: np.ndarray
    pos: np.ndarray
    length: np.ndarray
    score: np.ndarray
    alignment_entry: np.ndarray  # entry of a multi read's alignment, -1 for unique reads
    u_ref: np.ndarray
    u_weight: np.ndarray
    nu_read: np.ndarray  # read index of each row
    nu_weight: np.ndarray  # the row's largest rescaled score
    row_starts: np.ndarray  # first entry of each row
    entry_row: np.ndarray
    entry_ref: np.ndarray
    entry_weight: np.ndarray  # exp(p_score * scale)
    x0: np.ndarray  # initial assignment: entry_weight / row sum


class AlignmentColumns(NamedTuple):
    """Alignments as arrays: reads and refs numbered by first appearance, rows in arrival order."""

    reads: Sequence[str] | np.ndarray
    refs: list[str]
    read_index: np.ndarray
    ref_index: np.ndarray
    pos: np.ndarray
    length: np.ndarray
    score: np.ndarray


def collect_alignments(alignments: Iterable[Alignment], p_score_cutoff: float = P_SCORE_CUTOFF) -> AlignmentColumns:
    """Index reads and refs by first appearance and pack the alignments into arrays."""
    reads: dict[str, int] = {}
    refs: dict[str, int] = {}
    columns = read_col, ref_col, pos_col, len_col = array("q"), array("q"), array("q"), array("q")
    score_col = array("d")
    add_read, add_ref, add_pos, add_len, add_score = (
        read_col.append,
        ref_col.append,
        pos_col.append,
        len_col.append,
        score_col.append,
    )
    for read_id, ref_id, pos, length, score in alignments:
        if score < p_score_cutoff:
            continue
        add_read(reads.setdefault(read_id, len(reads)))
        add_ref(refs.setdefault(ref_id, len(refs)))
        add_pos(pos)
        add_len(length)
        add_score(score)
    read_index, ref_index, positions, lengths = (np.array(column, dtype=np.int64) for column in columns)
    scores = np.array(score_col, dtype=np.float64)
    return AlignmentColumns(list(reads), list(refs), read_index, ref_index, positions, lengths, scores)


def build_matrix(alignments: Iterable[Alignment] | AlignmentColumns, p_score_cutoff: float = P_SCORE_CUTOFF) -> Matrix:
    """Build the rescaled u/nu matrix (spec 1.5 build_matrix) from alignments read once.

    ``alignments`` are tuples, or columns whose rows all score at least the cut-off already
    (an :class:`~ringspot.bio.alignments.AlignmentTable`'s).
    """
    columns = alignments if isinstance(alignments, AlignmentColumns) else collect_alignments(alignments, p_score_cutoff)
    reads, refs, read_index, ref_index, pos, length, score = columns
    pairs, alignment_pair = _first_pairs(read_index, ref_index, len(refs))
    pair_read = read_index[pairs]
    is_multi = np.bincount(pair_read, minlength=len(reads))[pair_read] >= 2
    multi_pairs = _order_rows(np.flatnonzero(is_multi), pair_read)
    weight = _rescale(score)
    u_alignment, nu_alignment = pairs[~is_multi], pairs[multi_pairs]
    nu_read, entry_weight = read_index[nu_alignment], weight[nu_alignment]
    row_starts, entry_row = _rows(nu_read)
    row_sum = np.bincount(entry_row, weights=entry_weight, minlength=len(row_starts))
    return Matrix(
        reads=reads,
        refs=refs,
        read_index=read_index,
        ref_index=ref_index,
        pos=pos,
        length=length,
        score=score,
        alignment_entry=_alignment_entries(alignment_pair, multi_pairs, len(pairs)),
        u_ref=ref_index[u_alignment],
        u_weight=weight[u_alignment],
        nu_read=nu_read[row_starts],
        nu_weight=_row_max(entry_weight, row_starts),
        row_starts=row_starts,
        entry_row=entry_row,
        entry_ref=ref_index[nu_alignment],
        entry_weight=entry_weight,
        x0=entry_weight / row_sum[entry_row],
    )


def _rows(entry_read: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the first entry of each row and the row of each entry (rows are runs of a read)."""
    row_starts = _row_starts(entry_read)
    is_start = np.zeros(len(entry_read), dtype=bool)
    is_start[row_starts] = True
    return row_starts, np.cumsum(is_start) - 1


def _first_pairs(read_index: np.ndarray, ref_index: np.ndarray, ref_count: int):
    """Return the first alignment of each (read, ref) pair, pairs in arrival order, and each alignment's pair."""
    key = read_index * max(ref_count, 1) + ref_index
    # A stable sort, so return_index is the first line of each pair: its score is the one kept.
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    pair_entry = np.empty_like(order)
    pair_entry[order] = np.arange(len(order))
    return first[order], pair_entry[inverse.ravel()]


def _order_rows(multi_pairs: np.ndarray, pair_read: np.ndarray) -> np.ndarray:
    """Order multi-read pairs row by row, rows in the order the reads became multi-mapped."""
    reads = pair_read[multi_pairs]
    by_read = np.argsort(reads, kind="stable")
    starts = _row_starts(reads[by_read])
    # A read enters PathoScope's nu dict when its second distinct ref arrives.
    second_pair = multi_pairs[by_read[starts + 1]] if len(starts) else starts
    became_multi = np.empty(len(reads), dtype=np.int64)
    became_multi[by_read] = np.repeat(second_pair, np.diff(np.append(starts, len(reads))))
    return multi_pairs[np.argsort(became_multi, kind="stable")]


def _alignment_entries(alignment_pair: np.ndarray, multi_pairs: np.ndarray, pair_count: int) -> np.ndarray:
    """Map each alignment to its multi-read entry, or -1 when its read is unique."""
    pair_to_entry = np.full(pair_count, -1, dtype=np.int64)
    pair_to_entry[multi_pairs] = np.arange(len(multi_pairs))
    return pair_to_entry[alignment_pair]


def _rescale(score: np.ndarray) -> np.ndarray:
    """Return ``exp(p * 100 / max_score)``, shifting by ``min_score`` when it is negative."""
    if not len(score):
        return score.copy()
    # Both extremes start at 0 (classic), so a negative minimum only shifts scores.
    min_score, max_score = min(0.0, float(score.min())), max(0.0, float(score.max()))
    if max_score == min_score:
        raise ValueError("every alignment scores 0; cannot rescale p_scores (is the cutoff <= 0?)")
    scaled = (score - min_score) * (100.0 / (max_score - min_score)) if min_score < 0 else score * (100.0 / max_score)
    # math.exp on the few distinct values: bit for bit what the loop algorithm computes
    # (np.exp may differ in the last ulp), and cheaper than one call per alignment.
    values, inverse = np.unique(scaled, return_inverse=True)
    return np.array([math.exp(v) for v in values.tolist()])[inverse.ravel()]


def _row_starts(sorted_reads: np.ndarray) -> np.ndarray:
    """Return the first index of each run of equal values."""
    if not len(sorted_reads):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate(([True], sorted_reads[1:] != sorted_reads[:-1])))


def _row_max(values: np.ndarray, row_starts: np.ndarray) -> np.ndarray:
    """Return the maximum of each row."""
    if not len(row_starts):
        return np.zeros(0)
    return np.maximum.reduceat(values, row_starts)


def _ordered_sum(values: np.ndarray) -> float:
    """Sum left to right like Python's ``sum`` (NumPy's ``sum`` is pairwise)."""
    return float(np.cumsum(values)[-1]) if len(values) else 0.0


# --------------------------------------------------------------------------------------------
# EM and best hits
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmResult:
    """Outcome of the EM: ``x`` is the final assignment of each multi-read entry."""

    init_pi: np.ndarray
    pi: np.ndarray
    theta: np.ndarray
    x: np.ndarray
    iterations: int


def em(
    matrix: Matrix,
    max_iter: int = MAX_ITER,
    epsilon: float = EPSILON,
    pi_prior: float = 0,
    theta_prior: float = 0,
) -> EmResult:
    """Run PathoScope's EM on ``matrix`` (spec 1.5), vectorised over reads."""
    ref_count = len(matrix.refs)
    pi = theta = np.full(ref_count, 1.0 / ref_count) if ref_count else np.zeros(0)
    init_pi, x = pi, matrix.x0
    pi_sum_0 = np.bincount(matrix.u_ref, weights=matrix.u_weight, minlength=ref_count)
    u_total, nu_total = _ordered_sum(matrix.u_weight), _ordered_sum(matrix.nu_weight)
    prior_weight = max(_max_or_zero(matrix.u_weight), _max_or_zero(matrix.nu_weight))
    single_pass = len(matrix.nu_weight) <= 1  # classic: `nu_length == 1` after `or 1`
    iterations = 0
    for iterations in range(1, max_iter + 1):
        pi_old = pi
        x = _e_step(matrix, pi, theta)
        theta_sum = np.bincount(matrix.entry_ref, weights=x * matrix.nu_weight[matrix.entry_row], minlength=ref_count)
        pip = pi_prior * prior_weight
        pi = (theta_sum + pi_sum_0 + pip) / (u_total + nu_total + pip * ref_count)
        if iterations == 1:
            init_pi = pi
        thp = theta_prior * prior_weight
        theta = (theta_sum + thp) / ((nu_total or 1) + thp * ref_count)
        if sum(np.abs(pi_old - pi).tolist()) <= epsilon or single_pass:
            break
    return EmResult(init_pi=init_pi, pi=pi, theta=theta, x=x, iterations=iterations)


def _e_step(matrix: Matrix, pi: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Return each multi-read entry's share ``pi*theta*w``, normalised per read (0 if all 0)."""
    refs = matrix.entry_ref
    weighted = pi[refs] * theta[refs] * matrix.entry_weight
    row_sum = np.bincount(matrix.entry_row, weights=weighted, minlength=len(matrix.row_starts))
    entry_sum = row_sum[matrix.entry_row]
    return np.divide(weighted, entry_sum, out=np.zeros_like(weighted), where=entry_sum != 0)


def _max_or_zero(values: np.ndarray) -> float:
    """Return the maximum of ``values``, 0 when empty."""
    return float(values.max()) if len(values) else 0.0


@dataclass(frozen=True)
class BestHits:
    """Per-reference best-hit read numbers and fractions of the R aligned reads."""

    reads: np.ndarray
    best: np.ndarray
    high: np.ndarray
    low: np.ndarray


def compute_best_hit(matrix: Matrix, x: np.ndarray) -> BestHits:
    """Count best hits per reference, high/low confidence for best entries only (classic)."""
    ref_count, read_count = len(matrix.refs), len(matrix.reads)
    is_best = x == _row_max(x, matrix.row_starts)[matrix.entry_row]
    best_rows = matrix.entry_row[is_best]
    ties = np.bincount(best_rows, minlength=len(matrix.row_starts))
    best_refs = matrix.entry_ref[is_best]
    # Unique reads first, then multi reads in row order: the reference's summation order.
    best_reads = np.bincount(
        np.concatenate((matrix.u_ref, best_refs)),
        weights=np.concatenate((np.ones(len(matrix.u_ref)), 1.0 / ties[best_rows])),
        minlength=ref_count,
    )
    best_x = x[is_best]
    level1 = np.bincount(np.concatenate((matrix.u_ref, best_refs[best_x >= 0.5])), minlength=ref_count)
    level2 = np.bincount(best_refs[(best_x < 0.5) & (best_x >= 0.01)], minlength=ref_count)
    divisor = read_count or 1
    return BestHits(
        reads=best_reads,
        best=best_reads / divisor,
        high=level1 / divisor,
        low=level2 / divisor,
    )


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


class ReportRow(NamedTuple):
    """One row of ``report.tsv``, in its column order."""

    ref_id: str
    final_pi: float
    final_best: float
    final_reads: float
    final_high: float
    final_low: float
    initial_pi: float
    initial_best: float
    initial_reads: float
    initial_high: float
    initial_low: float


def select_report_rows(refs: Sequence[str], result: EmResult, initial: BestHits, final: BestHits) -> list[ReportRow]:
    """Sort the per-reference tuples descending and keep rows until the first uninteresting one."""
    columns = [
        result.pi,
        refs,
        result.init_pi,
        initial.best,
        initial.reads,
        final.best,
        final.reads,
        initial.high,
        initial.low,
        final.high,
        final.low,
    ]
    lists = [c.tolist() if isinstance(c, np.ndarray) else list(c) for c in columns]
    rows = []
    for pi, ref, init_pi, b_i, r_i, b_f, r_f, h_i, l_i, h_f, l_f in sorted(zip(*lists, strict=False), reverse=True):
        if pi < 0.01 and h_f <= 0 and l_f <= 0:
            break
        rows.append(ReportRow(ref, pi, b_f, r_f, h_f, l_f, init_pi, b_i, r_i, h_i, l_i))
    return rows


def write_report(
    path_or_handle: str | Path | IO[str],
    matrix: Matrix,
    result: EmResult,
    initial: BestHits,
    final: BestHits,
) -> list[ReportRow]:
    """Write ``report.tsv`` (tab, CRLF) as PathoScope does and return the kept rows."""
    rows = select_report_rows(matrix.refs, result, initial, final)
    if isinstance(path_or_handle, (str, Path)):
        with open(path_or_handle, "w", newline="") as handle:
            _write_report_rows(handle, len(matrix.reads), len(matrix.refs), rows)
    else:
        _write_report_rows(path_or_handle, len(matrix.reads), len(matrix.refs), rows)
    return rows


def _write_report_rows(handle: IO[str], read_count: int, ref_count: int, rows: list[ReportRow]) -> None:
    """Write the totals row, the header and ``rows``."""
    writer = csv.writer(handle, delimiter="\t", lineterminator="\r\n")
    writer.writerow(["Total Number of Aligned Reads:", read_count, "Total Number of Mapped Genomes:", ref_count])
    writer.writerow(REPORT_HEADER)
    writer.writerows(rows)


# --------------------------------------------------------------------------------------------
# Reassigned alignments, coverage and hits
# --------------------------------------------------------------------------------------------


def rewrite_align(matrix: Matrix, x: np.ndarray, p_score_cutoff: float = P_SCORE_CUTOFF) -> np.ndarray:
    """Return a mask of the alignments PathoScope's ``rewrite_align`` writes out.

    A unique read keeps only its first line; a multi read keeps every line (repeated
    positions included) of the references it still holds with ``x >= p_score_cutoff``.
    """
    read_index = matrix.read_index
    first_line = np.ones(len(read_index), dtype=bool)
    # Reads are numbered by first appearance, so a read's first line raises the running max.
    first_line[1:] = read_index[1:] > np.maximum.accumulate(read_index)[:-1]
    entry = matrix.alignment_entry
    is_unique = entry < 0
    kept_multi = ~is_unique & (x[np.where(is_unique, 0, entry)] >= p_score_cutoff) if len(x) else False
    return (is_unique & first_line) | kept_multi


def calculate_coverage(
    matrix: Matrix,
    x: np.ndarray,
    ref_lengths: Mapping[str, int],
    p_score_cutoff: float = P_SCORE_CUTOFF,
) -> dict[str, np.ndarray]:
    """Return per-reference depth arrays from the reassigned alignments, clipped at each length."""
    lengths = np.array([_ref_length(ref_lengths, ref) for ref in matrix.refs], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    kept = rewrite_align(matrix, x, p_score_cutoff)
    ref, start = matrix.ref_index[kept], matrix.pos[kept] - 1
    ref_length = lengths[ref]
    begin = offsets[ref] + np.minimum(start, ref_length)
    end = offsets[ref] + np.minimum(start + matrix.length[kept], ref_length)
    # Depth is the running sum of +1 at each start and -1 at each end, in one shared frame.
    total = int(offsets[-1])
    steps = np.bincount(begin, minlength=total + 1) - np.bincount(end, minlength=total + 1)
    depth = np.cumsum(steps[:total])
    return {ref_id: depth[offsets[i] : offsets[i + 1]] for i, ref_id in enumerate(matrix.refs)}


def _ref_length(ref_lengths: Mapping[str, int], ref_id: str) -> int:
    """Return the length of ``ref_id``, or raise naming the sequence."""
    try:
        length = int(ref_lengths[ref_id])
    except KeyError:
        raise ValueError(f"no length for reference {ref_id!r}; was the isolate FASTA written for this index?") from None
    if length <= 0:
        raise ValueError(f"reference {ref_id!r} has length {length}; lengths must be positive")
    return length


def build_hits(
    report_rows: Iterable[ReportRow],
    coverage: Mapping[str, np.ndarray],
    sequence_otu_map: Mapping[str, str],
    manifest: Mapping[str, object],
) -> list[dict]:
    """Return the ``hits`` of spec 1.6, one per reported reference."""
    return [_hit(row, coverage[row.ref_id], sequence_otu_map, manifest) for row in report_rows]


def _hit(
    row: ReportRow, depth: np.ndarray, sequence_otu_map: Mapping[str, str], manifest: Mapping[str, object]
) -> dict:
    """Return the hit document of one report row."""
    try:
        otu_id = sequence_otu_map[row.ref_id]
        version = manifest[otu_id]
    except KeyError as error:
        raise ValueError(f"sequence {row.ref_id!r}: {error} missing from the index map or manifest") from None
    return {
        "id": row.ref_id,
        "otu": {"id": otu_id, "version": version},
        "final": {
            "pi": row.final_pi,
            "best": row.final_best,
            "high": row.final_high,
            "low": row.final_low,
            "reads": int(row.final_reads),
        },
        "initial": {
            "pi": row.initial_pi,
            "best": row.initial_best,
            "high": row.initial_high,
            "low": row.initial_low,
            "reads": int(row.initial_reads),
        },
        "align": depth.tolist(),
        "coverage": round(1 - int(np.count_nonzero(depth == 0)) / len(depth), 3),
        "depth": round(int(depth.sum()) / len(depth)),
    }


# --------------------------------------------------------------------------------------------
# Whole reassignment step
# --------------------------------------------------------------------------------------------


def run_pathoscope(
    alignments: Iterable[Alignment] | AlignmentColumns,
    ref_lengths: Mapping[str, int],
    sequence_otu_map: Mapping[str, str],
    manifest: Mapping[str, object],
    out_dir: str | Path,
    subtraction_scores: Mapping[str, float] | None = None,
    p_score_cutoff: float = P_SCORE_CUTOFF,
    otus: Mapping[str, diagnosis.Otu] | None = None,
    thresholds: diagnosis.Thresholds | None = None,
) -> dict:
    """Subtract, reassign, report and compute hits; write ``out_dir/report.tsv``.

    ``alignments`` is read once (a SAM stream from bowtie2 is fine). Given the ``otus`` of
    the sequences (a :func:`diagnosis.catalog`), the results also hold the ``diagnosis`` and
    the ``thresholds`` its calls used; ``ref_lengths`` must then hold every isolate sequence.
    """
    subtracted: set[str] = set()
    if subtraction_scores is not None:
        if isinstance(alignments, AlignmentColumns):
            raise ValueError("columns come subtracted (AlignmentTable.eliminate); pass tuples to subtract here")
        alignments, subtracted = eliminate_subtraction(alignments, subtraction_scores)
    matrix = build_matrix(alignments, p_score_cutoff)
    initial = compute_best_hit(matrix, matrix.x0)
    result = em(matrix)
    final = compute_best_hit(matrix, result.x)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = write_report(out_dir / "report.tsv", matrix, result, initial, final)
    coverage = calculate_coverage(matrix, result.x, ref_lengths, p_score_cutoff)
    results = {
        "read_count": len(matrix.reads),
        "subtracted_count": len(subtracted),
        "hits": build_hits(rows, coverage, sequence_otu_map, manifest),
    }
    if otus is not None:
        thresholds = thresholds or diagnosis.Thresholds()
        reads_by_ref = dict(zip(matrix.refs, final.reads.tolist(), strict=True))
        pi_by_ref = dict(zip(matrix.refs, result.pi.tolist(), strict=True))
        results["diagnosis"] = diagnosis.diagnose(
            otus, sequence_otu_map, reads_by_ref, pi_by_ref, coverage, ref_lengths, thresholds
        )
        results["thresholds"] = thresholds.as_dict()
    return results
