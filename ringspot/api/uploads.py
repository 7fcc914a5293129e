"""``/api/uploads``: files streamed to the store before a reference, sample or subtraction uses them."""

from typing import Literal
from urllib.parse import parse_qsl

from flask import Blueprint, request

from ..core import rights, uploads
from ..core.errors import BadRequest, PayloadTooLarge
from ..core.files import ExactLength
from ..core.utils import to_json
from .auth import jobs_allowed
from .context import client, db, settings
from .responses import json_response, no_content, paginated
from .stored import send_stored
from .validation import PageQuery, Query, query, takes_file

bp = Blueprint("uploads", __name__, url_prefix="/api/uploads")


class UploadQuery(Query):
    name: str
    type: Literal["reference", "reads", "subtraction", "hmm"]


class FindUploadsQuery(PageQuery):
    type: Literal["reference", "reads", "subtraction", "hmm"] | None = None
    user: str | None = None


def require_utf8_query() -> None:
    """Refuse a query string whose percent-escapes are not UTF-8 (the decoder would keep them literally)."""
    try:
        parse_qsl(request.query_string.decode("latin-1"), encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("File name is not valid UTF-8") from None


def incoming_stream():
    """The uploaded bytes: the ``file`` part of a multipart form, or the raw request body."""
    declared = request.content_length
    if declared is not None and declared > settings().max_upload_bytes + 64 * 1024:
        raise PayloadTooLarge(f"File is larger than the upload limit of {settings().max_upload_bytes} bytes")
    if request.mimetype == "multipart/form-data":
        if "file" not in request.files:
            raise BadRequest("Multipart upload must have a 'file' part")
        return request.files["file"].stream
    return ExactLength(request.stream, declared) if declared is not None else request.stream


@bp.post("")
@takes_file
@query(UploadQuery)
def create(args: UploadQuery):
    rights.require_permission(client(), "upload_file")
    require_utf8_query()
    doc = uploads.create_upload(
        db(),
        settings().data_path,
        incoming_stream(),
        name=args.name,
        upload_type=args.type,
        user_id=client().user,
        limit=settings().max_upload_bytes,
    )
    return json_response(to_json(doc), 201, {"Location": f"/api/uploads/{doc['_id']}"})


@bp.get("")
@query(FindUploadsQuery)
def find(args: FindUploadsQuery):
    envelope = uploads.find_uploads(
        db(), client(), page=args.page, per_page=args.per_page, upload_type=args.type, user_id=args.user
    )
    return paginated(envelope, to_json)


@bp.get("/<upload_id>")
@jobs_allowed
def download(upload_id: str):
    doc = uploads.get_upload_or_404(db(), upload_id)
    if client().job is not None:
        rights.require_job_on(client(), "upload", upload_id)
    else:
        rights.require_upload_use(client(), doc)
    return send_stored(uploads.upload_key(upload_id), download_name=doc["name"], mimetype="application/octet-stream")


@bp.delete("/<upload_id>")
def remove(upload_id: str):
    rights.require_upload_use(client(), uploads.get_upload_or_404(db(), upload_id))
    rights.require_permission(client(), "remove_file")
    uploads.remove_upload(db(), settings().data_path, upload_id)
    return no_content()
