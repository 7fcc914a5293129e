"""What many test modules do the same way: upload a file, act as a job, read an error, wait for a process.

Fixtures live in ``conftest.py``; these are plain functions and classes a test module imports.
"""

from __future__ import annotations

from pathlib import Path

import dramatiq

from ringspot.core import processes
from ringspot.core.processes import FINISHED
from tests.conftest import wait_for


def post_upload(user, name: str, content: bytes | Path, type_: str, **kwargs):
    """``POST /api/uploads`` of ``content`` (bytes, or a file to read) as ``name``; the raw response."""
    data = content.read_bytes() if isinstance(content, Path) else content
    return user.post(
        "/api/uploads",
        query_string={"name": name, "type": type_},
        data=data,
        content_type="application/octet-stream",
        **kwargs,
    )


def upload(user, name: str, content: bytes | Path, type_: str) -> str:
    """Upload ``content`` as a file of ``type_`` and return the upload's id."""
    response = post_upload(user, name, content, type_)
    assert response.status_code == 201, response.json
    return response.json["id"]


def error(response) -> tuple[int, str]:
    """(status, message) of an error answer."""
    return response.status_code, response.json["message"]


class Job:
    """The test client acting as a job: every call carries the job's key."""

    def __init__(self, client, job_id: str, key: str):
        self.client, self.auth = client, (f"job-{job_id}", key)

    def __getattr__(self, method):
        return lambda url, **kw: getattr(self.client, method)(url, auth=self.auth, **kw)


def make_job(db, client, workflow: str, **context) -> Job:
    """A waiting job of ``workflow`` on the objects in ``context``, and a client acting as it."""
    doc, key = processes.create_process(db, workflow, user_id="admin", context=context, workflow=True)
    return Job(client, doc["_id"], key)


def job_key(stub_broker, queue: str, job_id: str) -> str:
    """The raw key of a started job, as its worker receives it in the message."""
    for raw in list(stub_broker.queues[queue].queue):
        message = dramatiq.Message.decode(raw)
        if message.kwargs["process_id"] == job_id:
            return message.kwargs["job_key"]
    raise AssertionError(f"no message for job {job_id}")


def wait_finished(db, process_id: str, timeout: float = 60) -> dict:
    """The process document once it is complete, failed or cancelled."""

    def finished():
        doc = db.processes.find_one({"_id": process_id})
        return doc if doc and doc["state"] in FINISHED else None

    return wait_for(finished, timeout=timeout, message=f"process {process_id} to finish")
