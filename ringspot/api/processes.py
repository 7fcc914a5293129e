"""``/api/processes``: every long-running operation, polled by clients; ``DELETE`` cancels."""

from flask import Blueprint

from ..core import jobs, process_access, processes
from ..core.utils import to_json
from .context import client, db, settings
from .responses import json_response, paginated
from .validation import PageQuery, query

bp = Blueprint("processes", __name__, url_prefix="/api/processes")

HIDDEN_FIELDS = ("key", "key_expires_at", "claim_token", "steps", "status", "args")


def serialize_process(doc: dict, show_objects: bool = True) -> dict:
    """The process as clients see it; without ``context`` for callers who may not read its objects."""
    hidden = HIDDEN_FIELDS if show_objects else (*HIDDEN_FIELDS, "context")
    return to_json({k: v for k, v in doc.items() if k not in hidden})


def shows_objects(doc: dict) -> bool:
    """Whether the caller may see what ``doc`` is about: a job itself, or a reader of every object it names."""
    return client().job is not None or process_access.can_read_objects(db(), client(), doc)


def serialize_for_caller(doc: dict) -> dict:
    return serialize_process(doc, shows_objects(doc))


def serialize_process_full(doc: dict) -> dict:
    """One process in full: also its ``steps`` in order, each ``{name, description}``."""
    return {**serialize_for_caller(doc), "steps": doc.get("steps", [])}


def get_readable_process(process_id: str) -> dict:
    doc = processes.get_process_or_404(db(), process_id)
    process_access.require_process_read(client(), doc)
    return doc


class ProcessQuery(PageQuery):
    type: str | None = None
    state: processes.State | None = None


@bp.get("")
@query(ProcessQuery)
def find(args: ProcessQuery):
    envelope = processes.find_processes(
        db(),
        page=args.page,
        per_page=args.per_page,
        type_=args.type,
        state=args.state,
        visible=process_access.process_visibility_query(client()),
    )
    return paginated(envelope, serialize_for_caller)


@bp.get("/<process_id>")
def get(process_id: str):
    return json_response(serialize_process_full(get_readable_process(process_id)))


@bp.delete("/<process_id>")
def cancel(process_id: str):
    process_access.require_process_cancel(client(), processes.get_process_or_404(db(), process_id))
    doc = jobs.cancel(db(), settings().data_path, process_id)
    return json_response(serialize_for_caller(doc), 202, {"Content-Location": f"/api/processes/{process_id}"})
