"""``/api/processes`` and ``/api/jobs``: listing, filters, cancellation and the Job API life cycle."""

import pytest

from ringspot.core import jobs, processes
from ringspot.core.utils import ago

STEPS = [{"name": "one", "description": "First."}, {"name": "two", "description": "Second."}]


@pytest.fixture
def make_process(db):
    def make(type_="delete_reference", user="admin", **kwargs):
        doc, key = processes.create_process(db, type_, user_id=user, context={"ref_id": "r1"}, steps=STEPS, **kwargs)
        return doc, key

    return make


def test_process_document_has_the_design_fields(admin, make_process):
    doc, _ = make_process()
    body = admin.get(f"/api/processes/{doc['_id']}").json
    for field in (
        "id",
        "type",
        "step",
        "step_count",
        "progress",
        "complete",
        "error",
        "context",
        "created_at",
        "updated_at",
        "user",
        "state",
        "attempts",
        "heartbeat_at",
    ):
        assert field in body
    assert body["state"] == "waiting" and body["step"] == "one" and body["step_count"] == 2
    assert body["created_at"].endswith("Z")
    assert "key" not in body


def test_one_process_or_job_lists_its_steps_with_descriptions(admin, make_process):
    doc, _ = make_process()
    assert admin.get(f"/api/processes/{doc['_id']}").json["steps"] == STEPS
    job, _ = make_process("build_index", workflow=True)
    assert admin.get(f"/api/jobs/{job['_id']}").json["steps"] == STEPS


def test_a_started_operation_lists_the_steps_its_actor_runs(admin, stub_broker):
    ref = admin.post("/api/refs", json={"name": "Removed", "data_type": "genome"}).json
    removal = admin.delete(f"/api/refs/{ref['id']}")
    steps = admin.get(removal.headers["Content-Location"]).json["steps"]
    assert steps == [
        {"name": "delete_indexes", "description": "Delete the indexes no analysis uses, with their files."},
        {
            "name": "delete_otus",
            "description": "Delete the OTUs, sequences and history (OTUs analyses used stay rebuildable).",
        },
    ]


def test_list_filters_by_type_and_state_with_link_headers(admin, make_process, db):
    for _ in range(3):
        make_process("delete_reference")
    done, _ = make_process("clone_reference")
    db.processes.update_one({"_id": done["_id"]}, {"$set": {"state": "complete"}})
    response = admin.get("/api/processes?type=delete_reference&per_page=2")
    assert response.json["found_count"] == 3 and response.json["total_count"] == 4
    assert response.json["page_count"] == 2 and len(response.json["documents"]) == 2
    assert 'rel="next"' in response.headers["Link"]
    assert admin.get("/api/processes?state=complete").json["documents"][0]["id"] == done["_id"]


@pytest.mark.parametrize("query", ["state=sleeping", "page=0", "per_page=1000", "page=abc"])
def test_bad_list_queries_are_422(admin, query):
    response = admin.get(f"/api/processes?{query}")
    assert response.status_code == 422
    assert response.json["message"] == "Invalid query"


def test_cancel_waiting_process_is_immediate(admin, make_process):
    doc, _ = make_process()
    response = admin.delete(f"/api/processes/{doc['_id']}")
    assert response.status_code == 202
    assert response.headers["Content-Location"] == f"/api/processes/{doc['_id']}"
    assert response.json["state"] == "cancelled"
    assert admin.delete(f"/api/processes/{doc['_id']}").status_code == 409


def test_cancel_needs_ownership_or_cancel_job(make_process, make_user):
    doc, _ = make_process(user="someone")
    stranger = make_user("stranger")
    assert stranger.delete(f"/api/processes/{doc['_id']}").status_code == 403
    canceller = make_user("canceller", permissions=["cancel_job"])
    assert canceller.delete(f"/api/processes/{doc['_id']}").status_code == 202


def test_unknown_process_is_404(admin):
    assert admin.get("/api/processes/nothere").json == {"id": "not_found", "message": "Not found"}


def test_jobs_list_only_workflows(admin, make_process):
    make_process("delete_reference")
    job, _ = make_process("build_index", workflow=True)
    listed = admin.get("/api/jobs").json
    assert [d["id"] for d in listed["documents"]] == [job["_id"]]
    assert admin.get("/api/jobs?workflow=nuvs").json["found_count"] == 0
    full = admin.get(f"/api/jobs/{job['_id']}").json
    assert full["status"][0]["state"] == "waiting"


def test_job_key_is_stored_hashed(make_process, db):
    job, key = make_process("build_index", workflow=True)
    assert key not in str(db.processes.find_one({"_id": job["_id"]}))


def started_job(make_process, db) -> tuple[dict, tuple[str, str]]:
    """A waiting job and the credentials its message carries (a claim token)."""
    job, _ = make_process("build_index", workflow=True)
    return job, (f"job-{job['_id']}", jobs.issue_claim_token(db, job["_id"]))


def test_job_api_claim_ping_and_status(client, make_process, db):
    job, token = started_job(make_process, db)
    claimed = client.post(f"/api/jobs/{job['_id']}/claim", auth=token)
    assert claimed.json["state"] == "running"
    auth = (f"job-{job['_id']}", claimed.json["key"])
    again = client.post(f"/api/jobs/{job['_id']}/claim", auth=token)
    # Alive elsewhere: the worker is told when the run would be presumed dead (heartbeat timeout 5 s).
    assert again.status_code == 409 and again.json["message"] == "Running on another worker"
    assert 4 <= again.json["retry_after"] <= 5
    assert client.put(f"/api/jobs/{job['_id']}/ping", auth=auth).json == {"cancel_requested": False}
    report = client.post(
        f"/api/jobs/{job['_id']}/status", auth=auth, json={"state": "running", "step": "two", "progress": 0.5}
    )
    assert report.status_code == 201 and report.json["progress"] == 0.5
    assert (
        client.post(f"/api/jobs/{job['_id']}/status", auth=auth, json={"state": "error"}).json["message"]
        == "Missing error information"
    )
    client.post(f"/api/jobs/{job['_id']}/status", auth=auth, json={"state": "complete"})
    # The key ended with its job.
    assert client.post(f"/api/jobs/{job['_id']}/status", auth=auth, json={"state": "running"}).status_code == 401
    states = [s["state"] for s in db.processes.find_one({"_id": job["_id"]})["status"]]
    assert states == ["waiting", "running", "complete"]


def test_a_job_whose_heartbeat_stopped_is_claimed_again_with_a_new_key(client, make_process, db):
    job, token = started_job(make_process, db)
    first = client.post(f"/api/jobs/{job['_id']}/claim", auth=token).json["key"]
    db.processes.update_one({"_id": job["_id"]}, {"$set": {"heartbeat_at": ago(6)}})
    claimed = client.post(f"/api/jobs/{job['_id']}/claim", auth=token)
    assert claimed.status_code == 200 and claimed.json["attempts"] == 2
    # The crashed run's key no longer works; the new run's does.
    assert client.put(f"/api/jobs/{job['_id']}/ping", auth=(f"job-{job['_id']}", first)).status_code == 401
    new_key = (f"job-{job['_id']}", claimed.json["key"])
    assert client.put(f"/api/jobs/{job['_id']}/ping", auth=new_key).status_code == 200


def test_a_finished_job_is_not_claimed(client, make_process, db):
    job, token = started_job(make_process, db)
    key = client.post(f"/api/jobs/{job['_id']}/claim", auth=token).json["key"]
    client.post(f"/api/jobs/{job['_id']}/status", auth=(f"job-{job['_id']}", key), json={"state": "complete"})
    refused = client.post(f"/api/jobs/{job['_id']}/claim", auth=token)
    assert refused.status_code == 401 and refused.json["message"] == "Invalid job credentials"


def test_job_key_cannot_act_on_another_job(client, make_process):
    mine, key = make_process("build_index", workflow=True)
    other, _ = make_process("build_index", workflow=True)
    auth = (f"job-{mine['_id']}", key)
    assert client.put(f"/api/jobs/{other['_id']}/ping", auth=auth).status_code == 403
    assert client.get("/api/processes", auth=auth).status_code == 403
    assert client.put(f"/api/jobs/{mine['_id']}/ping", auth=(f"job-{mine['_id']}", "wrong")).status_code == 401


def test_users_cannot_call_job_only_endpoints(admin, make_process):
    job, _ = make_process("build_index", workflow=True)
    assert admin.put(f"/api/jobs/{job['_id']}/ping").status_code == 403


def test_remove_job_needs_permission_and_a_finished_job(make_process, make_user, db):
    job, _ = make_process("build_index", workflow=True)
    remover = make_user("remover", permissions=["remove_job"])
    assert make_user("nobody").delete(f"/api/jobs/{job['_id']}").status_code == 403
    assert remover.delete(f"/api/jobs/{job['_id']}").status_code == 409
    db.processes.update_one({"_id": job["_id"]}, {"$set": {"state": "error"}})
    assert remover.delete(f"/api/jobs/{job['_id']}").status_code == 204
