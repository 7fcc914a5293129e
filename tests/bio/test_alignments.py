"""Alignments kept as arrays between mapping and reassignment: same tuples back, the same
subtraction rule as ``pathoscope.eliminate_subtraction``, FASTQ records removed by read id."""

from __future__ import annotations

import doctest
import gzip
import io
import json

import pytest

from ringspot.bio import alignments
from ringspot.bio.alignments import AlignmentTable, mapped_refs, remove_reads
from ringspot.bio.pathoscope import eliminate_subtraction, read_sam, read_vta

from ..conftest import DATA

PATHOSCOPE = DATA / "pathoscope"


@pytest.fixture(scope="module")
def vta() -> list:
    with gzip.open(PATHOSCOPE / "test.vta.gz", "rt") as handle:
        return list(read_vta(handle))


def test_doctests_pass():
    assert doctest.testmod(alignments).failed == 0


def test_table_gives_the_alignments_back_in_arrival_order(vta):
    table = AlignmentTable.collect(iter(vta))
    assert len(table) == 30593 and len(table.reads) == 20276
    assert list(table) == vta
    assert table.nbytes == 30593 * 5 * 8


def test_table_applies_the_p_score_cutoff():
    table = AlignmentTable.collect([("r1", "a", 1, 4, 0.001), ("r2", "a", 1, 4, 0.01)])
    assert list(table) == [("r2", "a", 1, 4, 0.01)]


def test_chunks_are_invisible_and_drain_empties_the_table(vta):
    table = AlignmentTable.collect(iter(vta), chunk_rows=1000)
    assert len(table.chunks) == 31 and len(table) == 30593
    assert list(table) == vta and len(table) == 30593
    assert list(table.drain()) == vta
    assert len(table) == 0 and table.chunks == [] and list(table) == []


@pytest.mark.parametrize("chunk_rows", [1 << 16, 1000, 7])
def test_elimination_matches_the_per_alignment_rule(vta, chunk_rows):
    scores = json.loads((PATHOSCOPE / "to_subtraction.json").read_text())
    kept, subtracted = eliminate_subtraction(iter(vta), scores)
    kept = list(kept)
    table = AlignmentTable.collect(iter(vta), chunk_rows=chunk_rows)
    assert table.eliminate(scores) == subtracted
    assert len(subtracted) == 4  # the upstream test's figure
    assert list(table) == kept
    assert table.eliminate(scores) == set()  # nothing left to take


def test_ties_eliminate():
    table = AlignmentTable.collect([("r1", "a", 1, 4, 10.0), ("r1", "b", 1, 4, 10.5), ("r2", "a", 1, 4, 9.0)])
    assert table.eliminate({"r1": 10.0, "r2": 8.9}) == {"r1"}
    assert list(table) == [("r1", "b", 1, 4, 10.5), ("r2", "a", 1, 4, 9.0)]


def test_mapped_refs_of_real_sam_lines():
    with open(PATHOSCOPE / "sam_50.sam", "rb") as handle:
        lines = handle.readlines()
    assert mapped_refs(lines) == {ref for _, ref, *_ in read_sam(lines)}
    with open(PATHOSCOPE / "to_isolates_small.sam", "rb") as handle:  # with an @SQ header
        lines = handle.readlines()
    assert mapped_refs(lines) == {ref for _, ref, *_ in read_sam(lines)}


def test_mapped_refs_names_a_bad_line():
    with pytest.raises(ValueError, match="SAM line 2: FLAG"):
        mapped_refs([b"r1\t0\ta\t1\n", b"r2\tx\ta\t1\n"])


def test_remove_reads_from_real_fastq():
    raw = gzip.decompress((DATA / "samples" / "glrav1-grapevine-125reads.fq.gz").read_bytes())
    names = [line.split()[0][1:].decode() for line in raw.splitlines()[::4]]
    out = io.BytesIO()
    assert remove_reads(io.BytesIO(raw), out, set(names[:10]) | {"absent"}) == (115, 10)
    kept = out.getvalue().splitlines()
    assert [line.split()[0][1:].decode() for line in kept[::4]] == names[10:]
    assert kept == raw.splitlines()[40:]


def test_remove_reads_refuses_truncated_fastq():
    with pytest.raises(ValueError, match="FASTQ record 2"):
        remove_reads(io.BytesIO(b"@r1\nA\n+\nI\n@r2\nA\n"), io.BytesIO(), set())
