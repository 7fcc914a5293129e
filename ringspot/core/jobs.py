"""Job credentials, and what happens on the server when a job ends or is cancelled.

Credentials: the message that starts a job carries only a **claim token**, good for nothing
but claiming the job while it waits (or while a crashed run of it is stale). The claim answers
with a fresh **job key**, kept by the worker in memory and stored hashed here; each claim
replaces the previous run's key. A key stops working when its job finishes (complete, error,
cancelled) or when its workflow's time limit has passed since the claim, so neither Redis's
append-only file nor a finished worker holds a secret that still opens anything.
"""

from __future__ import annotations

import secrets

from pymongo.database import Database

from . import alignments, analyses, indexes, processes, samples, subtractions
from .auth import hash_token
from .utils import later, now

_HOUR = 3600
#: How long a job key works after its claim: the time limit of the workflow's actor.
KEY_LIFETIMES = {
    "build_index": 12 * _HOUR,
    "create_sample": 12 * _HOUR,
    "create_subtraction": 24 * _HOUR,
    "pathoscope_bowtie": 48 * _HOUR,
    "nuvs": 48 * _HOUR,
    "alignment": 24 * _HOUR,
}
DEFAULT_KEY_LIFETIME = 48 * _HOUR

#: The workflows whose jobs write each kind of object (the Job API's write routes name it by id).
WRITERS = {
    "index_id": ("build_index",),
    "sample_id": ("create_sample",),
    "subtraction_id": ("create_subtraction",),
    "analysis_id": ("pathoscope_bowtie", "nuvs"),
    "alignment_id": ("alignment",),
}


def key_lifetime(workflow: str) -> int:
    return KEY_LIFETIMES.get(workflow, DEFAULT_KEY_LIFETIME)


def issue_claim_token(db: Database, job_id: str) -> str:
    """A new claim token for the job's message; only its hash is stored."""
    token = secrets.token_hex(32)
    db.processes.update_one({"_id": job_id}, {"$set": {"claim_token": hash_token(token)}})
    return token


def authenticate(db: Database, job_id: str, secret: str) -> tuple[dict, bool] | None:
    """The job and whether ``secret`` is only its claim token; None when it opens nothing."""
    job = db.processes.find_one({"_id": job_id, "workflow": {"$exists": True}})
    if job is None or job["state"] in processes.FINISHED:
        return None
    hashed = hash_token(secret)
    if secrets.compare_digest(job.get("key") or "", hashed) and (job.get("key_expires_at") or "") > now():
        return job, False
    if job.get("claim_token") and secrets.compare_digest(job["claim_token"], hashed):
        return job, True
    return None


def claim(db: Database, job_id: str, stale_after: int) -> tuple[dict, str] | None:
    """Take the job for this run and issue the run's key; None if it is not waiting (or stale)."""
    doc = processes.claim(db, job_id, stale_after)
    if doc is None:
        return None
    key = secrets.token_hex(32)
    expires_at = later(key_lifetime(doc["workflow"]))
    db.processes.update_one({"_id": job_id}, {"$set": {"key": hash_token(key), "key_expires_at": expires_at}})
    return {**doc, "key_expires_at": expires_at}, key


def may_write(job: dict, view_args: dict) -> bool:
    """A job writes only objects of the kind its workflow makes (which of them, its views check)."""
    return all(job["workflow"] in WRITERS[name] for name in view_args if name in WRITERS)


def _cleanup(db: Database, data_path: str, job: dict) -> None:
    """Undo what a failed or cancelled job left half-made (a failed alignment is marked failed instead)."""
    context = job.get("context", {})
    if job["workflow"] == "build_index":
        indexes.discard_failed_build(db, data_path, context["index_id"])
    elif job["workflow"] == "create_sample":
        samples.discard_failed_sample(db, data_path, context["sample_id"], context.get("upload_ids", []))
    elif job["workflow"] == "create_subtraction":
        subtractions.discard_failed_subtraction(db, data_path, context["subtraction_id"], context.get("upload_ids", []))
    elif job["workflow"] in ("pathoscope_bowtie", "nuvs"):
        if job["state"] == "error":  # kept, marked failed with the error, until someone removes it
            analyses.mark_failed(db, data_path, context["analysis_id"], job.get("error"))
        else:
            analyses.discard_unfinished(db, data_path, context["analysis_id"])
    elif job["workflow"] == "alignment":
        # Kept, not deleted: the seed's ``complete: true, success: false`` and the reason must stay visible.
        alignments.mark_failed(db, data_path, context["alignment_id"], alignments.failure_message(job))


def finish_job(db: Database, data_path: str, job_id: str, state: str, error: str | None) -> None:
    """End a process (job or not); a job that did not complete is cleaned up."""
    processes.finish(db, job_id, state, error)
    doc = processes.get_process_or_404(db, job_id)
    if state in ("error", "cancelled") and "workflow" in doc:
        _cleanup(db, data_path, doc)


def cancel(db: Database, data_path: str, process_id: str) -> dict:
    """Cancel a process; a job cancelled before it started is cleaned up at once."""
    doc = processes.request_cancel(db, process_id)
    if doc["state"] == "cancelled" and "workflow" in doc:
        _cleanup(db, data_path, doc)
    return doc
