"""HMMER: pressing once, scanning real ORFs against real vFam profiles, reading the tblout
with best-domain score and bias in their own fields, and checking profiles and annotations."""

from __future__ import annotations

import doctest
import gzip
import io
import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from ringspot.bio import hmmer, runner
from ringspot.bio.hmmer import (
    attach_hits,
    hmmpress,
    hmmscan,
    is_pressed,
    parse_tblout,
    validate_annotations,
    validate_profiles,
)
from ringspot.bio.orfs import process_contigs, read_fasta, write_orfs_fasta

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
HMM7 = DATA / "hmm" / "hmm7"
HMM3 = DATA / "hmm" / "hmm3"
VFAM_ORFS = DATA / "nuvs" / "vfam_input_orfs.fa"

pytestmark = pytest.mark.skipif(shutil.which("hmmscan") is None, reason="HMMER is not installed")


def gunzip(source: Path, target: Path) -> Path:
    target.write_bytes(gzip.decompress(source.read_bytes()))
    return target


def raw_tblout_rows(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def profiles(tmp_path_factory) -> Path:
    path = gunzip(HMM7 / "profiles.hmm.gz", tmp_path_factory.mktemp("hmm7") / "profiles.hmm")
    hmmpress(path)
    return path


@pytest.fixture(scope="module")
def tblout(profiles, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scan") / "hmm.tsv"
    hmmscan(profiles, VFAM_ORFS, path, cpu=1)
    return path


# hmmpress


def test_hmmpress_presses_once_and_again_when_profiles_change(tmp_path):
    path = gunzip(HMM7 / "profiles.hmm.gz", tmp_path / "profiles.hmm")
    assert not is_pressed(path)
    assert hmmpress(path) is True
    assert is_pressed(path)
    assert hmmpress(path) is False
    later = os.stat(path.with_name("profiles.hmm.h3m")).st_mtime + 10
    os.utime(path, (later, later))
    assert not is_pressed(path)
    assert hmmpress(path) is True  # stale index files are overwritten, not refused


def test_hmmpress_refuses_gzipped_profiles(tmp_path):
    packed = tmp_path / "profiles.hmm.gz"
    shutil.copy(HMM7 / "profiles.hmm.gz", packed)
    with pytest.raises(ValueError, match="gzipped"):
        hmmpress(packed)


# hmmscan and the tblout


def test_hmmscan_finds_the_expected_clusters(tblout):
    hits = list(parse_tblout(tblout.open()))
    assert [(h["contig"], h["orf"], h["cluster"]) for h in hits] == [(0, 0, 9), (2, 0, 2)]


def test_best_domain_score_and_bias_are_in_their_own_fields(tblout):
    rows = {(row[0], row[2]): row for row in raw_tblout_rows(tblout)}
    hits = list(parse_tblout(tblout.open()))
    assert len(hits) == len(rows) == 2
    for hit in hits:
        row = rows[(f"vFam_{hit['cluster']}", f"sequence_{hit['contig']}.{hit['orf']}")]
        # HMMER's columns 5-10: full E, score, bias, then best-domain E, score, bias.
        assert hit["full_e"] == float(row[4])
        assert hit["full_score"] == float(row[5])
        assert hit["full_bias"] == float(row[6])
        assert hit["best_e"] == float(row[7])
        assert hit["best_score"] == float(row[8])
        assert hit["best_bias"] == float(row[9])
        assert hit["best_score"] > hit["best_bias"]  # so a swap could not go unnoticed


def test_evalue_cutoff_is_optional(tblout):
    assert len(list(parse_tblout(tblout.open()))) == 2
    kept = list(parse_tblout(tblout.open(), evalue_cutoff=1e-130))
    assert [h["cluster"] for h in kept] == [9]  # vFam_9 at 3.9e-135 stays, vFam_2 at 1.4e-123 goes


def test_hmmscan_of_a_whole_assembly_runs_with_two_threads(profiles, tmp_path):
    contigs = process_contigs(read_fasta((DATA / "nuvs" / "scaffolds_paired.fa").open()))
    orfs_fa = tmp_path / "orfs.fa"
    with orfs_fa.open("w") as handle:
        write_orfs_fasta(contigs, handle)
    hmmscan(profiles, orfs_fa, tmp_path / "hmm.tsv", cpu=2)
    hits = list(parse_tblout((tmp_path / "hmm.tsv").open()))
    assert len(hits) == len(raw_tblout_rows(tmp_path / "hmm.tsv"))
    known = {(c["index"], o["index"]) for c in contigs for o in c["orfs"]}
    assert {(h["contig"], h["orf"]) for h in hits} <= known


def test_hmmscan_is_killed_on_cancel(profiles, tmp_path):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(runner.ToolCancelled):
        hmmscan(profiles, VFAM_ORFS, tmp_path / "hmm.tsv", cancel=cancel)


def test_hmmscan_without_pressed_profiles_raises_tool_error(tmp_path):
    path = gunzip(HMM7 / "profiles.hmm.gz", tmp_path / "profiles.hmm")
    with pytest.raises(runner.ToolError):
        hmmscan(path, VFAM_ORFS, tmp_path / "hmm.tsv")


def test_parse_tblout_skips_other_targets():
    line = "Pfam_1  -  sequence_0.0  -  1e-5  30.0  0.1  2e-5  29.0  0.2" + " 1" * 8 + " some description\n"
    assert list(parse_tblout(io.StringIO(line))) == []


@pytest.mark.parametrize(
    "line, message",
    [
        ("vFam_9 - sequence_0.0 - 1e-5 30.0\n", "line 1: 6 columns"),
        ("vFam_9 - orf_0 - 1e-5 30 0.1 2e-5 29 0.2" + " 1" * 8 + "\n", "line 1: query 'orf_0'"),
        ("vFam_x - sequence_0.0 - 1e-5 30 0.1 2e-5 29 0.2" + " 1" * 8 + "\n", "line 1: cannot read"),
    ],
)
def test_parse_tblout_names_the_bad_line(line, message):
    with pytest.raises(ValueError, match=message):
        list(parse_tblout(io.StringIO(line)))


def test_attach_hits_keeps_contigs_without_hits(tblout):
    contigs = [{"index": i, "sequence": "", "orfs": [{"index": 0, "pro": "", "hits": []}]} for i in range(3)]
    annotation_ids = {9: "id9", 2: "id2"}
    attach_hits(contigs, parse_tblout(tblout.open()), annotation_ids)
    assert [len(c["orfs"][0]["hits"]) for c in contigs] == [1, 0, 1]
    hit = contigs[0]["orfs"][0]["hits"][0]
    assert hit["hit"] == "id9"
    assert set(hit) == {"hit", "full_e", "full_score", "full_bias", "best_e", "best_score", "best_bias"}


# profiles and annotations


def test_validate_profiles_reads_names_from_gzipped_and_plain_files(profiles):
    names = ["vFam_2", "vFam_3", "vFam_4", "vFam_5", "vFam_8", "vFam_9", "vFam_10"]
    assert validate_profiles(HMM7 / "profiles.hmm.gz") == names
    assert validate_profiles(profiles) == names
    assert validate_profiles(HMM3 / "profiles.hmm.gz") == ["vFam_10", "vFam_100", "vFam_1000"]


def corrupt(text: str, how: str) -> str:
    if how == "truncated":
        return text[: len(text) // 2]
    if how == "no_name":
        return text.replace("NAME  vFam_3\n", "", 1)
    if how == "no_end":
        return text.replace("//\nHMMER3", "HMMER3", 1)
    if how == "duplicate":
        return text.replace("NAME  vFam_3\n", "NAME  vFam_2\n", 1)
    if how == "not_hmm":
        return (DATA / "nuvs" / "has_orfs.fa").read_text()
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how, message",
    [
        ("truncated", r"does not end with '//'"),
        ("no_name", r"has no NAME"),
        ("no_end", r"new model before the one from line \d+ ended"),
        ("duplicate", r"second model named vFam_2"),
        ("not_hmm", r"line 1: expected a 'HMMER3/' header"),
    ],
)
def test_validate_profiles_rejects_a_corrupt_file(tmp_path, how, message):
    text = gzip.decompress((HMM7 / "profiles.hmm.gz").read_bytes()).decode()
    path = tmp_path / "profiles.hmm"
    path.write_text(corrupt(text, how))
    with pytest.raises(ValueError, match=message):
        validate_profiles(path)


@pytest.mark.parametrize("content", [b"", b"\x1f\x8b\x08garbage", b"\xff\xfe\x00binary"])
def test_validate_profiles_rejects_empty_damaged_and_binary_files(tmp_path, content):
    path = tmp_path / "profiles.hmm"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=str(path)):
        validate_profiles(path)


def load_annotations(folder: Path) -> list[dict]:
    return json.loads(gzip.decompress((folder / "annotations.json.gz").read_bytes()))


def test_annotations_match_their_own_profiles():
    validate_annotations(load_annotations(HMM7), validate_profiles(HMM7 / "profiles.hmm.gz"))
    validate_annotations(load_annotations(HMM3), validate_profiles(HMM3 / "profiles.hmm.gz"))


def test_annotations_of_other_profiles_are_rejected_naming_the_first_mismatch():
    with pytest.raises(ValueError, match="annotation for cluster 100 has no profile vFam_100"):
        validate_annotations(load_annotations(HMM3), validate_profiles(HMM7 / "profiles.hmm.gz"))


def test_a_profile_without_annotation_is_rejected():
    annotations = [a for a in load_annotations(HMM7) if a["cluster"] != 5]
    with pytest.raises(ValueError, match="profile vFam_5 has no annotation"):
        validate_annotations(annotations, validate_profiles(HMM7 / "profiles.hmm.gz"))


def test_doctests_pass():
    assert doctest.testmod(hmmer).failed == 0
