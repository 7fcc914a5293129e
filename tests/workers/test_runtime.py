"""The runtime's two shapes: a workflow is its step functions, and ``start_process`` is all or nothing.

The broker that refuses here is a real Redis broker whose server is not there: the send fails
the way it does when Redis is down, and the request must leave nothing behind.
"""

from __future__ import annotations

import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from redis.backoff import NoBackoff
from redis.retry import Retry

from ringspot.tasks import indexes as index_tasks
from ringspot.tasks import references as reference_tasks
from ringspot.tasks import samples as sample_tasks
from ringspot.workers.runtime import RunState, Workflow
from tests.common import error, upload
from tests.conftest import free_port
from tests.reference_helpers import add_otu, create_ref

READS = b"@r1\nACGTACGTAC\n+\nIIIIIIIIII\n"
BROKER_DOWN = (503, "The task queue is unavailable; try again shortly")


# ---------------------------------------------------------------- workflows


def test_a_workflow_lists_its_step_functions_in_order_with_their_docstrings():
    workflow: Workflow[RunState] = Workflow("example", job=True)

    @workflow.step
    def fetch(state: RunState) -> None:
        """Fetch the inputs.

        Later lines are for readers of the code, not the process document.
        """

    @workflow.step
    def compute(state: RunState) -> None:
        """Compute the results."""

    assert workflow.functions == [fetch, compute]
    assert workflow.steps == [
        {"name": "fetch", "description": "Fetch the inputs."},
        {"name": "compute", "description": "Compute the results."},
    ]


def test_a_step_without_a_docstring_is_refused_when_declared():
    workflow: Workflow[RunState] = Workflow("example")

    def undescribed(state: RunState) -> None:
        pass

    with pytest.raises(TypeError, match="undescribed needs a one-line docstring"):
        workflow.step(undescribed)


def test_every_actor_workflow_describes_every_step():
    from ringspot.tasks import alignments, analyses, blast, hmms, nuvs, subtractions

    workflows: list[Workflow] = [
        analyses.PATHOSCOPE,
        nuvs.NUVS,
        alignments.ALIGNMENT,
        sample_tasks.CREATE_SAMPLE,
        subtractions.CREATE_SUBTRACTION,
        index_tasks.BUILD_INDEX,
        blast.NCBI,
        blast.LOCAL,
        hmms.INSTALL_HMMS,
        reference_tasks.CLONE,
        reference_tasks.IMPORT,
        reference_tasks.REMOTE,
        reference_tasks.CHECK_RELEASE,
        reference_tasks.UPDATE,
        reference_tasks.DELETE,
    ]
    for workflow in workflows:
        names = [step["name"] for step in workflow.steps]
        assert names and len(names) == len(set(names)), workflow.process_type
        assert all(step["description"].endswith(".") for step in workflow.steps), workflow.process_type


def names_used(code) -> set[str]:
    """Every global, attribute and local name a function's code uses, nested functions included."""
    nested = [const for const in code.co_consts if hasattr(const, "co_names")]
    return {*code.co_names, *code.co_varnames}.union(*(names_used(inner) for inner in nested))


def test_job_steps_reach_the_server_only_through_the_job_api():
    from ringspot.tasks import alignments, analyses, nuvs, subtractions

    jobs = [
        analyses.PATHOSCOPE,
        nuvs.NUVS,
        alignments.ALIGNMENT,
        sample_tasks.CREATE_SAMPLE,
        subtractions.CREATE_SUBTRACTION,
        index_tasks.BUILD_INDEX,
    ]
    for workflow in jobs:
        assert workflow.job
        for step in workflow.functions:
            used = names_used(step.__code__)
            assert not used & {"db", "connect", "Database"}, f"{workflow.process_type}.{step.__name__}"


# ---------------------------------------------------------------- starting: all or nothing


@pytest.fixture
def broker_down(monkeypatch):
    """Point the actors started here at a Redis broker on a port nothing listens on."""
    client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    down = RedisBroker(client=client)
    for task in (sample_tasks.create_sample, reference_tasks.clone_reference, index_tasks.build_index):
        monkeypatch.setattr(task, "broker", down)


def test_a_sample_that_cannot_be_sent_leaves_no_sample_job_or_reserved_upload(admin, db, broker_down):
    processes_before = db.processes.count_documents({})
    upload_id = upload(admin, "reads.fq", READS, "reads")
    response = admin.post("/api/samples", json={"name": "Never queued", "files": [upload_id]})
    assert error(response) == BROKER_DOWN
    assert db.samples.count_documents({"name": "Never queued"}) == 0
    assert db.processes.count_documents({}) == processes_before  # nor its job key with it
    assert not db.uploads.find_one({"_id": upload_id})["reserved"]


def test_a_clone_that_cannot_be_sent_leaves_no_reference_or_process(admin, db, stub_broker, broker_down):
    source = create_ref(admin, name="Source")
    processes_before = db.processes.count_documents({})
    response = admin.post("/api/refs", json={"name": "Clone", "data_type": "genome", "clone_from": source["id"]})
    assert error(response) == BROKER_DOWN
    assert db.refs.count_documents({"name": "Clone"}) == 0
    assert db.processes.count_documents({}) == processes_before


def test_a_build_that_cannot_be_sent_leaves_no_index_and_its_changes_unbuilt(admin, db, broker_down):
    ref = create_ref(admin, name="Unbuilt")
    add_otu(admin, ref["id"])
    processes_before = db.processes.count_documents({})
    response = admin.post(f"/api/refs/{ref['id']}/indexes")
    assert error(response) == BROKER_DOWN
    assert db.indexes.count_documents({"reference.id": ref["id"]}) == 0
    assert db.processes.count_documents({}) == processes_before
    assert {change["index"]["id"] for change in db.history.find({"reference.id": ref["id"]})} == {"unbuilt"}
    # Nothing half-made is in the way: the next try builds.
    assert admin.get(f"/api/refs/{ref['id']}").json["unbuilt_change_count"] > 0
