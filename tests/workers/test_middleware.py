"""Process bookkeeping around every actor: claim, progress, final state, cancel kills tools.

The actors here are small but real: the last one runs a real child process through the
project's runner, and the test checks the child is gone after a cancel.
"""

import logging
import os
import time

import pytest

from ringspot.bio.runner import run as run_tool
from ringspot.core import processes
from ringspot.core.settings import from_env
from ringspot.core.utils import ago, now
from ringspot.workers.runtime import RunState, StepFailed, Workflow, actor, current

from ..conftest import wait_for

CHILD_PIDS: dict[str, int] = {}


TWO_STEPS: Workflow[RunState] = Workflow("test")


@TWO_STEPS.step
def first(state: RunState) -> None:
    """First."""


@TWO_STEPS.step
def second(state: RunState) -> None:
    """Second."""


@actor(queue_name="test_bookkeeping", max_retries=0)
def two_steps(process_id):
    TWO_STEPS.run(RunState(current(), from_env()))


@actor(queue_name="test_bookkeeping", max_retries=0)
def fails_clearly(process_id):
    raise StepFailed("The file is not gzip-compressed")


@actor(queue_name="test_bookkeeping", max_retries=0)
def runs_a_long_tool(process_id):
    import subprocess

    run = current()
    # The runner starts its own process group; record the child so the test can check it died.
    original_popen = subprocess.Popen

    class Recording(original_popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            CHILD_PIDS[process_id] = self.pid

    subprocess.Popen = Recording
    try:
        run_tool(["sleep", "60"], cancel=run.cancel)
    finally:
        subprocess.Popen = original_popen


def new_process(db, type_="test"):
    doc, _ = processes.create_process(db, type_, user_id="admin", steps=TWO_STEPS.steps)
    return doc["_id"]


def state_of(db, process_id):
    return db.processes.find_one({"_id": process_id})


def test_completed_run_reports_steps_and_progress(db, stub_worker):
    process_id = new_process(db)
    two_steps.send(process_id=process_id)
    doc = wait_for(lambda: (d := state_of(db, process_id))["state"] == "complete" and d, message="complete")
    assert doc["progress"] == 1 and doc["complete"] and doc["attempts"] == 1
    assert doc["step"] == "second"
    assert [s["state"] for s in doc["status"]] == ["waiting", "running", "complete"]


def test_known_failure_ends_in_error_with_its_message(db, stub_worker):
    process_id = new_process(db)
    fails_clearly.send(process_id=process_id)
    doc = wait_for(lambda: (d := state_of(db, process_id))["state"] == "error" and d, message="error")
    assert doc["error"] == "The file is not gzip-compressed"
    assert not doc["complete"]


def test_redelivered_message_of_a_finished_process_is_skipped(db, stub_worker, stub_broker):
    process_id = new_process(db)
    two_steps.send(process_id=process_id)
    wait_for(lambda: state_of(db, process_id)["state"] == "complete")
    two_steps.send(process_id=process_id)
    stub_broker.join("test_bookkeeping")
    stub_worker.join()
    assert state_of(db, process_id)["attempts"] == 1


def test_message_of_a_process_alive_elsewhere_comes_back_until_that_run_is_dead(db, stub_worker, settings):
    """A broker may redeliver while the first run still beats (Redis gives up sooner than
    our heartbeat timeout; RabbitMQ at once when a connection drops): the message must wait
    and run once that run is presumed dead, not be dropped with the process left orphaned."""
    process_id = new_process(db)
    # Another worker claimed it and then died: its last heartbeat was two seconds ago.
    db.processes.update_one({"_id": process_id}, {"$set": {"state": "running", "attempts": 1, "heartbeat_at": ago(2)}})
    sent = time.monotonic()
    two_steps.send(process_id=process_id)
    doc = wait_for(lambda: (d := state_of(db, process_id))["state"] == "complete" and d, timeout=20, message="rerun")
    # Not before the heartbeat timeout (5 s) since the last beat; promptly after it.
    assert settings.heartbeat_timeout - 2 <= time.monotonic() - sent < settings.heartbeat_timeout + 5
    assert doc["attempts"] == 2


def test_message_of_a_live_run_is_never_run_twice(db, stub_worker, stub_broker):
    process_id = new_process(db)
    db.processes.update_one({"_id": process_id}, {"$set": {"state": "running", "attempts": 1, "heartbeat_at": now()}})
    two_steps.send(process_id=process_id)
    for _ in range(8):  # the first run beats on, then finishes by itself
        time.sleep(1)
        db.processes.update_one({"_id": process_id}, {"$set": {"heartbeat_at": now()}})
    processes.finish(db, process_id, "complete")
    time.sleep(7)  # the deferred message has come back by now and found the process finished
    stub_broker.join("test_bookkeeping.DQ")
    doc = state_of(db, process_id)
    assert doc["attempts"] == 1
    assert [s["state"] for s in doc["status"]] == ["waiting", "complete"]


def test_a_claim_that_cannot_reach_the_database_waits_for_it(db, stub_worker, settings, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="ringspot.workers")
    process_id = new_process(db)
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:1/down")  # nothing listens there
    two_steps.send(process_id=process_id)
    wait_for(lambda: "process_deferred" in caplog.text, timeout=20, message="the claim to fail")
    assert "server unreachable" in caplog.text
    monkeypatch.setenv("MONGODB_URI", settings.mongodb_uri)  # the database is back
    doc = wait_for(lambda: (d := state_of(db, process_id))["state"] == "complete" and d, timeout=20, message="the run")
    assert doc["attempts"] == 1


def test_cancel_kills_the_running_tool(db, stub_worker, admin):
    process_id = new_process(db)
    runs_a_long_tool.send(process_id=process_id)
    wait_for(lambda: process_id in CHILD_PIDS and state_of(db, process_id)["state"] == "running")
    started = time.monotonic()
    assert admin.delete(f"/api/processes/{process_id}").status_code == 202
    wait_for(lambda: state_of(db, process_id)["state"] == "cancelled", timeout=10)
    assert time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):
        os.kill(CHILD_PIDS[process_id], 0)
