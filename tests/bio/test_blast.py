"""BLAST: the NCBI URL-API pieces on real recorded replies, and a real local blastn whose
result has the same shape as NCBI's."""

from __future__ import annotations

import doctest
import json
import shutil
import threading
import zipfile
from pathlib import Path

import pytest
from Bio.SeqIO.FastaIO import SimpleFastaParser

from ringspot.bio import blast, runner
from ringspot.bio.blast import (
    blastn_local,
    check_params,
    format_blast_content,
    is_ready,
    make_blast_db,
    next_interval,
    parse_put_reply,
    put_params,
    read_result_zip,
    result_params,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
BLAST = DATA / "blast"
RID = "YA6M9135015"  # the request id the recorded result zip was fetched for

HIT_KEYS = {
    "accession",
    "taxid",
    "title",
    "name",
    "len",
    "identity",
    "evalue",
    "align_len",
    "score",
    "bit_score",
    "gaps",
}
RESULT_KEYS = {"program", "params", "version", "target", "stat", "masking", "hits"}


def raw_result() -> dict:
    with zipfile.ZipFile(BLAST / "blast.zip") as archive:
        return json.loads(archive.read(f"{RID}_1.json"))


# submitting


def test_put_params_ask_for_a_megablast_of_nr_with_five_hits_in_json2():
    params, body = put_params("ACGTACGT")
    assert params == {
        "CMD": "Put",
        "DATABASE": "nr",
        "PROGRAM": "blastn",
        "MEGABLAST": "on",
        "HITLIST_SIZE": "5",
        "FILTER": "mL",
        "FORMAT_TYPE": "JSON2",
    }
    assert body == {"QUERY": "ACGTACGT"}


@pytest.mark.parametrize("sequence", ["", "ACGT\nACGT", "MKVLA*", "ACGT ACGT"])
def test_put_params_refuse_what_is_not_a_nucleotide_sequence(sequence):
    with pytest.raises(ValueError, match="nucleotide"):
        put_params(sequence)


def test_check_and_result_params_name_the_rid():
    assert check_params(RID) == {"CMD": "Get", "RID": RID, "FORMAT_OBJECT": "SearchInfo"}
    assert result_params(RID) == {"CMD": "Get", "RID": RID, "FORMAT_TYPE": "JSON2", "FORMAT_OBJECT": "Alignment"}


def test_put_reply_gives_rid_and_rtoe():
    assert parse_put_reply((BLAST / "initialize_blast.html").read_text()) == ("YA40WNN5014", 19)


def test_put_reply_without_qblastinfo_is_an_error():
    with pytest.raises(ValueError, match="no QBlastInfo block"):
        parse_put_reply((BLAST / "check_rid.html").read_text().replace("QBlastInfo", "Info"))


def test_put_reply_with_qblastinfo_but_no_rid_is_an_error():
    with pytest.raises(ValueError, match="without RID"):
        parse_put_reply((BLAST / "check_rid.html").read_text())


# polling


def test_status_page_ready():
    assert is_ready((BLAST / "check_rid.html").read_text()) is True


def test_status_page_waiting():
    page = (BLAST / "check_rid.html").read_text().replace("Status=READY", "Status=WAITING")
    assert is_ready(page) is False


@pytest.mark.parametrize("status", ["FAILED", "UNKNOWN"])
def test_status_page_failed_or_unknown_is_an_error(status):
    page = (BLAST / "check_rid.html").read_text().replace("Status=READY", f"Status={status}")
    with pytest.raises(ValueError, match=status):
        is_ready(page)


def test_poll_interval_starts_at_3_grows_by_5_and_stops_at_75():
    intervals = [next_interval()]
    while len(intervals) < 20:
        intervals.append(next_interval(intervals[-1]))
    assert intervals[:4] == [3, 8, 13, 18]
    assert max(intervals) == intervals[-1] == 75


# the result


def test_result_zip_yields_the_report_json():
    assert read_result_zip((BLAST / "blast.zip").read_bytes(), RID) == raw_result()


@pytest.mark.parametrize("data", [b"<html>Error</html>", b""])
def test_result_that_is_not_a_zip_is_unable_to_be_interpreted(data):
    with pytest.raises(ValueError, match="Unable to interpret NCBI result"):
        read_result_zip(data, RID)


def test_result_zip_for_another_rid_is_unable_to_be_interpreted():
    with pytest.raises(ValueError, match="Unable to interpret NCBI result"):
        read_result_zip((BLAST / "blast.zip").read_bytes(), "OTHERRID")


def test_formatted_result_keeps_first_description_and_first_hsp_of_every_hit():
    raw = raw_result()
    raw_hits = raw["BlastOutput2"]["report"]["results"]["search"]["hits"]
    formatted = format_blast_content(raw)
    assert set(formatted) == RESULT_KEYS
    assert len(formatted["hits"]) == len(raw_hits) == 34
    first = formatted["hits"][0]
    assert (first["accession"], first["evalue"]) == (
        raw_hits[0]["description"][0]["accession"],
        raw_hits[0]["hsps"][0]["evalue"],
    )
    assert (first["accession"], first["evalue"], first["name"]) == ("JN427014", 0, "Actinidia virus A")
    for hit, raw_hit in zip(formatted["hits"], raw_hits, strict=False):
        assert set(hit) == HIT_KEYS
        assert hit["len"] == raw_hit["len"]
        assert hit["bit_score"] == raw_hit["hsps"][0]["bit_score"]
        assert hit["taxid"] == raw_hit["description"][0]["taxid"]


def test_formatted_result_carries_the_report_header():
    raw = raw_result()
    report = raw["BlastOutput2"]["report"]
    formatted = format_blast_content(raw)
    assert formatted["program"] == "blastn"
    assert formatted["version"] == report["version"]
    assert formatted["target"] == {"db": "nr"}
    assert formatted["params"] == report["params"]
    assert formatted["stat"] == report["results"]["search"]["stat"]
    assert formatted["masking"] is None  # this report has no query_masking


def test_unformatted_blast_json_formats_too():
    raw = json.loads((BLAST / "unformatted_blast.json").read_text())
    formatted = format_blast_content(raw)
    assert len(formatted["hits"]) == len(raw["BlastOutput2"]["report"]["results"]["search"]["hits"])


def test_missing_sciname_is_no_name_and_missing_description_fields_are_empty():
    raw = raw_result()
    hit = raw["BlastOutput2"]["report"]["results"]["search"]["hits"][0]
    hit["description"][0] = {"title": "only a title"}
    formatted = format_blast_content(raw)["hits"][0]
    assert (formatted["name"], formatted["accession"], formatted["taxid"]) == ("No name", "", "")


@pytest.mark.parametrize(
    "content, message",
    [
        ({"BlastOutput2": {}, "extra": 1}, "expected one BlastOutput2"),
        ({"BlastOutput2": [{"report": {}}, {"report": {}}]}, "expected one BLAST report"),
        ({"BlastOutput2": {"report": {"program": "blastn"}}}, "BLAST report lacks"),
    ],
)
def test_unexpected_result_shapes_are_errors(content, message):
    with pytest.raises(ValueError, match=message):
        format_blast_content(content)


def test_doctests_pass():
    assert doctest.testmod(blast).failed == 0


# local BLAST+


needs_blast = pytest.mark.skipif(shutil.which("blastn") is None, reason="BLAST+ is not installed")


@pytest.fixture(scope="module")
def contigs() -> list[tuple[str, str]]:
    with open(DATA / "nuvs" / "scaffolds_paired.fa") as handle:
        return list(SimpleFastaParser(handle))[:5]


@pytest.fixture(scope="module")
def local_db(contigs, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("blastdb")
    fasta = folder / "contigs.fa"
    fasta.write_text("".join(f">{title}\n{seq}\n" for title, seq in contigs))
    make_blast_db(fasta, folder / "contigs")
    return folder / "contigs"


@needs_blast
def test_local_blastn_finds_a_contig_itself_at_100_percent_identity(contigs, local_db):
    title, seq = contigs[2]
    result = blastn_local(seq, local_db)
    best = result["hits"][0]
    assert best["accession"] == title.split()[0]
    assert best["len"] == len(seq)
    assert best["identity"] == best["align_len"] == len(seq)
    assert best["gaps"] == 0
    assert result["program"] == "blastn"


@needs_blast
def test_local_result_has_the_shape_of_an_ncbi_result(contigs, local_db):
    result = blastn_local(contigs[0][1], local_db)
    assert set(result) == RESULT_KEYS
    assert result["hits"] and all(set(hit) == HIT_KEYS for hit in result["hits"])
    json.dumps(result)  # stored as is in the database


@needs_blast
def test_local_blastn_with_no_hit_returns_an_empty_list(local_db):
    assert blastn_local("ACGT" * 5, local_db)["hits"] == []


@needs_blast
def test_local_blastn_against_a_missing_database_raises_tool_error(tmp_path):
    with pytest.raises(runner.ToolError, match="blastn exited"):
        blastn_local("ACGTACGTACGT", tmp_path / "nothing")


@needs_blast
def test_local_blastn_is_killed_on_cancel(contigs, local_db):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(runner.ToolCancelled):
        blastn_local(contigs[0][1], local_db, cancel=cancel)
