"""``/api/hmms``: vFam annotations, the installed profile set, installing a new one, and its files for jobs."""

from flask import Blueprint

from ..core import hmms, rights
from ..core.errors import InsufficientRights
from ..core.utils import to_json
from ..tasks import hmms as hmm_tasks
from .auth import jobs_allowed
from .context import client, db, settings
from .processes import serialize_process
from .responses import json_response, paginated
from .stored import send_stored
from .validation import Body, PageQuery, Query, body, query

bp = Blueprint("hmms", __name__, url_prefix="/api/hmms")


class FindHmmsQuery(PageQuery):
    find: str | None = None


class InstallBody(Body):
    #: An upload of type ``hmm``: the HMMER3 profiles, plain or gzipped.
    upload_id: str
    #: An upload of type ``hmm``: the annotations JSON list, plain or gzipped.
    annotations_upload_id: str


class SetQuery(Query):
    set: str | None = None


def serialize_hmm(doc: dict) -> dict:
    return to_json({k: v for k, v in doc.items() if k != "set"})


def serialize_status(doc: dict) -> dict:
    return to_json(doc)


@bp.get("")
@query(FindHmmsQuery)
def find(args: FindHmmsQuery):
    """List the installed set's annotations, with the install status."""
    envelope = hmms.find_hmms(db(), page=args.page, per_page=args.per_page, term=args.find)
    return paginated({**envelope, "status": serialize_status(hmms.get_status(db()))}, serialize_hmm)


@bp.get("/status")
@jobs_allowed
def status():
    """The installed profile set and any install in progress."""
    return json_response(serialize_status(hmms.get_status(db())))


@bp.get("/status/updates")
def updates():
    """Every profile set installed so far, oldest first."""
    return json_response(to_json(hmms.get_status(db()).get("updates", [])))


@bp.post("/status/updates")
@body(InstallBody)
def install(data: InstallBody):
    """Install a profile set from two uploads; the install runs as an ``install_hmms`` process."""
    rights.require_permission(client(), "modify_hmm")
    hmms.check_install_uploads(db(), client(), data.upload_id, data.annotations_upload_id)
    process = hmm_tasks.start_install(db(), data.upload_id, data.annotations_upload_id, client().user)
    return json_response(serialize_process(process), 202, {"Content-Location": f"/api/processes/{process['_id']}"})


@bp.get("/files/<name>")
@jobs_allowed
@query(SetQuery)
def download(args: SetQuery, name: str):
    """``profiles.hmm`` or ``annotations.json.gz`` of the installed set (or of ``?set=``), for NuVs jobs."""
    job = client().job
    if job is not None and job.get("workflow") != "nuvs":
        raise InsufficientRights()
    key = hmms.set_file_key(db(), settings().data_path, name, args.set)
    return send_stored(key, download_name=name, mimetype="application/octet-stream")


@bp.get("/<hmm_id>")
def get(hmm_id: str):
    """One annotation."""
    return json_response(serialize_hmm(hmms.get_hmm_or_404(db(), hmm_id)))
