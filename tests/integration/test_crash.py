"""A worker killed in the middle of a job: the message comes back, the job runs again from a
clean state on another worker, finishes once, and leaves no duplicate files or history."""

import os
import signal
import time

from ..conftest import wait_for
from .test_stack import LARGE, import_reference


def test_index_build_survives_a_worker_killed_mid_build(stack):
    ref = import_reference(stack, LARGE, "Plant viruses")
    index = stack.call("POST", f"/api/refs/{ref['id']}/indexes").json()
    job_id = index["job"]["id"]
    wait_for(lambda: stack.call("GET", f"/api/processes/{job_id}").json()["step"] == "bowtie_build", timeout=120,
             interval=0.2, message="bowtie2-build to start")

    victim = stack.workers[0]
    os.killpg(victim.pid, signal.SIGKILL)  # the worker and its bowtie2-build die at once
    victim.wait()
    killed_at = time.monotonic()
    stack.start_worker()

    job = stack.wait_process(job_id, timeout=240)
    redelivered_after = time.monotonic() - killed_at
    assert job["attempts"] == 2
    # Heartbeat timeout of the dead consumer (30 s) + maintenance + the rebuild itself.
    assert redelivered_after < 60 + 90

    index = stack.call("GET", f"/api/indexes/{index['id']}").json()
    assert index["ready"] is True
    names = [f["name"] for f in index["files"]]
    assert len(names) == len(set(names)) == 8
    assert stack.db.indexes.count_documents({"reference.id": ref["id"]}) == 1
    assert stack.db.history.count_documents({"reference.id": ref["id"]}) == 2084
    assert stack.db.history.count_documents({"reference.id": ref["id"], "index.id": index["id"]}) == 2084
    states = [s["state"] for s in stack.db.processes.find_one({"_id": job_id})["status"]]
    assert states.count("complete") == 1
