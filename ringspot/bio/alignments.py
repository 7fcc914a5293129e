"""Mapping parameters, Pathoscope's alignments between mapping and reassignment, and their FASTQ.

Mapping parameters follow the library type. Pathoscope maps shotgun reads as Virtool does
(``--local``, score at least 20 + 1 per base, spec 1.1). Small-RNA reads are whole molecules of
18-30 nt once their adapter is cut: they map end to end, so an exact 18-nt read aligns and a
read cannot reach a score by a 20-nt stretch of a longer one; one mismatch is allowed. The
alignment job scores as Pathoscope does, so the two count the same reads: bowtie2's default
local minimum (20 + 8 ln(length)) is out of reach of any read of 22 nt or less even when it
matches exactly, and lets a 26-nt stretch of a 50-nt read through (on the 50-bp example sample,
2.6 times the reads Pathoscope's scoring aligns, most of them adapter read-through).

``map_isolates`` streams bowtie2's SAM into an :class:`AlignmentTable`: NumPy columns and
two name lists, never the SAM text, so ``-k 100`` on millions of reads stays small. Each
subtraction then drops alignments from the table (per alignment, ties eliminate: spec 1.4)
and the reads it touched from the FASTQ; reassignment reads the table back as tuples.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Mapping
from typing import BinaryIO

import numpy as np

from .pathoscope import P_SCORE_CUTOFF, Alignment, AlignmentColumns
from .sam_blocks import first_seen, parse_blocks

#: bowtie2 flags of Pathoscope's passes for shotgun libraries (Virtool's, spec 1.1).
PATHOSCOPE_FLAGS = ("--local", "--score-min", "L,20,1.0", "-N", "0", "-L", "15")
#: bowtie2 flags for small-RNA reads: end to end, one high-quality mismatch (6) per 20 nt.
SMALL_RNA_FLAGS = ("--end-to-end", "--score-min", "L,-0.6,-0.3", "-N", "0", "-L", "15")
#: bowtie2 flags of the alignment job for other libraries: Pathoscope's.
ALIGNMENT_FLAGS = PATHOSCOPE_FLAGS


def pathoscope_flags(library_type: str) -> list[str]:
    """bowtie2 scoring flags of Pathoscope's mapping passes for a library type.

    >>> pathoscope_flags("srna")[:3], pathoscope_flags("normal")[:3]
    (['--end-to-end', '--score-min', 'L,-0.6,-0.3'], ['--local', '--score-min', 'L,20,1.0'])
    """
    return list(SMALL_RNA_FLAGS if library_type == "srna" else PATHOSCOPE_FLAGS)


def alignment_flags(library_type: str) -> list[str]:
    """bowtie2 scoring flags of the alignment job for a library type.

    >>> alignment_flags("normal")[:3], alignment_flags("srna")[0]
    (['--local', '--score-min', 'L,20,1.0'], '--end-to-end')
    """
    return list(SMALL_RNA_FLAGS if library_type == "srna" else ALIGNMENT_FLAGS)


#: Rows per chunk of an AlignmentTable (5 columns x 8 bytes: 2.6 MB a chunk).
CHUNK_ROWS = 1 << 16


def mapped_refs(sam_lines: Iterable[bytes | str]) -> set[str]:
    """Return the reference names that mapped lines of a SAM stream align to.

    Skips ``@``/``#`` lines, unmapped lines (flag 4) and RNAME ``*``. The p_score cut-off
    is not checked: a ``--local`` alignment scores ``AS >= 0`` and a read has at least one
    base, so p_score = AS + length is never below 0.01.

    >>> sorted(mapped_refs([b"@HD\\tVN:1.0\\n", b"r1\\t0\\tNC_2\\t5\\n", b"r2\\t4\\t*\\t0\\n",
    ...                     b"r3\\t16\\tNC_1\\t9\\n", b"r4\\t256\\tNC_2\\t1\\n"]))
    ['NC_1', 'NC_2']
    """
    refs: set[str] = set()
    add = refs.add
    for number, line in enumerate(sam_lines, 1):
        if isinstance(line, str):
            line = line.encode()
        if not line.strip() or line[:1] in (b"@", b"#"):
            continue
        fields = line.split(b"\t", 3)
        if len(fields) < 4:
            raise ValueError(f"SAM line {number}: expected tab-separated fields, found {len(fields)}; is this SAM?")
        try:
            flag = int(fields[1])
        except ValueError:
            raise ValueError(f"SAM line {number}: FLAG {fields[1]!r} is not an integer; is this SAM?") from None
        if not flag & 4 and fields[2] != b"*":
            add(fields[2].decode())
    return refs


class AlignmentTable:
    """Alignments in arrival order: read and reference indexes, position, SEQ length, p_score.

    Read names are a NumPy bytes array (a few million of them stay compact), references a list.
    Rows live in chunks of NumPy columns; :meth:`columns` hands the reassignment whole arrays,
    :meth:`drain` the rows as tuples while freeing them.
    """

    def __init__(self, reads: list[str] | np.ndarray, refs: list[str], chunks: list[tuple[np.ndarray, ...]]):
        self.read_names = reads if isinstance(reads, np.ndarray) else _bytes_array([r.encode() for r in reads])
        self.refs, self.chunks = refs, chunks

    @classmethod
    def collect(
        cls, alignments: Iterable[Alignment], p_score_cutoff: float = P_SCORE_CUTOFF, chunk_rows: int = CHUNK_ROWS
    ) -> AlignmentTable:
        """Pack ``(read_id, ref_id, pos, length, p_score)`` tuples (a SAM stream) in one pass.

        Reads and references are numbered by first appearance, alignments scoring below the
        cut-off are left out.

        >>> table = AlignmentTable.collect([("r1", "a", 1, 4, 10.0), ("r2", "b", 3, 4, 9.0),
        ...                                 ("r1", "b", 2, 4, 12.0)], chunk_rows=2)
        >>> len(table), table.reads, table.refs, len(table.chunks)
        (3, ['r1', 'r2'], ['a', 'b'], 2)
        """
        reads: dict[str, int] = {}
        refs: dict[str, int] = {}
        chunks: list[tuple[np.ndarray, ...]] = []
        columns = _empty_columns()
        read_col, ref_col, pos_col, len_col, score_col = columns
        for read_id, ref_id, pos, length, score in alignments:
            if score < p_score_cutoff:
                continue
            read_col.append(reads.setdefault(read_id, len(reads)))
            ref_col.append(refs.setdefault(ref_id, len(refs)))
            pos_col.append(pos)
            len_col.append(length)
            score_col.append(score)
            if len(score_col) == chunk_rows:
                chunks.append(_to_chunk(columns))
                columns = _empty_columns()
                read_col, ref_col, pos_col, len_col, score_col = columns
        if len(score_col):
            chunks.append(_to_chunk(columns))
        return cls(list(reads), list(refs), chunks)

    @classmethod
    def from_sam_blocks(cls, blocks: Iterable[bytes], p_score_cutoff: float = P_SCORE_CUTOFF) -> AlignmentTable:
        r"""Parse blocks of bowtie2 SAM lines (:mod:`.sam_blocks`) into a table, numbering as :meth:`collect` does.

        Each block's names are numbered within the block; once the stream ends, the names of
        all blocks are numbered by first appearance at once and the chunks renumbered.

        >>> line = "r{}\t0\t{}\t1\t255\t4M\t*\t0\t0\tACGT\tIIII\tAS:i:{}\n"
        >>> blocks = [line.format(1, "a", 6).encode(), (line.format(2, "b", 5) + line.format(1, "b", 8)).encode()]
        >>> table = AlignmentTable.from_sam_blocks(blocks)
        >>> table.reads, table.refs, list(table)
        (['r1', 'r2'], ['a', 'b'], [('r1', 'a', 1, 4, 10.0), ('r2', 'b', 1, 4, 9.0), ('r1', 'b', 1, 4, 12.0)])
        """
        read_parts: list[np.ndarray] = []
        ref_parts: list[np.ndarray] = []
        chunks: list[tuple[np.ndarray, ...]] = []
        read_offset = ref_offset = 0
        for block in parse_blocks(blocks, p_score_cutoff):
            if not len(block):
                continue
            block_reads, read_number = first_seen(block.qname)
            block_refs, ref_number = first_seen(block.rname)
            chunks.append((read_number + read_offset, ref_number + ref_offset, block.pos, block.length, block.score))
            read_parts.append(block_reads)
            ref_parts.append(block_refs)
            read_offset += len(block_reads)
            ref_offset += len(block_refs)
        reads, read_of_part = first_seen(_concatenate_names(read_parts))
        refs, ref_of_part = first_seen(_concatenate_names(ref_parts))
        chunks = [(read_of_part[r], ref_of_part[f], pos, length, score) for r, f, pos, length, score in chunks]
        return cls(reads, [name.decode() for name in refs.tolist()], chunks)

    @property
    def reads(self) -> list[str]:
        """Read names, numbered by first appearance."""
        return [name.decode() for name in self.read_names.tolist()]

    @property
    def read_count(self) -> int:
        return len(self.read_names)

    def __len__(self) -> int:
        return sum(len(chunk[0]) for chunk in self.chunks)

    def __iter__(self) -> Iterator[Alignment]:
        """The alignments again as tuples, in arrival order."""
        for chunk in list(self.chunks):
            yield from self._rows(chunk)

    def drain(self) -> Iterator[Alignment]:
        """Like iterating, but each chunk is let go once its rows are out; the table ends empty."""
        while self.chunks:
            yield from self._rows(self.chunks.pop(0))

    def _rows(self, chunk: tuple[np.ndarray, ...]) -> Iterator[Alignment]:
        reads, refs = self.read_names, self.refs
        for read, ref, pos, length, score in zip(*(column.tolist() for column in chunk), strict=False):
            yield reads[read].decode(), refs[ref], pos, length, score

    def columns(self) -> AlignmentColumns:
        """The alignments as whole arrays, reads and references renumbered by first appearance among them.

        What :func:`ringspot.bio.pathoscope.collect_alignments` makes of the same rows as tuples;
        the chunks are let go, the table ends empty.

        >>> table = AlignmentTable.collect([("r1", "a", 1, 4, 10.0), ("r2", "b", 3, 4, 9.0),
        ...                                 ("r1", "b", 2, 4, 12.0)])
        >>> sorted(table.eliminate({"r1": 10.0}))
        ['r1']
        >>> columns = table.columns()
        >>> columns.reads.tolist(), columns.refs, columns.read_index.tolist(), columns.ref_index.tolist()
        ([b'r2', b'r1'], ['b'], [0, 1], [0, 0])
        """
        chunks, self.chunks = self.chunks, []
        read, ref, pos, length, score = (
            np.concatenate([chunk[i] for chunk in chunks]) if chunks else np.zeros(0, dtype=dtype)
            for i, dtype in enumerate(_DTYPES)
        )
        kept_reads, read_index = first_seen(read)
        kept_refs, ref_index = first_seen(ref)
        return AlignmentColumns(
            reads=self.read_names[kept_reads],
            refs=[self.refs[i] for i in kept_refs.tolist()],
            read_index=read_index,
            ref_index=ref_index,
            pos=pos,
            length=length,
            score=score,
        )

    @property
    def nbytes(self) -> int:
        """Bytes held by the columns (names not counted)."""
        return sum(column.nbytes for chunk in self.chunks for column in chunk)

    def eliminate(self, subtraction_scores: Mapping[str, float]) -> set[str]:
        """Drop every alignment its read scores at least as well on the host; return those reads.

        Same rule as :func:`ringspot.bio.pathoscope.eliminate_subtraction`, on whole columns.

        >>> table = AlignmentTable.collect([("r1", "a", 1, 4, 10.0), ("r2", "b", 3, 4, 9.0),
        ...                                 ("r1", "b", 2, 4, 12.0)])
        >>> sorted(table.eliminate({"r1": 10.0, "r9": 50.0}))
        ['r1']
        >>> list(table)
        [('r2', 'b', 3, 4, 9.0), ('r1', 'b', 2, 4, 12.0)]
        """
        names = _bytes_array([name.encode() for name in subtraction_scores])
        scores = np.array(list(subtraction_scores.values()), dtype=np.float64)
        return {name.decode() for name in self.eliminate_arrays(names, scores).tolist()}

    def eliminate_arrays(self, host_names: np.ndarray, host_scores: np.ndarray) -> np.ndarray:
        """:meth:`eliminate` with the host's best scores as arrays of distinct names and scores; returns names."""
        host = np.full(self.read_count, -math.inf)
        if len(host_names) and self.read_count:
            by_name = np.argsort(self.read_names, kind="stable")
            sorted_names = self.read_names[by_name]
            at = np.minimum(np.searchsorted(sorted_names, host_names), len(sorted_names) - 1)
            found = sorted_names[at] == host_names
            host[by_name[at[found]]] = host_scores[found]
        subtracted: list[np.ndarray] = []
        kept_chunks = []
        for chunk in self.chunks:
            read, score = chunk[0], chunk[4]
            dropped = host[read] >= score
            if dropped.any():
                subtracted.append(read[dropped])
                chunk = tuple(column[~dropped] for column in chunk)
            if len(chunk[0]):
                kept_chunks.append(chunk)
        self.chunks = kept_chunks
        return self.read_names[np.unique(np.concatenate(subtracted))] if subtracted else self.read_names[:0]


#: dtypes of a chunk's columns: read, reference, position, length, p_score.
_DTYPES = (np.int64, np.int64, np.int64, np.int64, np.float64)


def _bytes_array(names: list[bytes]) -> np.ndarray:
    return np.array(names, dtype="S") if names else np.zeros(0, dtype="S1")


def _concatenate_names(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype="S1")


def _empty_columns() -> tuple[array, ...]:
    return array("q"), array("q"), array("q"), array("q"), array("d")


def _to_chunk(columns: tuple[array, ...]) -> tuple[np.ndarray, ...]:
    return tuple(
        np.frombuffer(column, dtype=np.float64 if column.typecode == "d" else np.int64).copy() for column in columns
    )


def remove_reads(source: BinaryIO, target: BinaryIO, read_ids: set[str]) -> tuple[int, int]:
    """Copy FASTQ records whose read id (header up to whitespace) is not in ``read_ids``.

    Returns ``(records kept, records removed)``. Ids compare like SAM QNAMEs, which end at
    the first whitespace of the FASTQ header.

    >>> import io
    >>> out = io.BytesIO()
    >>> remove_reads(io.BytesIO(b"@r1 x\\nAC\\n+\\nII\\n@r2\\nGT\\n+\\nII\\n"), out, {"r1"})
    (1, 1)
    >>> out.getvalue()
    b'@r2\\nGT\\n+\\nII\\n'
    """
    unwanted = {read_id.encode() for read_id in read_ids}
    kept = removed = 0
    lines = iter(source)
    for header in lines:
        record = [header, next(lines, b""), next(lines, b""), next(lines, b"")]
        if not header.startswith(b"@") or not record[3]:
            raise ValueError(f"FASTQ record {kept + removed + 1}: truncated or not FASTQ (header {header[:40]!r})")
        name = header[1:].split(None, 1)[0] if header[1:].strip() else b""
        if name in unwanted:
            removed += 1
        else:
            target.writelines(record)
            kept += 1
    return kept, removed
