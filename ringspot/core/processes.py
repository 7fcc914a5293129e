"""The process document: one record per long-running operation, polled by clients.

Jobs (the five workflows) are processes too, with a ``workflow``, ``args``, a
hashed ``key`` for the Job API and an append-only ``status`` history.

States: ``waiting -> running -> complete | error | cancelled``; a crashed run whose
heartbeat stopped is claimed again from ``running``.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Literal

from pymongo.database import Database

from . import events
from .auth import hash_token
from .db import append
from .errors import Conflict, NotFound
from .pagination import paginate
from .utils import ago, later, new_id, now, seconds_since

STATES = ("waiting", "running", "complete", "error", "cancelled")
State = Literal["waiting", "running", "complete", "error", "cancelled"]
FINISHED = ("complete", "error", "cancelled")
#: Seconds a job key works at most (the longest workflow time limit).
JOB_KEY_LIFETIME = 48 * 3600
WORKFLOWS = ("build_index", "create_sample", "create_subtraction", "pathoscope_bowtie", "nuvs", "alignment")
Workflow = Literal["build_index", "create_sample", "create_subtraction", "pathoscope_bowtie", "nuvs", "alignment"]


class RunningElsewhere(Conflict):
    """The process is alive on another worker; ask again once its heartbeat may have gone stale.

    A redelivered message meets this when the broker gave up on a worker sooner than the
    process heartbeat timeout: it must come back later, not be dropped.
    """

    default_message = "Running on another worker"

    def __init__(self, retry_after: float):
        super().__init__(retry_after=round(retry_after, 1))
        self.retry_after = retry_after


def _status_entry(state: str, step: str | None, progress: float, error: str | None = None) -> dict:
    return {"state": state, "stage": step, "step": step, "progress": progress, "error": error, "timestamp": now()}


def create_process(
    db: Database,
    process_type: str,
    *,
    user_id: str | None,
    context: dict | None = None,
    steps: list[dict] | None = None,
    workflow: bool = False,
    args: dict | None = None,
    process_id: str | None = None,
) -> tuple[dict, str | None]:
    """Insert a waiting process; for jobs also a key. Returns (document, raw job key or None).

    ``steps`` are ``{name, description}`` in order (a workflow's ``steps``).
    """
    steps = steps or []
    first_step = steps[0]["name"] if steps else None
    created = now()
    doc = {
        "_id": process_id or new_id(),
        "type": process_type,
        "step": first_step,
        "step_count": len(steps),
        "steps": steps,
        "progress": 0,
        "complete": False,
        "error": None,
        "context": context or {},
        "created_at": created,
        "updated_at": created,
        "user": {"id": user_id} if user_id else None,
        "state": "waiting",
        "attempts": 0,
        "heartbeat_at": None,
        "cancel_requested": False,
        "status": [_status_entry("waiting", first_step, 0)],
    }
    raw_key = None
    if workflow:
        raw_key = secrets.token_hex(32)
        # Jobs started by ``start_process`` never see this key: their message carries a claim token
        # and the claim issues the run's key (``core.jobs``).
        doc.update(
            workflow=process_type, args=args or {}, key=hash_token(raw_key), key_expires_at=later(JOB_KEY_LIFETIME)
        )
    db.processes.insert_one(doc)
    return doc, raw_key


def remove_process(db: Database, process_id: str) -> None:
    """Delete a process that never started (its message could not be sent), key and all."""
    db.processes.delete_one({"_id": process_id, "state": "waiting"})


def get_process_or_404(db: Database, process_id: str) -> dict:
    doc = db.processes.find_one({"_id": process_id})
    if doc is None:
        raise NotFound()
    return doc


def find_processes(
    db: Database,
    *,
    page: int,
    per_page: int,
    type_: str | None = None,
    state: str | None = None,
    jobs_only=False,
    visible: dict | None = None,
) -> dict:
    """A page of processes within ``visible`` (what the caller may read; every one when None)."""
    query = {}
    if type_:
        query["type"] = type_
    if state:
        query["state"] = state
    base = {**(visible or {}), **({"workflow": {"$exists": True}} if jobs_only else {})}
    return paginate(db.processes, query, base_query=base, page=page, per_page=per_page, sort=[("created_at", -1)])


def request_cancel(db: Database, process_id: str) -> dict:
    """Cancel a waiting process at once; ask a running one to stop (its worker kills its tools)."""
    get_process_or_404(db, process_id)
    entry = _status_entry("cancelled", None, 0)
    if db.processes.update_one(
        {"_id": process_id, "state": "waiting"},
        {"$set": {"state": "cancelled", "cancel_requested": True, "updated_at": now()}},
    ).modified_count:
        append(db.processes, process_id, "status", entry)
        return get_process_or_404(db, process_id)
    if db.processes.update_one(
        {"_id": process_id, "state": "running"}, {"$set": {"cancel_requested": True, "updated_at": now()}}
    ).modified_count:
        return get_process_or_404(db, process_id)
    raise Conflict("Not cancellable")


def cancel_if_active(db: Database, process_id: str) -> None:
    """Ask a waiting or running process to stop; one that ended or is gone is left as it is."""
    with contextlib.suppress(NotFound, Conflict):
        request_cancel(db, process_id)


def _transition(
    db: Database,
    doc: dict,
    state: str,
    fields: dict,
    error: str | None = None,
    extra_guard: dict | None = None,
    inc: dict | None = None,
) -> dict | None:
    """Move ``doc`` to ``state`` in one write: the fields, a status entry, the ``_rev`` bump.

    Guarded on the state and ``_rev`` that were read, so of two racing transitions (a claim
    and a cancel, two claims of a redelivered message) exactly one lands; the other gets None.
    """
    rev = doc.get("_rev", 0)
    guard = {
        "_id": doc["_id"],
        "state": doc["state"],
        "_rev": rev if rev else {"$exists": False},
        **(extra_guard or {}),
    }
    entry = _status_entry(state, fields.get("step", doc.get("step")), fields.get("progress", doc["progress"]), error)
    changes = {**fields, "state": state, "status": doc.get("status", []) + [entry], "_rev": rev + 1}
    update = {"$set": changes, **({"$inc": inc} if inc else {})}
    if not db.processes.update_one(guard, update).modified_count:
        return None
    updated = {**doc, **changes}
    for key, amount in (inc or {}).items():
        updated[key] = doc.get(key, 0) + amount
    return updated


def claim(db: Database, process_id: str, stale_after: int) -> dict | None:
    """Take the process for this run, or None if it is finished or cancelled.

    A conditional update, so a redelivered message never runs a process twice at once.
    A ``running`` process whose heartbeat is older than ``stale_after`` seconds was
    orphaned by a crashed worker and is claimed again; one beating more recently raises
    ``RunningElsewhere`` with the seconds left until it would be stale.
    """
    doc = db.processes.find_one({"_id": process_id})
    if doc is None:
        return None
    guard = None
    if doc["state"] == "running":
        heartbeat_at = doc.get("heartbeat_at")
        silent_for = seconds_since(heartbeat_at) if heartbeat_at else 0.0
        if silent_for < stale_after:
            raise RunningElsewhere(stale_after - silent_for)
        guard = {"heartbeat_at": heartbeat_at}
    elif doc["state"] != "waiting":
        return None
    t = now()
    fields = {"heartbeat_at": t, "updated_at": t, "error": None}
    return _transition(db, doc, "running", fields, extra_guard=guard, inc={"attempts": 1})


def heartbeat(db: Database, process_id: str) -> bool:
    """Record that the run is alive; returns True when a cancel was requested."""
    db.processes.update_one({"_id": process_id, "state": "running"}, {"$set": {"heartbeat_at": now()}})
    doc = db.processes.find_one({"_id": process_id}, {"cancel_requested": 1, "state": 1})
    return bool(doc and (doc.get("cancel_requested") or doc.get("state") == "cancelled"))


def report(db: Database, process_id: str, *, step: str | None = None, progress: float | None = None, **context) -> None:
    """Record the current step and progress (0..1) of a running process."""
    update: dict = {"updated_at": now()}
    if step is not None:
        update["step"] = step
    if progress is not None:
        update["progress"] = round(min(max(progress, 0.0), 1.0), 3)
    for key, value in context.items():
        update[f"context.{key}"] = value
    db.processes.update_one({"_id": process_id}, {"$set": update})


def finish(db: Database, process_id: str, state: str, error: str | None = None) -> None:
    """End a run as ``complete``, ``error``, ``cancelled`` or back to ``waiting`` for a retry."""
    fields: dict = {"updated_at": now(), "error": error}
    if state == "complete":
        fields.update(complete=True, progress=1)
    for _ in range(10):  # a heartbeat-time cancel may race this write; read again and retry
        doc = db.processes.find_one({"_id": process_id})
        if doc is None or doc["state"] in FINISHED:
            return  # already finished: a repeated report changes nothing
        if _transition(db, doc, state, fields, error) is not None:
            break
    else:
        raise Conflict("Process kept changing while it was being finished")
    if state in ("complete", "error"):
        summary = {k: doc.get(k) for k in ("_id", "type", "context", "user")}
        events.emit(db, f"process.{state}", {"process": {**summary, "state": state, "error": error}})


def stale_running(db: Database, stale_after: int) -> list[dict]:
    """Running processes whose heartbeat stopped: their worker died."""
    cutoff = ago(stale_after)
    return list(db.processes.find({"state": "running", "heartbeat_at": {"$lt": cutoff}}))


def remove_job(db: Database, job_id: str) -> None:
    job = get_process_or_404(db, job_id)
    if job["state"] not in FINISHED:
        raise Conflict("Job is running or waiting and cannot be removed")
    db.processes.delete_one({"_id": job_id})
