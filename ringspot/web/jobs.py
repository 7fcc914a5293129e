"""``/jobs``: every long-running operation with its live step and progress, cancel and error."""

from __future__ import annotations

from flask import render_template, request

from ..api.context import db
from ..api.processes import serialize_process
from ..core import processes
from ..core.errors import NotFound
from ..core.pagination import DEFAULT_PER_PAGE
from .blueprint import bp
from .paging import page_number, text_arg

#: States in which a process may still change; a list showing one keeps polling.
ACTIVE_STATES = ("waiting", "running")
#: The status that tells htmx to stop polling.
STOP_POLLING = 286


def process_page() -> dict:
    state = text_arg("state") if text_arg("state") in processes.STATES else None
    envelope = processes.find_processes(
        db(), page=page_number(), per_page=DEFAULT_PER_PAGE, type_=text_arg("type") or None, state=state
    )
    return {**envelope, "documents": [serialize_process(doc) for doc in envelope["documents"]]}


def process_of(doc: dict) -> dict | None:
    """The process named by ``doc["job"]`` or ``doc["process"]`` as the API serves it; None when there is none.

    Pages poll only a process that may still change, so a page reloaded when its process ended
    (``HX-Refresh``) polls no more.
    """
    named = doc.get("job") or doc.get("process") or {}
    if not named.get("id"):
        return None
    try:
        return serialize_process(processes.get_process_or_404(db(), named["id"]))
    except NotFound:
        return None


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
    process ends, ``refresh=1`` reloads that page once (``HX-Refresh``) to show what it made."""
    doc = serialize_process(processes.get_process_or_404(db(), process_id))
    body = render_template("_progress.html", process=doc)
    if doc["state"] in ACTIVE_STATES:
        return body
    headers = {"HX-Refresh": "true"} if request.args.get("refresh") else {}
    return body, STOP_POLLING, headers
