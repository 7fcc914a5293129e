"""``/api/processes``: every long-running operation, polled by clients; ``DELETE`` cancels."""

from flask import Blueprint

from ..core import jobs, processes
from ..core.errors import NotPermitted
from ..core.utils import to_json
from .context import client, db, settings
from .responses import json_response, paginated
from .validation import PageQuery, query

bp = Blueprint("processes", __name__, url_prefix="/api/processes")

HIDDEN_FIELDS = ("key", "steps", "status", "args")


def serialize_process(doc: dict) -> dict:
    return to_json({k: v for k, v in doc.items() if k not in HIDDEN_FIELDS})


class ProcessQuery(PageQuery):
    type: str | None = None
    state: processes.State | None = None


def require_cancel_right(doc: dict) -> None:
    """The process's owner, an administrator or a holder of ``cancel_job`` may cancel it."""
    me = client()
    if (doc.get("user") or {}).get("id") != me.user_id and not me.has_permission("cancel_job"):
        raise NotPermitted()


@bp.get("")
@query(ProcessQuery)
def find(args: ProcessQuery):
    envelope = processes.find_processes(db(), page=args.page, per_page=args.per_page, type_=args.type, state=args.state)
    return paginated(envelope, serialize_process)


@bp.get("/<process_id>")
def get(process_id: str):
    return json_response(serialize_process(processes.get_process_or_404(db(), process_id)))


@bp.delete("/<process_id>")
def cancel(process_id: str):
    require_cancel_right(processes.get_process_or_404(db(), process_id))
    doc = jobs.cancel(db(), settings().data_path, process_id)
    return json_response(serialize_process(doc), 202, {"Content-Location": f"/api/processes/{process_id}"})
