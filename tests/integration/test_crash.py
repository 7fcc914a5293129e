"""A worker killed in the middle of a job: the message comes back, the job runs again from a
clean state on another worker, finishes once, and leaves no duplicate files, results or history.

Both brokers, with the default timeouts: Redis hands a dead consumer's message back once it
has missed 30 s of heartbeats; RabbitMQ at once when the connection drops, and the next worker
then waits until the process heartbeat (30 s by default) says the first run is dead.
"""

import os
import signal
import time

import pytest

from ringspot.core.analyses import RESULTS_FILE

from ..analyses_data import insert_sample, repeated_reads
from ..conftest import wait_for
from .conftest import running_stack
from .test_stack import LARGE, import_reference

#: From the kill to the second run's claim: heartbeat timeouts (30 s) + maintenance or deferral.
RERUN_WITHIN = 60
#: Copies of the RpRSV sample's reads in the crashed analysis, so that bowtie2 is surely still
#: mapping when the worker dies; the real sample has 9,834 reads that Pathoscope aligns.
COPIES = 3
RPRSV_ALIGNED = 9834


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def stack(request, database_server, tmp_path_factory):
    broker_url = request.getfixturevalue(f"{request.param}_server")
    with running_stack(database_server, broker_url, tmp_path_factory.mktemp(f"crash-{request.param}")) as stack:
        yield stack


@pytest.fixture(scope="module")
def plant_reference(stack):
    return import_reference(stack, LARGE, "Plant viruses")


def kill_worker_when(stack, job_id: str, steps: set[str]) -> float:
    """SIGKILL the worker (and its tools) once the job reaches one of ``steps``; start a new one."""
    wait_for(
        lambda: stack.call("GET", f"/api/processes/{job_id}").json()["step"] in steps,
        timeout=180,
        interval=0.05,
        message=f"job to reach {steps}",
    )
    victim = stack.workers[0]
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    killed_at = time.monotonic()
    stack.workers.remove(victim)
    assert stack.call("GET", f"/api/processes/{job_id}").json()["state"] == "running"  # killed mid-run
    stack.start_worker()
    return killed_at


def rerun_started_after(stack, job_id: str, killed_at: float) -> float:
    """Seconds from the kill to the second run's claim."""
    wait_for(
        lambda: stack.call("GET", f"/api/processes/{job_id}").json()["attempts"] == 2,
        timeout=RERUN_WITHIN + 30,
        interval=0.2,
        message="the job to be claimed again",
    )
    seconds = time.monotonic() - killed_at
    print(f"rerun claimed {seconds:.1f} s after the kill")
    return seconds


def assert_finished_once(stack, job_id: str) -> None:
    job = stack.wait_process(job_id, timeout=240)
    assert job["attempts"] == 2 and job["progress"] == 1
    states = [s["state"] for s in stack.db.processes.find_one({"_id": job_id})["status"]]
    assert states.count("running") == 2 and states.count("complete") == 1


def test_index_build_survives_a_worker_killed_mid_build(stack, plant_reference):
    ref = plant_reference
    index = stack.call("POST", f"/api/refs/{ref['id']}/indexes").json()
    job_id = index["job"]["id"]
    killed_at = kill_worker_when(stack, job_id, {"bowtie_build"})  # the worker and its bowtie2-build die at once

    assert rerun_started_after(stack, job_id, killed_at) < RERUN_WITHIN
    assert_finished_once(stack, job_id)
    index = stack.call("GET", f"/api/indexes/{index['id']}").json()
    assert index["ready"] is True
    names = [f["name"] for f in index["files"]]
    assert len(names) == len(set(names)) == 8
    # The uploaded files once each, beside the server's own otus.json.gz.
    assert sorted(os.listdir(f"{stack.data_path}/indexes/{index['id']}")) == sorted(names + ["otus.json.gz"])
    assert stack.db.indexes.count_documents({"reference.id": ref["id"]}) == 1
    assert stack.db.history.count_documents({"reference.id": ref["id"]}) == 2084
    assert stack.db.history.count_documents({"reference.id": ref["id"], "index.id": index["id"]}) == 2084


def ready_index(stack, ref_id: str) -> dict:
    """The reference's ready index, built here if no earlier test left one."""
    ready = [i for i in stack.call("GET", f"/api/refs/{ref_id}/indexes").json()["documents"] if i["ready"]]
    if ready:
        return ready[0]
    index = stack.call("POST", f"/api/refs/{ref_id}/indexes").json()
    stack.wait_process(index["job"]["id"], timeout=240)
    return index


def test_analysis_survives_a_worker_killed_mid_mapping(stack, plant_reference, tmp_path):
    ref = plant_reference
    ready_index(stack, ref["id"])
    sample = insert_sample(stack.db, stack.data_path, repeated_reads(tmp_path, COPIES))
    analysis = stack.call(
        "POST", f"/api/samples/{sample['_id']}/analyses", json={"ref_id": ref["id"], "workflow": "pathoscope_bowtie"}
    ).json()
    job_id = analysis["job"]["id"]
    killed_at = kill_worker_when(stack, job_id, {"map_default_isolates", "build_isolate_index", "map_isolates"})

    assert rerun_started_after(stack, job_id, killed_at) < RERUN_WITHIN
    assert_finished_once(stack, job_id)
    analysis = stack.call("GET", f"/api/analyses/{analysis['id']}").json()
    assert analysis["ready"] is True
    # Results of one run, not two: every copy of every RpRSV read counted once.
    assert analysis["read_count"] == COPIES * RPRSV_ALIGNED
    top = analysis["results"]["hits"][0]
    assert top["name"] == "Raspberry ringspot virus" and top["pi"] == pytest.approx(1.0, abs=1e-3)
    names = [f["name"] for f in analysis["files"]]
    assert sorted(names) == ["isolate_mapped.fq.gz", "report.tsv"]
    on_disk = [f["name_on_disk"] for f in stack.db.analyses.find_one({"_id": analysis["id"]})["files"]]
    assert sorted(os.listdir(f"{stack.data_path}/analyses/{analysis['id']}")) == sorted(on_disk + [RESULTS_FILE])
    assert stack.db.analyses.count_documents({"sample.id": sample["_id"]}) == 1
