"""Signals for autoscalers: ``/api/jobs/counts`` and Prometheus metrics at ``/metrics``."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ringspot.core import processes
from ringspot.core.processes import STATES, WORKFLOWS
from ringspot.core.utils import new_id


def start_job(db, workflow: str) -> tuple[str, tuple[str, str]]:
    # A context naming nothing: the clean-up of a failed job has nothing to undo.
    context = {"analysis_id": new_id(), "index_id": new_id(), "sample_id": new_id(), "subtraction_id": new_id()}
    doc, key = processes.create_process(db, workflow, context=context, user_id="admin", workflow=True)
    return doc["_id"], (f"job-{doc['_id']}", key)


def run_job(client, db, workflow: str, state: str) -> str:
    """A job through the Job API as a worker drives it: claim, then its final status."""
    job_id, job_auth = start_job(db, workflow)
    claim = client.post(f"/api/jobs/{job_id}/claim", auth=job_auth)
    assert claim.status_code == 200
    if "key" in claim.json:  # the run's own key, where the claim issues one
        job_auth = (job_auth[0], claim.json["key"])
    body = {"state": state, "error": "bowtie2 exited with 1" if state == "error" else None}
    assert client.post(f"/api/jobs/{job_id}/status", auth=job_auth, json=body).status_code == 201
    return job_id


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` from a scrape."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_counts_cover_every_workflow_and_state_with_zeros(admin, client, db):
    run_job(client, db, "pathoscope_bowtie", "complete")
    run_job(client, db, "pathoscope_bowtie", "error")
    start_job(db, "pathoscope_bowtie")
    start_job(db, "build_index")
    processes.create_process(db, "import_reference", user_id="admin")  # not a job: not counted

    response = admin.get("/api/jobs/counts")
    assert response.status_code == 200
    counts = response.get_json()
    assert set(counts) == set(WORKFLOWS)
    assert all(set(states) == set(STATES) for states in counts.values())
    assert counts["pathoscope_bowtie"] == {"waiting": 1, "running": 0, "complete": 1, "error": 1, "cancelled": 0}
    assert counts["build_index"]["waiting"] == 1
    assert sum(n for states in counts.values() for n in states.values()) == 4


def test_counts_need_a_signed_in_user(client):
    assert client.get("/api/jobs/counts").status_code == 401


def test_metrics_report_jobs_queues_durations_and_request_latency(admin, client, db, stub_broker):
    from ringspot.tasks.indexes import build_index

    run_job(client, db, "nuvs", "complete")
    start_job(db, "create_sample")
    build_index.send("nothing-here")  # waits in the stub broker's queue: no worker runs
    for _ in range(3):
        admin.get("/api/jobs/counts")
    rerun, _ = start_job(db, "build_index")
    db.processes.update_one({"_id": rerun}, {"$set": {"attempts": 3}})  # as two crashed runs leave it

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    found = samples(response.get_data(as_text=True))

    assert found[("ringspot_jobs", (("state", "complete"), ("workflow", "nuvs")))] == 1
    assert found[("ringspot_jobs", (("state", "waiting"), ("workflow", "create_sample")))] == 1
    assert found[("ringspot_jobs", (("state", "error"), ("workflow", "alignment")))] == 0
    assert found[("ringspot_queue_messages", (("queue", build_index.queue_name),))] == 1
    assert found[("ringspot_process_reruns", (("type", "build_index"),))] == 2
    assert found[("ringspot_job_duration_seconds_count", (("state", "complete"), ("workflow", "nuvs")))] >= 1
    route = (("method", "GET"), ("route", "/api/jobs/counts"), ("status", "200"))
    assert found[("ringspot_http_request_duration_seconds_count", route)] >= 3


@pytest.mark.parametrize("path", ["/api/jobs/counts", "/metrics"])
def test_unknown_paths_share_one_latency_series(client, path):
    client.get(f"/no/such/{new_id()}")
    client.get(f"/no/such/{new_id()}")
    found = samples(client.get("/metrics").get_data(as_text=True))
    latency = [labels for name, labels in found if name == "ringspot_http_request_duration_seconds_count"]
    unmatched = [labels for labels in latency if ("route", "unmatched") in labels]
    assert len(unmatched) == 1
