"""What many test modules do the same way: upload a file, act as a job, read an error, wait for a process.

Fixtures live in ``conftest.py``; these are plain functions and classes a test module imports.
"""

from __future__ import annotations

from pathlib import Path

import dramatiq

from ringspot.core import jobs, processes
from ringspot.core.db import connect
from ringspot.core.processes import FINISHED
from ringspot.core.settings import from_env
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


class ClaimToken(str):
    """The secret a job's message carries: it only claims the job, whose answer holds the run's key."""


class Job:
    """The test client acting as a job: every call carries the job's key.

    Given a ``ClaimToken`` (what ``job_key`` reads from the broker), the job claims itself at its
    first call, as a worker does (that call itself when it is the claim), and then uses the key.
    """

    def __init__(self, client, job_id: str, key: str):
        self.client, self.job_id = client, job_id
        self.claim_token = key if isinstance(key, ClaimToken) else None
        self.auth = None if self.claim_token else (f"job-{job_id}", key)

    def __getattr__(self, method):
        def call(url, **kw):
            if self.auth is None:
                if url == f"/api/jobs/{self.job_id}/claim":
                    response = getattr(self.client, method)(url, auth=(f"job-{self.job_id}", self.claim_token), **kw)
                    if response.status_code == 200:
                        self.auth = (f"job-{self.job_id}", response.json["key"])
                    return response
                self.auth = (f"job-{self.job_id}", claim_with_token(self.job_id, self.claim_token))
            return getattr(self.client, method)(url, auth=self.auth, **kw)

        return call


def make_job(db, client, workflow: str, **context) -> Job:
    """A waiting job of ``workflow`` on the objects in ``context``, and a client acting as it."""
    doc, key = processes.create_process(db, workflow, user_id="admin", context=context, workflow=True)
    return Job(client, doc["_id"], key)


def job_key(stub_broker, queue: str, job_id: str) -> ClaimToken:
    """What a started job's worker receives in the message: a claim token (``Job`` claims with it)."""
    for raw in list(stub_broker.queues[queue].queue):
        message = dramatiq.Message.decode(raw)
        if message.kwargs["process_id"] == job_id:
            return ClaimToken(message.kwargs["job_key"])
    raise AssertionError(f"no message for job {job_id}")


def claim_with_token(job_id: str, token: str) -> str:
    """Claim a job with the claim token of its message (which opens nothing else); its run's key."""
    db = connect(from_env().mongodb_uri)
    assert jobs.authenticate(db, job_id, token) == (db.processes.find_one({"_id": job_id}), True)
    claimed = jobs.claim(db, job_id, stale_after=from_env().heartbeat_timeout)
    assert claimed is not None, f"job {job_id} could not be claimed"
    return claimed[1]


def wait_finished(db, process_id: str, timeout: float = 60) -> dict:
    """The process document once it is complete, failed or cancelled."""

    def finished():
        doc = db.processes.find_one({"_id": process_id})
        return doc if doc and doc["state"] in FINISHED else None

    return wait_for(finished, timeout=timeout, message=f"process {process_id} to finish")
