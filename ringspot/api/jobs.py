"""``/api/jobs``: the workflow processes, plus the Job API life-cycle endpoints used by workers."""

from flask import Blueprint, g, request

from ..core import jobs, process_access, processes, rights, signals
from ..core.errors import BadRequest, Conflict, InsufficientRights, NotFound, Unauthorized
from ..core.utils import to_json
from . import metrics
from .auth import jobs_allowed, jobs_only
from .context import client, db, settings
from .processes import serialize_process, shows_objects
from .responses import json_response, no_content, paginated
from .validation import Body, PageQuery, body, query

bp = Blueprint("jobs", __name__, url_prefix="/api/jobs")


def serialize_job(doc: dict) -> dict:
    """The job as the caller may see it: ``args`` and ``context`` only for a reader of its objects."""
    if not shows_objects(doc):
        return {**serialize_process(doc, show_objects=False), "workflow": doc["workflow"]}
    return {**serialize_process(doc), "workflow": doc["workflow"], "args": doc.get("args", {})}


def serialize_job_full(doc: dict) -> dict:
    return {**serialize_job(doc), "steps": doc.get("steps", []), "status": to_json(doc.get("status", []))}


def get_job_or_404(job_id: str) -> dict:
    job = processes.get_process_or_404(db(), job_id)
    if "workflow" not in job:
        raise NotFound()
    return job


def require_own_job(job_id: str) -> dict:
    """Job API calls: a job may only act on itself."""
    job = get_job_or_404(job_id)
    job_of_caller = client().job
    if job_of_caller is not None and job_of_caller["_id"] != job_id:
        raise InsufficientRights()
    return job


def get_readable_job(job_id: str) -> dict:
    """A job reads itself; a user reads the jobs they may read (see ``core.process_access``)."""
    job = require_own_job(job_id)
    if client().job is None:
        process_access.require_process_read(client(), job)
    return job


class JobQuery(PageQuery):
    state: processes.State | None = None
    workflow: processes.Workflow | None = None


@bp.get("")
@query(JobQuery)
def find(args: JobQuery):
    envelope = processes.find_processes(
        db(),
        page=args.page,
        per_page=args.per_page,
        type_=args.workflow,
        state=args.state,
        jobs_only=True,
        visible=process_access.process_visibility_query(client()),
    )
    return paginated(envelope, serialize_job)


@bp.get("/counts")
def counts():
    """Jobs per workflow and state, zeros included: what a pool's autoscaler polls."""
    return json_response(signals.job_counts(db()))


@bp.get("/<job_id>")
@jobs_allowed
def get(job_id: str):
    return json_response(serialize_job_full(get_readable_job(job_id)))


@bp.put("/<job_id>/cancel")
def cancel(job_id: str):
    rights.require_permission(client(), "cancel_job")
    get_job_or_404(job_id)
    return json_response(serialize_job_full(jobs.cancel(db(), settings().data_path, job_id)))


@bp.delete("/<job_id>")
def remove(job_id: str):
    rights.require_permission(client(), "remove_job")
    get_job_or_404(job_id)
    processes.remove_job(db(), job_id)
    return no_content()


# ---------------------------------------------------------------- Job API


@bp.post("/<job_id>/claim")
@jobs_only
def claim(job_id: str):
    """Take the job for this run; the answer carries the run's key (shown once, stored hashed)."""
    require_own_job(job_id)
    claimed = jobs.claim(db(), job_id, settings().heartbeat_timeout)
    if claimed is None:
        raise Conflict("Job is not waiting")
    doc, key = claimed
    return json_response({**serialize_job_full(doc), "key": key})


@bp.before_app_request
def jobs_act_only_as_their_credentials_allow() -> None:
    """A claim token only claims; a job key writes only what its workflow makes, and only its own."""
    job = getattr(g.get("client"), "job", None)
    if job is None:
        return
    if g.client.claim_only and request.endpoint != "jobs.claim":
        raise Unauthorized("A claim token only claims its job; use the key the claim returned")
    writes = request.method not in ("GET", "HEAD", "OPTIONS")
    if writes and request.blueprint != "jobs" and not jobs.may_write(job, request.view_args or {}):
        raise InsufficientRights()


@bp.put("/<job_id>/ping")
@jobs_only
def ping(job_id: str):
    require_own_job(job_id)
    return json_response({"cancel_requested": processes.heartbeat(db(), job_id)})


class StatusBody(Body):
    state: processes.State
    step: str | None = None
    progress: float | None = None
    error: str | None = None


@bp.post("/<job_id>/status")
@jobs_only
@body(StatusBody)
def push_status(data: StatusBody, job_id: str):
    job = require_own_job(job_id)
    if job["state"] in processes.FINISHED:
        raise Conflict("Job is finished")
    if data.state == "error" and not data.error:
        raise BadRequest("Missing error information")
    if data.state == "running":
        processes.report(db(), job_id, step=data.step, progress=data.progress)
    else:
        jobs.finish_job(db(), settings().data_path, job_id, data.state, data.error)
        metrics.observe_job_end(processes.get_process_or_404(db(), job_id))
    return json_response(serialize_job(processes.get_process_or_404(db(), job_id)), 201)
