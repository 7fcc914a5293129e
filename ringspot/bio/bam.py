"""Figures of reads aligned to one genome, read from a BAM in one pass (pysam, NumPy).

Depth counts what ``samtools depth -a`` counts: aligned bases (CIGAR ``M``, ``=``, ``X``) of
mapped primary records that are neither QC failures nor duplicates; deletions, insertions,
soft clips and skips add nothing. Reads are BAM records (each mate of a pair is one read).

Identity is ``1 - sum(NM) / sum(alignment columns)`` over the same records, as a percentage,
where the columns of an alignment are its ``M``/``=``/``X``/``I``/``D`` bases: with ``NM`` the
edit distance (mismatches plus inserted plus deleted bases) it is the share of columns that
are matches, BLAST's percent identity. Soft-clipped ends of ``--local`` alignments are not
columns and so do not lower it.
"""

from __future__ import annotations

from array import array
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pysam

#: Records ``samtools depth`` leaves out by default: unmapped, secondary, QC fail, duplicate,
#: and (not counted as reads either) supplementary.
SKIP_FLAGS = 0x4 | 0x100 | 0x200 | 0x400 | 0x800
#: CIGAR operations that cover reference bases with read bases (M, =, X).
_ALIGNED = (0, 7, 8)
#: CIGAR operations that are alignment columns (M, I, D, =, X).
_COLUMNS = (0, 1, 2, 7, 8)


@dataclass(frozen=True)
class AlignmentStatistics:
    mapped_reads: int
    length: int
    breadth: float
    mean_depth: float
    #: Percent identity; None when no read mapped.
    identity: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def depth_and_statistics(bam_path: str | Path, reference: str | None = None) -> tuple[np.ndarray, AlignmentStatistics]:
    """Per-position depth of ``reference`` (default: the BAM's only one) and the figures above.

    The BAM need not be sorted or indexed. Raises ``ValueError`` naming the file when the
    reference is not in its header, or when there are several and none is named.
    """
    with pysam.AlignmentFile(str(bam_path), "rb") as bam:
        if reference is None:
            if bam.nreferences != 1:
                raise ValueError(f"{bam_path}: expected one reference in the BAM header, found {bam.nreferences}")
            reference = bam.references[0]
        tid = bam.get_tid(reference)
        if tid < 0:
            raise ValueError(f"{bam_path}: reference {reference!r} is not in the BAM header")
        length = bam.get_reference_length(reference)
        starts, ends = array("q"), array("q")
        mapped = edits = columns = 0
        for record in bam.fetch(until_eof=True):
            if record.flag & SKIP_FLAGS or record.reference_id != tid:
                continue
            mapped += 1
            for start, end in record.get_blocks():
                starts.append(start)
                ends.append(end)
            cigar = record.cigartuples or ()
            columns += sum(size for operation, size in cigar if operation in _COLUMNS)
            if record.has_tag("NM"):
                edits += int(record.get_tag("NM"))  # NM is always an integer tag
            else:  # no NM tag: mismatches cannot be told, count the gaps at least
                edits += sum(size for operation, size in cigar if operation in (1, 2))
    depth = depth_from_blocks(np.frombuffer(starts, dtype=np.int64), np.frombuffer(ends, dtype=np.int64), length)
    covered = int(np.count_nonzero(depth))
    return depth, AlignmentStatistics(
        mapped_reads=mapped,
        length=length,
        breadth=round(covered / length, 6) if length else 0.0,
        mean_depth=round(float(depth.mean()), 4) if length else 0.0,
        identity=round(100.0 * (1 - edits / columns), 4) if columns else None,
    )


def depth_from_blocks(starts: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """Depth at each of ``length`` positions covered by half-open ``[start, end)`` blocks.

    >>> depth_from_blocks(np.array([0, 2, 3]), np.array([3, 5, 4]), 6).tolist()
    [1, 1, 2, 2, 1, 0]
    """
    size = length + 1
    changes = np.bincount(starts, minlength=size)[:size] - np.bincount(ends, minlength=size)[:size]
    return np.cumsum(changes[:length]).astype(np.int64)
