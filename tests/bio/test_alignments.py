"""Alignments kept as arrays between mapping and reassignment: same tuples back, the same
subtraction rule as ``pathoscope.eliminate_subtraction``, FASTQ records removed by read id."""

from __future__ import annotations

import doctest
import gzip
import io
import json
import subprocess

import pytest

from ringspot.bio import alignments
from ringspot.bio.alignments import AlignmentTable, alignment_flags, mapped_refs, remove_reads
from ringspot.bio.pathoscope import eliminate_subtraction, read_sam, read_vta
from ringspot.bio.trim import KIT_ADAPTERS, trim_small_rna

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


# mapping parameters


@pytest.fixture(scope="module")
def ctv_genome(tmp_path_factory):
    """Citrus tristeza virus's default isolate (one 19-kb sequence) and its Bowtie2 index."""
    folder = tmp_path_factory.mktemp("ctv")
    with gzip.open(DATA / "reference" / "ref-plant-viruses-v1.5.0.reference.json.gz", "rt") as handle:
        otus = json.load(handle)["otus"]
    otu = next(o for o in otus if o["name"] == "Citrus tristeza virus")
    sequence = next(i for i in otu["isolates"] if i["default"])["sequences"][0]["sequence"]
    (folder / "ctv.fa").write_text(f">ctv\n{sequence}\n")
    subprocess.run(["bowtie2-build", "-q", folder / "ctv.fa", folder / "ctv"], check=True)
    return sequence, folder / "ctv"


def aligned_names(index, reads, flags) -> list[str]:
    argv = ["bowtie2", *flags, "--no-unal", "--no-hd", "-x", index, "-U", reads]
    sam = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return [line.split("\t")[0] for line in sam.splitlines()]


@pytest.fixture(scope="module")
def exact_reads(ctv_genome, tmp_path_factory):
    """Ten exact stretches of the genome for every length from 18 to 30 nt."""
    sequence, _ = ctv_genome
    path = tmp_path_factory.mktemp("exact") / "exact.fq"
    with open(path, "w") as handle:
        for length in range(18, 31):
            for start in range(1000, 19000, 1800):
                handle.write(f"@{length}_{start}\n{sequence[start : start + length]}\n+\n{'I' * length}\n")
    return path


def test_exact_small_rna_reads_align_for_pathoscope_and_alignments(ctv_genome, exact_reads):
    index = ctv_genome[1]
    for flags in (alignments.pathoscope_flags("srna"), alignments.alignment_flags("srna")):
        assert len(aligned_names(index, exact_reads, flags)) == 13 * 10


def test_an_exact_21_nt_read_aligns_in_alignments_whatever_the_library(ctv_genome, exact_reads):
    index = ctv_genome[1]
    for library_type in ("normal", "srna", "amplicon"):
        names = aligned_names(index, exact_reads, alignment_flags(library_type))
        assert {name for name in names if name.startswith("21_")} == {f"21_{s}" for s in range(1000, 19000, 1800)}
    # bowtie2's own --local scoring cannot align them: what the alignment job used to run.
    assert not [name for name in aligned_names(index, exact_reads, ["--local"]) if int(name.split("_")[0]) <= 21]


def test_trimmed_citrus_reads_align_whole_with_at_most_one_mismatch(ctv_genome, tmp_path):
    lane = tmp_path / "lane.fq"
    with gzip.open(DATA / "samples" / "ctv-srna-qiaseq-lane1" / "reads.fastq.gz", "rt") as source:
        lane.write_text("".join(source.readline() for _ in range(4 * 40_000)))
    trim_small_rna(lane, tmp_path / "trimmed.fq", adapter=KIT_ADAPTERS["QIAseq miRNA"])
    flags = alignments.pathoscope_flags("srna")
    sam = subprocess.run(
        ["bowtie2", *flags, "--no-unal", "--no-hd", "-x", ctv_genome[1], "-U", tmp_path / "trimmed.fq"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert len(sam) > 50  # the lane's CTV siRNAs
    for line in sam:
        fields = line.split("\t")
        assert fields[5] == f"{len(fields[9])}M"  # end to end: no clipped bases
        assert int(next(f for f in fields[11:] if f.startswith("XM:i:"))[5:]) <= 1
