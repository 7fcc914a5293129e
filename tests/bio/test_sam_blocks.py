"""bowtie2's SAM parsed a block at a time with NumPy gives what the line parser gives, to the bit."""

from __future__ import annotations

import doctest
import gzip
import json
import subprocess

import numpy as np
import pytest

from ringspot.bio import sam_blocks
from ringspot.bio.alignments import PATHOSCOPE_FLAGS, AlignmentTable, mapped_refs
from ringspot.bio.pathoscope import read_sam, read_subtraction_scores, read_vta, run_pathoscope
from ringspot.bio.runner import ToolError, stream_chunks
from ringspot.bio.sam_blocks import best_scores, line_blocks, mapped_ref_names, parse_blocks

from ..conftest import DATA

PATHOSCOPE = DATA / "pathoscope"


def pieces(data: bytes, size: int) -> list[bytes]:
    """``data`` cut every ``size`` bytes, as a pipe may hand it over."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def parsed(data: bytes, block_bytes: int) -> list[tuple]:
    rows = []
    for columns in parse_blocks(line_blocks(pieces(data, 4093), block_bytes)):
        names = [q.decode() for q in columns.qname.tolist()], [r.decode() for r in columns.rname.tolist()]
        rows += zip(*names, columns.pos.tolist(), columns.length.tolist(), columns.score.tolist(), strict=True)
    return rows


def as_sam(alignments) -> bytes:
    """VTA rows as bowtie2 writes them: a SEQ of the row's length, AS:i first among the tags."""
    lines = []
    for read, ref, pos, length, score in alignments:
        assert score == int(score)
        fields = [read, "0", ref, str(pos), "255", f"{length}M", "*", "0", "0", "A" * length, "I" * length]
        lines.append("\t".join([*fields, f"AS:i:{int(score) - length}", "XN:i:0", "YT:Z:UU"]))
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def rprsv_sam(tmp_path_factory) -> bytes:
    """bowtie2 (-k 100, Pathoscope's scoring) of 4,000 real RpRSV mates against every RpRSV isolate."""
    folder = tmp_path_factory.mktemp("rprsv")
    with gzip.open(DATA / "reference" / "ref-plant-viruses-v1.5.0.reference.json.gz", "rt") as handle:
        otus = json.load(handle)["otus"]
    otu = next(o for o in otus if o["name"] == "Raspberry ringspot virus")
    with open(folder / "isolates.fa", "w") as handle:
        for isolate in otu["isolates"]:
            for sequence in isolate["sequences"]:
                handle.write(f">{sequence['_id']}\n{sequence['sequence']}\n")
    subprocess.run(["bowtie2-build", "-q", folder / "isolates.fa", folder / "isolates"], check=True)
    with gzip.open(DATA / "samples" / "rprsv-paired-nextseq" / "paired_1.fq.gz", "rb") as handle:
        (folder / "reads.fq").write_bytes(b"".join(handle.readline() for _ in range(16_000)))
    argv = ["bowtie2", "-p", "2", *PATHOSCOPE_FLAGS, "-k", "100", "--no-unal", "--no-hd", "--no-sq"]
    return subprocess.run(
        [*argv, "-x", folder / "isolates", "-U", folder / "reads.fq"], check=True, capture_output=True
    ).stdout


def test_doctests_pass():
    assert doctest.testmod(sam_blocks).failed == 0


@pytest.mark.parametrize("block_bytes", [1, 10_000, 1 << 22])
def test_real_bowtie2_sam_parses_as_the_line_parser_reads_it(rprsv_sam, block_bytes):
    expected = list(read_sam(rprsv_sam.splitlines(keepends=True)))
    assert len(expected) > 4_000  # -k 100 on several isolates: reads align more than once
    assert parsed(rprsv_sam, block_bytes) == expected


def test_real_bowtie2_sam_takes_the_numpy_path(rprsv_sam):
    # Parsed in place, not line by line: the whole output has bowtie2's shape.
    assert sam_blocks._parse_bowtie2_lines(*sam_blocks._padded(rprsv_sam), 0.01) is not None


def test_pathoscope_on_real_sam_is_the_same_from_columns_and_from_tuples(rprsv_sam, tmp_path):
    tuples = list(read_sam(rprsv_sam.splitlines(keepends=True)))
    table = AlignmentTable.from_sam_blocks(line_blocks(pieces(rprsv_sam, 65536), 100_000))
    assert list(table) == list(AlignmentTable.collect(tuples))
    lengths = {ref: 10_000 for _, ref, *_ in tuples}
    mapping, manifest = dict.fromkeys(lengths, "rprsv"), {"rprsv": 1}
    from_tuples = run_pathoscope(tuples, lengths, mapping, manifest, tmp_path / "tuples")
    from_columns = run_pathoscope(table.columns(), lengths, mapping, manifest, tmp_path / "columns")
    assert from_columns == from_tuples and from_tuples["read_count"] > 1000
    assert (tmp_path / "columns" / "report.tsv").read_bytes() == (tmp_path / "tuples" / "report.tsv").read_bytes()


def test_test_vta_as_sam_gives_virtools_run_with_subtraction(tmp_path):
    with gzip.open(PATHOSCOPE / "test.vta.gz", "rt") as handle:
        vta = list(read_vta(handle))
    scores = json.loads((PATHOSCOPE / "to_subtraction.json").read_text())
    lengths = json.loads((PATHOSCOPE / "ref_lengths.json").read_text())
    index = json.loads((PATHOSCOPE / "index_fixture.json").read_text())
    mapping, manifest = index["sequence_otu_map"], index["manifest"]
    expected = run_pathoscope(vta, lengths, mapping, manifest, tmp_path / "tuples", subtraction_scores=scores)

    table = AlignmentTable.from_sam_blocks(line_blocks([as_sam(vta)], 50_000))
    host = as_sam([(read, "host", 1, 1, score) for read, score in scores.items()])
    subtracted = table.eliminate_arrays(*best_scores([host], p_score_cutoff=-np.inf))
    got = run_pathoscope(table.columns(), lengths, mapping, manifest, tmp_path / "columns")
    got["subtracted_count"] = len(subtracted)
    assert got == expected and expected["subtracted_count"] == 4
    assert (tmp_path / "columns" / "report.tsv").read_bytes() == (tmp_path / "tuples" / "report.tsv").read_bytes()


def test_blocks_that_stray_from_bowtie2s_shape_go_line_by_line():
    with open(PATHOSCOPE / "to_isolates_small.sam", "rb") as handle:  # @SQ header and a comment
        data = handle.read()
    assert parsed(data, 1 << 22) == list(read_sam(data.splitlines(keepends=True)))
    odd = b"r1\t0\tNC_1\t+5\t0\t4M\t*\t0\t0\tACGT\tIIII\tXN:i:0\tAS:i:7\n"  # a signed POS, AS:i second
    assert parsed(odd, 1) == [("r1", "NC_1", 5, 4, 11.0)] == list(read_sam([odd]))


def test_names_are_numbered_by_first_appearance_whatever_their_hash():
    names = np.array([b"r2", b"r2", b"r1", b"r10", b"r2", b"", b"r1"])
    values, numbers = sam_blocks.first_seen(names)
    assert values.tolist() == [b"r2", b"r1", b"r10", b""] and numbers.tolist() == [0, 0, 1, 2, 0, 3, 1]
    assert len(set(sam_blocks._hash(np.array([b"a", b"a\x01", b"b" * 9, b"b" * 8]).astype("S9")).tolist())) == 4


def test_errors_name_the_line_across_blocks():
    good = b"r1\t0\tNC_1\t1\t0\t4M\t*\t0\t0\tACGT\tIIII\tAS:i:7\n"
    with pytest.raises(ValueError, match="SAM line 3: FLAG 'x'"):
        list(parse_blocks([good * 2, good.replace(b"\t0\t", b"\tx\t", 1)]))
    with pytest.raises(ValueError, match="SAM line 2: no AS:i tag"):
        list(parse_blocks([good + good.replace(b"AS:i:7", b"XS:i:7")]))


def test_mapped_refs_and_subtraction_scores_match_the_line_readers(rprsv_sam):
    lines = rprsv_sam.splitlines(keepends=True)
    assert mapped_ref_names(line_blocks(pieces(rprsv_sam, 1000), 50_000)) == mapped_refs(lines)
    names, scores = best_scores(line_blocks([rprsv_sam], 50_000))
    assert dict(zip([n.decode() for n in names.tolist()], scores.tolist(), strict=True)) == read_subtraction_scores(
        lines
    )


def test_a_tools_output_streams_whole_in_blocks_of_lines(rprsv_sam, tmp_path):
    (tmp_path / "out.sam").write_bytes(rprsv_sam)
    blocks = list(line_blocks(stream_chunks(["cat", tmp_path / "out.sam"], timeout=60), 1 << 20))
    assert b"".join(blocks) == rprsv_sam and len(blocks) > 1
    assert all(block.endswith(b"\n") for block in blocks)
    with pytest.raises(ToolError, match="cat exited with code 1"):
        list(stream_chunks(["cat", tmp_path / "absent.sam"]))
