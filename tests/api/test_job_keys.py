"""Job keys open only what their job needs, only while it runs: the message carries a claim token
that claims and nothing else, the claim issues the key, and the key ends with its job or its time
limit. A job writes only objects of the kind its workflow makes."""

import pytest

from ringspot.core import jobs
from ringspot.core.utils import ago

from ..analyses_data import insert_index
from ..common import job_key, make_job
from ..reference_helpers import EXAMPLE, import_ref


def claimed(client, db, workflow="build_index", **context) -> tuple[str, tuple[str, str]]:
    job = make_job(db, client, workflow, **context)
    token = (f"job-{job.job_id}", jobs.issue_claim_token(db, job.job_id))
    response = client.post(f"/api/jobs/{job.job_id}/claim", auth=token)
    assert response.status_code == 200, response.json
    return job.job_id, (f"job-{job.job_id}", response.json["key"])


def test_the_queued_message_carries_a_claim_token_that_opens_nothing_but_the_claim(admin, client, db, stub_worker):
    ref, _ = import_ref(admin, db, EXAMPLE.read_bytes(), name="Example")
    stub_worker.pause()  # the build's message stays in the broker, as in Redis's append-only file
    index = admin.post(f"/api/refs/{ref['id']}/indexes").json
    job_id = index["job"]["id"]
    token = (f"job-{job_id}", job_key(stub_worker.broker, "indexes", job_id))
    assert client.get(f"/api/jobs/{job_id}", auth=token).status_code == 401
    assert client.get(f"/api/indexes/{index['id']}", auth=token).status_code == 401
    assert client.get(f"/api/indexes/{index['id']}/files/otus.json.gz", auth=token).status_code == 401
    claim = client.post(f"/api/jobs/{job_id}/claim", auth=token)
    assert claim.status_code == 200 and claim.json["key"] != token[1]
    assert claim.json["key"] not in str(db.processes.find_one({"_id": job_id}))
    assert client.get(f"/api/indexes/{index['id']}", auth=(f"job-{job_id}", claim.json["key"])).status_code == 200


@pytest.mark.parametrize("state", ["complete", "error", "cancelled"])
def test_a_key_stops_working_when_its_job_finishes(client, db, settings, state):
    index = insert_index(db, settings.data_path, "ref1", [], ready=False)
    job_id, key = claimed(client, db, index_id=index["_id"])
    assert client.get(f"/api/jobs/{job_id}", auth=key).status_code == 200
    finished = client.post(f"/api/jobs/{job_id}/status", auth=key, json={"state": state, "error": "stopped"})
    assert finished.status_code == 201
    refused = client.get(f"/api/jobs/{job_id}", auth=key)
    assert refused.status_code == 401 and refused.json["message"] == "Invalid job credentials"


def test_a_key_stops_working_when_its_time_limit_has_passed(client, db):
    job_id, key = claimed(client, db)
    db.processes.update_one({"_id": job_id}, {"$set": {"key_expires_at": ago(1)}})
    assert client.put(f"/api/jobs/{job_id}/ping", auth=key).status_code == 401


def test_a_key_lives_as_long_as_its_workflow_may_run(client, db):
    job_id, _ = claimed(client, db, "pathoscope_bowtie")
    expires_at = db.processes.find_one({"_id": job_id})["key_expires_at"]
    assert ago(-47 * 3600) < expires_at < ago(-49 * 3600)


def test_an_analysis_job_may_not_finalize_the_index_it_reads(client, db, settings):
    index = insert_index(db, settings.data_path, "ref1", [], ready=False)
    job_id, key = claimed(client, db, "pathoscope_bowtie", analysis_id="a1", index_id=index["_id"])
    assert client.get(f"/api/indexes/{index['_id']}", auth=key).status_code == 200  # reading it is its work
    refused = client.patch(f"/api/indexes/{index['_id']}", auth=key)
    assert refused.status_code == 403 and refused.json["id"] == "insufficient_rights"
    assert (
        client.post(f"/api/indexes/{index['_id']}/files?name=reference.fa.gz", data=b"x", auth=key).status_code == 403
    )
    assert not db.indexes.find_one({"_id": index["_id"]})["ready"]
