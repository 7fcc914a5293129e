"""The blast actor through a real worker. NCBI: the real recorded replies served from a local HTTP
server (``RINGSPOT_BLAST_URL``), with the growing poll interval and every kind of broken reply;
local: real ``blastn`` against a database built from the references' sequences."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ringspot.bio import blast as bio_blast
from ringspot.tasks import blast as blast_tasks

from ..analyses_data import GLRAV1_READS, SMALL_REFERENCE, insert_otus, insert_reference, insert_sample, load_otus
from ..common import wait_finished
from ..ncbi_replay import RID, NcbiReplay
from ..nuvs_data import insert_nuvs_analysis


@pytest.fixture
def ncbi(monkeypatch):
    with NcbiReplay() as replay:
        monkeypatch.setenv("RINGSPOT_BLAST_URL", replay.url)
        yield replay.replies


@pytest.fixture
def pauses(monkeypatch):
    """Poll intervals the actor waited, without waiting them."""
    waited = []

    def pause(run, seconds):
        waited.append(seconds)
        run.check_cancelled()

    monkeypatch.setattr(blast_tasks, "_pause", pause)
    monkeypatch.setattr(blast_tasks, "_backoff", lambda attempt: None)
    return waited


@pytest.fixture
def world(db, settings, stub_broker, stub_worker, admin):
    sample = insert_sample(db, settings.data_path, GLRAV1_READS, user_id="admin")
    return {"sample": sample, "analysis": insert_nuvs_analysis(db, sample)}


def blast(user, db, analysis_id: str, index: int) -> tuple[dict, dict]:
    """PUT the search, wait for its process; (process, the record as the analysis shows it)."""
    response = user.put(f"/api/analyses/{analysis_id}/{index}/blast", json={})
    assert response.status_code == 200, response.json
    process = wait_finished(db, response.json["process"]["id"])
    return process, user.get(f"/api/analyses/{analysis_id}").json["results"]["hits"][index]["blast"]


def without_blast(analysis: dict, index: int) -> dict:
    hits = [dict(hit) for hit in analysis["results"]["hits"]]
    hits[index].pop("blast", None)
    return {**{k: v for k, v in analysis.items() if k not in ("results", "_rev")}, "results": {"hits": hits}}


# ---------------------------------------------------------------- NCBI


def test_ncbi_search_polls_with_growing_interval_and_keeps_the_formatted_result(admin, db, world, ncbi, pauses):
    ncbi.waiting = 2
    analysis = world["analysis"]
    process, record = blast(admin, db, analysis["_id"], 3)
    assert process["state"] == "complete", process["error"]
    assert (process["step"], process["progress"]) == ("fetch_result", 1)

    assert pauses == [3, 8, 13]
    assert (record["rid"], record["ready"], record["interval"], record["error"]) == (RID, True, 13, None)
    assert record["last_checked_at"].endswith("Z")
    expected = bio_blast.format_blast_content(bio_blast.read_result_zip(ncbi.result, RID))
    assert record["result"] == expected
    assert len(record["result"]["hits"]) == 34 and record["result"]["hits"][0]["accession"] == "JN427014"

    # What went over the wire: a megablast Put of contig 3, three checks, one fetch.
    method, params, form = ncbi.requests[0]
    assert (method, params) == ("POST", bio_blast.put_params("ACGT")[0])
    assert form == {"QUERY": analysis["results"]["hits"][3]["sequence"]}
    assert [(m, q) for m, q, _ in ncbi.requests[1:]] == [("GET", bio_blast.check_params(RID))] * 3 + [
        ("GET", bio_blast.result_params(RID))
    ]
    # The rest of the analysis is as it was.
    assert without_blast(db.analyses.find_one({"_id": analysis["_id"]}), 3) == without_blast(analysis, 3)


def test_record_shows_rid_and_interval_while_the_search_runs(admin, db, world, ncbi, monkeypatch):
    ncbi.waiting = 1
    checking, release = threading.Event(), threading.Event()

    def pause(run, seconds):
        if seconds > 3:  # the second wait: one check said WAITING
            checking.set()
            release.wait(30)

    monkeypatch.setattr(blast_tasks, "_pause", pause)
    analysis_id = world["analysis"]["_id"]
    process_id = admin.put(f"/api/analyses/{analysis_id}/0/blast", json={}).json["process"]["id"]
    assert checking.wait(30)
    running = admin.get(f"/api/analyses/{analysis_id}").json["results"]["hits"][0]["blast"]
    assert (running["rid"], running["ready"], running["interval"], running["result"]) == (RID, False, 8, None)
    assert admin.get(f"/api/processes/{process_id}").json["step"] == "wait_for_result"
    release.set()
    assert wait_finished(db, process_id)["state"] == "complete"


@pytest.mark.parametrize(
    "broken, step, message",
    [
        (
            {"put": b"<html><body>Error: no query</body></html>"},
            "submit",
            "NCBI reply has no QBlastInfo block: the search was not accepted",
        ),
        (
            {"put": b"<!--QBlastInfoBegin\n    RTOE = 19\nQBlastInfoEnd\n-->"},
            "submit",
            "NCBI reply has a QBlastInfo block without RID",
        ),
        (
            {"ready": b"<!--QBlastInfoBegin\n\tStatus=UNKNOWN\nQBlastInfoEnd\n-->"},
            "wait_for_result",
            "NCBI reports the search as UNKNOWN (expired or never submitted)",
        ),
        (
            {"ready": b"QBlastInfoBegin Status=FAILED QBlastInfoEnd"},
            "wait_for_result",
            "NCBI reports the search as FAILED",
        ),
        (
            {"result": b"<html>Error: RID expired</html>"},
            "fetch_result",
            f"Unable to interpret NCBI result ({RID}_1.json: File is not a zip file)",
        ),
        ({"status": 503}, "submit", "NCBI answered HTTP 503"),
    ],
)
def test_a_reply_outside_the_protocol_sets_the_error_and_leaves_the_analysis_alone(
    admin, db, world, ncbi, pauses, broken, step, message
):
    for key, value in broken.items():
        setattr(ncbi, key, value)
    analysis = world["analysis"]
    process, record = blast(admin, db, analysis["_id"], 1)
    assert (process["state"], process["step"], process["error"]) == ("error", step, message)
    assert process["attempts"] == 1  # a broken protocol is not retried
    assert record["error"] == message and record["ready"] is False and record["result"] is None
    assert without_blast(db.analyses.find_one({"_id": analysis["_id"]}), 1) == without_blast(analysis, 1)


def test_a_json_result_that_is_not_one_report_is_an_error(admin, db, world, ncbi, pauses):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{RID}_1.json", '{"BlastOutput2": [], "extra": 1}')
    ncbi.result = buffer.getvalue()
    process, record = blast(admin, db, world["analysis"]["_id"], 0)
    assert process["state"] == "error"
    assert record["error"] == "expected one BlastOutput2 result, found keys ['BlastOutput2', 'extra']"


def test_a_second_request_replaces_the_first_result(admin, db, world, ncbi, pauses):
    analysis_id = world["analysis"]["_id"]
    ncbi.put = b"<html>busy</html>"
    first, record = blast(admin, db, analysis_id, 2)
    assert first["state"] == "error" and record["error"]
    ncbi.put = NcbiReplay().replies.put
    second, record = blast(admin, db, analysis_id, 2)
    assert second["state"] == "complete"
    assert (record["process"]["id"], record["ready"], record["error"]) == (second["_id"], True, None)


# ---------------------------------------------------------------- local


@pytest.fixture
def local(monkeypatch, app, settings):
    monkeypatch.setenv("RINGSPOT_BLAST_BACKEND", "local")
    app.extensions["ringspot.settings"] = settings.with_(blast_backend="local")


def rprsv_and_small_reference(db) -> None:
    plant = [otu for otu in load_otus() if otu["name"] == "Raspberry ringspot virus"]
    assert len(plant) == 1
    insert_otus(db, insert_reference(db, "Plant viruses")["_id"], plant)
    insert_otus(db, insert_reference(db, "Small")["_id"], load_otus(SMALL_REFERENCE))


def test_local_search_finds_rprsv_for_the_rprsv_contigs(admin, db, settings, world, local):
    rprsv_and_small_reference(db)
    analysis = world["analysis"]
    longest = max(
        range(len(analysis["results"]["hits"])), key=lambda i: len(analysis["results"]["hits"][i]["sequence"])
    )
    process, record = blast(admin, db, analysis["_id"], longest)
    assert process["state"] == "complete", process["error"]
    assert process["step"] == "search" and record["backend"] == "local"
    assert record["ready"] is True and record["rid"] is None and record["error"] is None
    result = record["result"]
    assert result["program"] == "blastn" and 0 < len(result["hits"]) <= 5
    best = result["hits"][0]
    assert best["name"] == "Raspberry ringspot virus"
    assert best["accession"] in {
        "NC_005266",
        "AY310444",
        "AY310444.1",
        "MZ220963.1",
        "MW057710.1",
        "MN384981.1",
        "MZ220965.1",
        "MZ291909.1",
    }  # an RNA1 sequence of one of its isolates
    assert best["align_len"] > 5000 and best["evalue"] == 0
    # Built once: a second search uses the same cached database.
    databases = list((Path(settings.data_path) / "cache" / "blastdb").iterdir())
    assert len(databases) == 1
    process, record = blast(admin, db, analysis["_id"], 0)
    assert (
        process["state"] == "complete" and list((Path(settings.data_path) / "cache" / "blastdb").iterdir()) == databases
    )


def test_local_database_follows_reference_changes(admin, db, settings, world, local):
    rprsv_and_small_reference(db)
    assert blast(admin, db, world["analysis"]["_id"], 0)[0]["state"] == "complete"
    db.otus.update_one({"name": "Raspberry ringspot virus"}, {"$set": {"version": 1}})
    assert blast(admin, db, world["analysis"]["_id"], 0)[0]["state"] == "complete"
    names = sorted(p.name for p in (Path(settings.data_path) / "cache" / "blastdb").iterdir())
    assert len(names) == 2  # the old one is pruned only once unused for an hour


def test_local_search_without_references_is_an_error(admin, db, world, local):
    process, record = blast(admin, db, world["analysis"]["_id"], 0)
    assert process["state"] == "error"
    assert record["error"] == process["error"] == "There are no reference sequences to BLAST against"
