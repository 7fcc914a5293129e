"""PUT /api/analyses/:id/:sequence_index/blast (seed "BLAST Contig"): every row of the error
table, who may and who may not, the record it answers with, and replacing an earlier search."""

from __future__ import annotations

import pytest

from ringspot.core import processes
from ringspot.tasks import blast as blast_tasks  # noqa: F401  (binds actors to the stub broker first)

from ..analyses_data import GLRAV1_READS, insert_sample
from ..nuvs_data import insert_nuvs_analysis


@pytest.fixture
def world(db, settings, stub_broker, make_user, admin):
    """A sample of ``owner`` that ``reader`` may read but not write, with a finished NuVs analysis."""
    owner, reader = make_user("owner"), make_user("reader")
    sample = insert_sample(db, settings.data_path, GLRAV1_READS, user_id="owner")
    analysis = insert_nuvs_analysis(db, sample)
    return {"owner": owner, "reader": reader, "admin": admin, "sample": sample, "analysis": analysis}


def put(user, analysis_id: str, index, **kwargs):
    return user.put(f"/api/analyses/{analysis_id}/{index}/blast", json=kwargs.get("json", {}))


def error(response) -> tuple[int, str, str]:
    return response.status_code, response.json["id"], response.json["message"]


def test_starts_a_blast_and_answers_with_its_record(world, db, stub_broker):
    analysis_id = world["analysis"]["_id"]
    response = put(world["owner"], analysis_id, 5)
    assert response.status_code == 200, response.json
    record = response.json
    assert {k: record[k] for k in ("rid", "ready", "interval", "result", "error")} == {
        "rid": None,
        "ready": False,
        "interval": 3,
        "result": None,
        "error": None,
    }
    assert record["last_checked_at"].endswith("Z") and record["backend"] == "ncbi"
    process_id = record["process"]["id"]
    assert response.headers["Content-Location"] == f"/api/processes/{process_id}"

    process = world["owner"].get(f"/api/processes/{process_id}").json
    assert (process["type"], process["state"], process["step"]) == ("blast", "waiting", "submit")
    assert process["context"] == {"analysis_id": analysis_id, "sequence_index": 5, "backend": "ncbi"}
    assert stub_broker.queues["blast"].qsize() == 1

    stored = db.analyses.find_one({"_id": analysis_id})
    assert stored["results"]["hits"][5]["blast"]["process"] == {"id": process_id}
    others = [hit for i, hit in enumerate(stored["results"]["hits"]) if i != 5]
    assert all("blast" not in hit for hit in others)
    assert stored["results"]["hits"][5]["sequence"] == world["analysis"]["results"]["hits"][5]["sequence"]


def test_blasting_again_replaces_the_record_and_cancels_the_earlier_search(world, db):
    analysis_id = world["analysis"]["_id"]
    first = put(world["owner"], analysis_id, 0).json
    second = put(world["owner"], analysis_id, 0).json
    assert first["process"]["id"] != second["process"]["id"]
    stored = db.analyses.find_one({"_id": analysis_id})["results"]["hits"][0]["blast"]
    assert stored["process"]["id"] == second["process"]["id"]
    assert processes.get_process_or_404(db, first["process"]["id"])["state"] == "cancelled"
    assert processes.get_process_or_404(db, second["process"]["id"])["state"] == "waiting"


def test_sample_writers_other_than_the_owner_may_blast(world, db):
    db.samples.update_one({"_id": world["sample"]["_id"]}, {"$set": {"all_write": True}})
    assert put(world["reader"], world["analysis"]["_id"], 0).status_code == 200
    assert put(world["admin"], world["analysis"]["_id"], 0).status_code == 200


def test_returns_404_for_unknown_analysis(world):
    assert error(put(world["owner"], "nothere", 0)) == (404, "not_found", "Analysis not found")


def test_returns_400_when_parent_sample_is_gone(world, db):
    db.samples.delete_one({"_id": world["sample"]["_id"]})
    assert error(put(world["owner"], world["analysis"]["_id"], 0)) == (
        400,
        "bad_request",
        "Parent sample does not exist",
    )


def test_returns_403_without_write_right_on_sample(world, db):
    assert error(put(world["reader"], world["analysis"]["_id"], 0)) == (
        403,
        "insufficient_rights",
        "Insufficient rights",
    )
    assert "blast" not in db.analyses.find_one({"_id": world["analysis"]["_id"]})["results"]["hits"][0]


def test_returns_409_for_a_pathoscope_analysis(world, db):
    other = insert_nuvs_analysis(db, world["sample"], workflow="pathoscope_bowtie")
    assert error(put(world["owner"], other["_id"], 0)) == (409, "conflict", "Not a NuVs analysis")


def test_returns_409_while_the_analysis_runs(world, db):
    running = insert_nuvs_analysis(db, world["sample"], ready=False)
    assert error(put(world["owner"], running["_id"], 0)) == (409, "conflict", "Analysis is still running")


@pytest.mark.parametrize("index", [41, 1000, -1, "abc", "1.5"])
def test_returns_404_for_a_sequence_that_does_not_exist(world, index):
    assert len(world["analysis"]["results"]["hits"]) == 41
    assert error(put(world["owner"], world["analysis"]["_id"], index)) == (404, "not_found", "Sequence not found")


def test_last_contig_exists(world):
    assert put(world["owner"], world["analysis"]["_id"], 40).status_code == 200


def test_requires_sign_in(world, client):
    response = client.put(f"/api/analyses/{world['analysis']['_id']}/0/blast", json={})
    assert response.status_code == 401


def test_job_keys_may_not_blast(world, client, db):
    job, key = processes.create_process(
        db, "nuvs", user_id="owner", workflow=True, context={"analysis_id": world["analysis"]["_id"]}
    )
    response = client.put(f"/api/analyses/{world['analysis']['_id']}/0/blast", json={}, auth=(f"job-{job['_id']}", key))
    assert response.status_code == 403


def test_a_body_with_fields_is_422(world):
    response = put(world["owner"], world["analysis"]["_id"], 0, json={"database": "nt"})
    assert response.status_code == 422 and "database" in response.json["errors"]


def test_local_backend_is_recorded_when_configured(world, db, settings, app):
    app.extensions["ringspot.settings"] = settings.with_(blast_backend="local")
    record = put(world["owner"], world["analysis"]["_id"], 0).json
    assert record["backend"] == "local"
    process = processes.get_process_or_404(db, record["process"]["id"])
    assert process["step"] == "prepare_database"
    assert [step["name"] for step in process["steps"]] == ["prepare_database", "search"]
