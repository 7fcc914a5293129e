"""Indexes (seed 004): build requests, the Job API upload/finalize rules and their error tables."""

import pytest

from ringspot.core import indexes, processes
from tests.common import wait_finished
from tests.reference_helpers import EXAMPLE, import_ref


@pytest.fixture
def reference(admin, db, stub_worker):
    ref, process = import_ref(admin, db, EXAMPLE.read_bytes(), name="Example")
    assert process["state"] == "complete"
    return ref


@pytest.fixture
def build(admin, reference, stub_worker, db):
    """A requested build whose job has not run (the worker is paused; the broker holds the message)."""
    stub_worker.pause()
    response = admin.post(f"/api/refs/{reference['id']}/indexes")
    assert response.status_code == 201
    index = response.json
    job = db.processes.find_one({"_id": index["job"]["id"]})
    return index, job


def job_key(db, job_id):
    # The raw key only exists in the message; re-key the job so the test can act as it.
    import secrets

    from ringspot.core.auth import hash_token

    key = secrets.token_hex(32)
    db.processes.update_one({"_id": job_id}, {"$set": {"key": hash_token(key)}})
    return (f"job-{job_id}", key)


def test_build_returns_201_with_location_and_tags_history(admin, build, db, reference):
    index, job = build
    assert index["version"] == 0 and index["ready"] is False
    assert job["workflow"] == "build_index" and job["context"]["index_id"] == index["id"]
    assert db.history.count_documents({"reference.id": reference["id"], "index.id": index["id"]}) == 20
    assert admin.get(f"/api/refs/{reference['id']}").json["unbuilt_change_count"] == 0


def test_second_build_while_one_runs_is_409(admin, build, reference):
    response = admin.post(f"/api/refs/{reference['id']}/indexes")
    assert response.status_code == 409
    assert response.json["message"] == "Index build already in progress"


def test_build_without_unbuilt_changes_is_400(admin, db, reference, build):
    index, job = build
    db.indexes.update_one({"_id": index["id"]}, {"$set": {"ready": True}})
    response = admin.post(f"/api/refs/{reference['id']}/indexes")
    assert response.status_code == 400
    assert response.json["message"] == "There are no unbuilt changes"


def test_build_with_an_unverified_otu_is_400(admin, db, reference):
    db.otus.update_one({"reference.id": reference["id"]}, {"$set": {"verified": False}})
    response = admin.post(f"/api/refs/{reference['id']}/indexes")
    assert response.status_code == 400
    assert response.json["message"] == "There are unverified OTUs"


def test_build_without_the_build_right_is_403(make_user, reference):
    response = make_user("builder").post(f"/api/refs/{reference['id']}/indexes")
    assert response.status_code == 403
    assert response.json["message"] == "Insufficient rights"


def test_build_of_unknown_reference_is_404(admin):
    assert admin.post("/api/refs/nothere/indexes").status_code == 404


def test_upload_rules_of_the_job_api(client, db, build):
    index, job = build
    auth = job_key(db, job["_id"])
    url = f"/api/indexes/{index['id']}/files"
    bad = client.post(f"{url}?name=reference.5.bt2", data=b"x", auth=auth)
    assert bad.status_code == 400 and bad.json["message"] == "Unsupported index file name"
    missing = client.post(url, data=b"x", auth=auth)
    assert missing.status_code == 422 and missing.json["message"] == "Invalid query"
    first = client.post(f"{url}?name=reference.fa.gz", data=b"ACGT", auth=auth)
    assert first.status_code == 201
    assert first.json["name"] == "reference.fa.gz" and first.json["type"] == "fasta" and first.json["size"] == 4
    again = client.post(f"{url}?name=reference.fa.gz", data=b"ACGT", auth=auth)
    assert again.status_code == 409 and again.json["message"] == "File name already exists"
    assert client.post("/api/indexes/nothere/files?name=reference.fa.gz", data=b"x", auth=auth).status_code == 404


def test_job_key_of_another_job_is_403(client, db, build):
    index, _ = build
    other, key = processes.create_process(
        db, "build_index", user_id="admin", workflow=True, context={"index_id": "elsewhere"}
    )
    auth = (f"job-{other['_id']}", key)
    assert client.get(f"/api/indexes/{index['id']}", auth=auth).json["message"] == "Insufficient rights"
    assert (
        client.post(f"/api/indexes/{index['id']}/files?name=reference.fa.gz", data=b"x", auth=auth).status_code == 403
    )


def test_users_cannot_upload_index_files(admin, build):
    index, _ = build
    assert admin.post(f"/api/indexes/{index['id']}/files?name=reference.fa.gz", data=b"x").status_code == 403


def test_finalize_refuses_until_every_file_is_in(client, db, build):
    index, job = build
    auth = job_key(db, job["_id"])
    response = client.patch(f"/api/indexes/{index['id']}", auth=auth)
    assert response.status_code == 409
    assert "reference.1.bt2" in response.json["message"]


def test_failed_build_untags_history_and_leaves_no_index(client, db, build, admin, reference, settings):
    index, job = build
    auth = job_key(db, job["_id"])
    client.post(f"/api/jobs/{job['_id']}/status", auth=auth, json={"state": "error", "error": "bowtie2-build died"})
    assert admin.get(f"/api/indexes/{index['id']}").status_code == 404
    assert admin.get(f"/api/refs/{reference['id']}").json["unbuilt_change_count"] == 20
    assert admin.post(f"/api/refs/{reference['id']}/indexes").status_code == 201


def test_index_build_runs_end_to_end(admin, reference, db, stub_worker, live_server):
    index = admin.post(f"/api/refs/{reference['id']}/indexes").json
    job = wait_finished(db, index["job"]["id"], timeout=120)
    assert job["state"] == "complete", job["error"]
    full = admin.get(f"/api/indexes/{index['id']}").json
    assert full["ready"] is True and full["has_files"] is True
    assert full["change_count"] == 20 and full["modified_otu_count"] == 20
    assert {f["name"] for f in full["files"]} == set(indexes.REQUIRED_FILES)
    assert len(db.indexes.find_one({"_id": index["id"]})["sequence_otu_map"]) >= 20
    listed = admin.get(f"/api/refs/{reference['id']}/indexes").json
    assert listed["documents"][0]["id"] == index["id"]
    assert admin.get("/api/indexes?ready=true").json[0]["id"] == index["id"]
    assert admin.get(f"/api/refs/{reference['id']}").json["latest_build"]["id"] == index["id"]
    statuses = [s["state"] for s in db.processes.find_one({"_id": index["job"]["id"]})["status"]]
    assert statuses == ["waiting", "running", "complete"]
