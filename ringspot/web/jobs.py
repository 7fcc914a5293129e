"""``/jobs``: the caller's long-running operations (all with ``cancel_job``), live step and progress, cancel, error."""

from __future__ import annotations

from flask import render_template, request

from ..api.context import client, db
from ..api.processes import get_readable_process, serialize_for_caller
from ..core import process_access, processes
from ..core.errors import NotFound
from ..core.pagination import DEFAULT_PER_PAGE
from .blueprint import bp
from .paging import page_number, text_arg

#: States in which a process may still change; a list showing one keeps polling.
ACTIVE_STATES = ("waiting", "running")
#: The status that tells htmx to stop polling.
STOP_POLLING = 286


def process_page() -> dict:
    """The processes the API lists to the caller (theirs, or all with ``cancel_job``: who may
    read a process may also cancel it), as it serializes them."""
    state = text_arg("state") if text_arg("state") in processes.STATES else None
    envelope = processes.find_processes(
        db(),
        page=page_number(),
        per_page=DEFAULT_PER_PAGE,
        type_=text_arg("type") or None,
        state=state,
        visible=process_access.process_visibility_query(client()),
    )
    return {**envelope, "documents": [serialize_for_caller(doc) for doc in envelope["documents"]]}


def process_of(doc: dict) -> dict | None:
    """The process named by ``doc["job"]`` or ``doc["process"]`` as the API serves it; None when
    there is none or the caller may not read it (another user's job on a shared sample).

    Pages poll only a process that may still change, so a page reloaded when its process ended
    (``HX-Refresh``) polls no more.
    """
    named = doc.get("job") or doc.get("process") or {}
    if not named.get("id"):
        return None
    try:
        process = processes.get_process_or_404(db(), named["id"])
    except NotFound:
        return None
    return serialize_for_caller(process) if process_access.can_read_process(client(), process) else None


@bp.get("/jobs")
def jobs():
    return render_template("jobs.html", page=process_page(), states=processes.STATES)


@bp.get("/jobs/rows")
def job_rows():
    """The rows of ``/jobs`` alone, polled while any of them may still change."""
    page = process_page()
    active = any(doc["state"] in ACTIVE_STATES for doc in page["documents"])
    return render_template("_job_rows.html", page=page), 200 if active else STOP_POLLING


@bp.get("/jobs/<process_id>/progress")
def job_progress(process_id: str):
    """One process's step and progress, polled by the page of the object it works on; when the
    process completes, ``refresh=1`` reloads that page once (``HX-Refresh``) to show what it made."""
    doc = serialize_for_caller(get_readable_process(process_id))
    body = render_template("_progress.html", process=doc)
    if doc["state"] in ACTIVE_STATES:
        return body
    # Only a finished job made something to show; a failed one shows its error in place (its
    # object may be gone, as a failed create_sample leaves no sample behind).
    refresh = request.args.get("refresh") and doc["state"] == "complete"
    return body, STOP_POLLING, {"HX-Refresh": "true"} if refresh else {}
