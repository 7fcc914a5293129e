"""``/api/subtractions``: host genomes and their Bowtie2 indexes, and the Job API calls of create_subtraction."""

from __future__ import annotations

from flask import Blueprint
from pydantic import Field, field_validator

from ..core import rights, subtractions
from ..core.errors import BadRequest, InsufficientRights
from ..core.utils import to_json
from ..tasks import subtractions as subtraction_tasks
from .auth import jobs_allowed, jobs_only
from .context import client, db, settings
from .responses import json_response, no_content, paginated
from .stored import send_stored
from .uploads import incoming_stream
from .validation import Body, PageQuery, Query, body, parse_body, query, takes_file

bp = Blueprint("subtractions", __name__)


def _strip_name(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


class SubtractionQuery(PageQuery):
    find: str | None = None
    ready: bool | None = None
    #: ``short=true``: every ready subtraction as ``{id, name, nickname}``, unpaginated.
    short: bool = False


class CreateSubtractionBody(Body):
    name: str = Field(min_length=1, max_length=255)
    nickname: str = Field(default="", max_length=255)
    upload_id: str

    _name = field_validator("name")(_strip_name)


class EditSubtractionBody(Body):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    nickname: str | None = Field(default=None, max_length=255)

    _name = field_validator("name")(_strip_name)


class GcBody(Body):
    a: float | int
    t: float | int
    g: float | int
    c: float | int
    n: float | int


class FinalizeBody(Body):
    count: int = Field(ge=0)
    gc: GcBody


class FileQuery(Query):
    name: str


def serialize_subtraction(doc: dict) -> dict:
    data = to_json(doc)
    data["files"] = [
        {**f, "download_url": f"/api/subtractions/{doc['_id']}/files/{f['name']}"} for f in data.get("files", [])
    ]
    return data


def serialize_subtraction_full(doc: dict) -> dict:
    return {**serialize_subtraction(doc), "linked_samples": subtractions.linked_samples(db(), client(), doc["_id"])}


def get_readable_subtraction(subtraction_id: str) -> dict:
    """Any signed-in user may read subtractions; a job only those of its context."""
    doc = subtractions.get_subtraction_or_404(db(), subtraction_id)
    if client().job is not None:
        rights.require_job_on(client(), "subtraction", subtraction_id)
    return doc


def get_subtraction_for_create_job(subtraction_id: str) -> dict:
    doc = subtractions.get_subtraction_or_404(db(), subtraction_id)
    rights.require_job_on(client(), "subtraction", subtraction_id)
    if (client().job or {}).get("workflow") != "create_subtraction":
        raise InsufficientRights()
    return doc


@bp.get("/api/subtractions")
@query(SubtractionQuery)
def find(args: SubtractionQuery):
    """Subtractions by name; ``short=true`` lists the ready ones for pickers."""
    if args.short:
        return json_response([to_json(d) for d in subtractions.ready_subtractions(db())])
    envelope = subtractions.find_subtractions(
        db(), page=args.page, per_page=args.per_page, term=args.find, ready=args.ready
    )
    return paginated(envelope, serialize_subtraction)


@bp.post("/api/subtractions")
@body(CreateSubtractionBody)
def create(data: CreateSubtractionBody):
    """Create a subtraction from an uploaded FASTA; a create_subtraction job builds its index."""
    rights.require_permission(client(), "modify_subtraction")
    doc = subtraction_tasks.start_create_subtraction(db(), client(), data.name, data.nickname, data.upload_id)
    return json_response(serialize_subtraction_full(doc), 201, {"Location": f"/api/subtractions/{doc['_id']}"})


@bp.get("/api/subtractions/<subtraction_id>")
@jobs_allowed
def get(subtraction_id: str):
    """One subtraction with the samples that use it."""
    return json_response(serialize_subtraction_full(get_readable_subtraction(subtraction_id)))


@bp.patch("/api/subtractions/<subtraction_id>")
@jobs_allowed
def edit(subtraction_id: str):
    """Edit name or nickname (``modify_subtraction``); its create_subtraction job finalizes it."""
    if client().job is not None:
        return finalize(subtraction_id)
    rights.require_permission(client(), "modify_subtraction")
    subtractions.get_subtraction_or_404(db(), subtraction_id)
    changes = parse_body(EditSubtractionBody).model_dump(exclude_none=True)
    return json_response(serialize_subtraction_full(subtractions.edit_subtraction(db(), subtraction_id, changes)))


edit.openapi = {"body": EditSubtractionBody}


def finalize(subtraction_id: str):
    """Job API: the create_subtraction job's last call, with ``count`` and ``gc``."""
    doc = get_subtraction_for_create_job(subtraction_id)
    data = parse_body(FinalizeBody)
    updated = subtractions.finalize(db(), settings().data_path, doc, data.count, data.gc.model_dump())
    return json_response(serialize_subtraction_full(updated))


@bp.delete("/api/subtractions/<subtraction_id>")
def remove(subtraction_id: str):
    """Remove a subtraction and its files, unless samples use it."""
    rights.require_permission(client(), "modify_subtraction")
    doc = subtractions.get_subtraction_or_404(db(), subtraction_id)
    subtractions.remove_subtraction(db(), settings().data_path, doc)
    return no_content()


@bp.get("/api/subtractions/<subtraction_id>/files/<name>")
@jobs_allowed
def download(subtraction_id: str, name: str):
    """Download subtraction.fa.gz or one of the Bowtie2 index files."""
    doc = get_readable_subtraction(subtraction_id)
    return send_stored(subtractions.file_key(doc, name), download_name=name, mimetype="application/octet-stream")


@bp.post("/api/subtractions/<subtraction_id>/files")
@takes_file
@jobs_only
@query(FileQuery)
def upload(args: FileQuery, subtraction_id: str):
    """Job API: store a file of the subtraction being created."""
    doc = get_subtraction_for_create_job(subtraction_id)
    if args.name not in subtractions.FILE_NAMES:
        raise BadRequest("Unsupported subtraction file name")
    entry = subtractions.add_file(
        db(), settings().data_path, doc, args.name, incoming_stream(), settings().max_upload_bytes
    )
    return json_response(entry, 201, {"Location": f"/api/subtractions/{subtraction_id}/files/{args.name}"})
