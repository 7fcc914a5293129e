"""``ringspot pathoscope``: offline reassignment from VTA or SAM files."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ringspot.cli.pathoscope import pathoscope

DATA = Path("/work/shared/data/pathoscope")
COMMON = ["--ref-lengths", str(DATA / "ref_lengths.json"), "--index", str(DATA / "index_fixture.json")]


def invoke(*args):
    return CliRunner().invoke(pathoscope, [*args])


def test_vta_with_subtraction_writes_report_and_hits(tmp_path):
    out = tmp_path / "out"
    result = invoke(
        "--vta",
        str(DATA / "test.vta.gz"),
        *COMMON,
        "--out",
        str(out),
        "--subtraction-scores",
        str(DATA / "to_subtraction.json"),
    )
    assert result.exit_code == 0, result.output
    assert "20272 reads aligned, 4 subtracted" in result.output
    document = json.loads((out / "hits.json").read_text())
    assert document["subtracted_count"] == 4 and document["read_count"] == 20272
    assert document["hits"][0]["id"] == "NC_016509"
    assert document["hits"][0]["otu"] == {"id": "foobar", "version": 10}
    report = (out / "report.tsv").read_bytes()
    assert report.startswith(b"Total Number of Aligned Reads:\t20272\tTotal Number of Mapped Genomes:\t40\r\n")
    assert report.count(b"\r\n") == 2 + len(document["hits"])


def test_sam_input_plain_and_gzipped(tmp_path):
    compressed = tmp_path / "sam_50.sam.gz"
    with open(DATA / "sam_50.sam", "rb") as source, gzip.open(compressed, "wb") as target:
        shutil.copyfileobj(source, target)
    # The index fixture covers test.vta only; give every reference of sam_50.sam an OTU.
    refs = {line.split("\t")[2] for line in (DATA / "sam_50.sam").read_text().splitlines()}
    index = tmp_path / "index.json"
    index.write_text(json.dumps({"manifest": {"otu": 1}, "sequence_otu_map": dict.fromkeys(refs, "otu")}))
    outputs = []
    for path in (DATA / "sam_50.sam", compressed):
        out = tmp_path / f"out-{path.name}"
        result = invoke(
            "--sam",
            str(path),
            "--ref-lengths",
            str(DATA / "ref_lengths.json"),
            "--index",
            str(index),
            "--out",
            str(out),
        )
        assert result.exit_code == 0, result.output
        outputs.append((out / "report.tsv").read_bytes())
    assert outputs[0] == outputs[1]
    # 50 mapped lines from 41 distinct reads (counted independently of the parser).
    reads = {line.split("\t")[0] for line in (DATA / "sam_50.sam").read_text().splitlines()}
    assert outputs[0].startswith(f"Total Number of Aligned Reads:\t{len(reads)}\t".encode())


def test_requires_exactly_one_alignment_file(tmp_path):
    neither = invoke(*COMMON, "--out", str(tmp_path))
    both = invoke(
        "--vta", str(DATA / "test.vta.gz"), "--sam", str(DATA / "sam_50.sam"), *COMMON, "--out", str(tmp_path)
    )
    for result in (neither, both):
        assert result.exit_code == 2
        assert "exactly one of --vta or --sam" in result.output


def test_missing_file_is_a_usage_error(tmp_path):
    result = invoke("--vta", str(tmp_path / "nope.vta"), *COMMON, "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "does not exist" in result.output


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not a JSON file"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"NC_016509": "long"}', "expected sequence id -> integer length"),
    ],
)
def test_bad_ref_lengths_are_reported_without_traceback(tmp_path, content, message):
    bad = tmp_path / "lengths.json"
    bad.write_text(content)
    result = invoke(
        "--vta",
        str(DATA / "test.vta.gz"),
        "--ref-lengths",
        str(bad),
        "--index",
        str(DATA / "index_fixture.json"),
        "--out",
        str(tmp_path / "out"),
    )
    assert result.exit_code == 2
    assert message in result.output
    assert isinstance(result.exception, SystemExit)  # a click error, not a traceback


def test_index_without_manifest_is_rejected(tmp_path):
    index = tmp_path / "index.json"
    index.write_text('{"sequence_otu_map": {}}')
    result = invoke(
        "--vta",
        str(DATA / "test.vta.gz"),
        "--ref-lengths",
        str(DATA / "ref_lengths.json"),
        "--index",
        str(index),
        "--out",
        str(tmp_path / "out"),
    )
    assert result.exit_code == 2
    assert "needs objects 'manifest'" in result.output


def test_bad_alignment_line_names_file_and_line(tmp_path):
    vta = tmp_path / "bad.vta"
    vta.write_text("r1,NC_016509,1,101,250.0\nr2,NC_016509,1\n")
    result = invoke("--vta", str(vta), *COMMON, "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert f"Error: {vta}: VTA line 2: expected 5 comma-separated fields" in result.output
    assert isinstance(result.exception, SystemExit)


def test_sam_given_as_vta_is_explained(tmp_path):
    result = invoke("--vta", str(DATA / "sam_50.sam"), *COMMON, "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "VTA line 1" in result.output and "is this a VTA file?" in result.output


def test_reference_missing_from_lengths_is_reported(tmp_path):
    lengths = tmp_path / "lengths.json"
    lengths.write_text('{"NC_016509": 20000}')
    result = invoke(
        "--vta",
        str(DATA / "test.vta.gz"),
        "--ref-lengths",
        str(lengths),
        "--index",
        str(DATA / "index_fixture.json"),
        "--out",
        str(tmp_path / "out"),
    )
    assert result.exit_code == 1
    assert "no length for reference" in result.output


def test_corrupt_gzip_is_reported(tmp_path):
    broken = tmp_path / "broken.vta.gz"
    broken.write_bytes(gzip.compress(b"r1,NC_016509,1,101,250.0\n" * 1000)[:60])
    result = invoke("--vta", str(broken), *COMMON, "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
