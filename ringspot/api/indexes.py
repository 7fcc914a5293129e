"""``/api/indexes``: index builds, their files, and the Job API calls a build job makes."""

from flask import Blueprint

from ..core import indexes, references, rights
from ..core.errors import BadRequest, InsufficientRights
from ..core.utils import to_json
from ..tasks import indexes as index_tasks
from .auth import jobs_allowed, jobs_only
from .context import client, db, settings
from .responses import json_response, paginated
from .stored import send_stored
from .uploads import incoming_stream
from .validation import PageQuery, Query, query, takes_file

bp = Blueprint("indexes", __name__)


class IndexQuery(PageQuery):
    ready: bool | None = None


class FileQuery(Query):
    name: str


def serialize_index(doc: dict) -> dict:
    hidden = ("manifest", "sequence_otu_map", "files")
    change_count, modified_otu_count = indexes.change_counts(db(), doc["_id"])
    return {
        **to_json({k: v for k, v in doc.items() if k not in hidden}),
        "change_count": change_count,
        "modified_otu_count": modified_otu_count,
    }


def serialize_index_full(doc: dict) -> dict:
    return {
        **serialize_index(doc),
        "manifest": doc["manifest"],
        "files": to_json(doc.get("files", [])),
        "contributors": indexes.contributors(db(), doc["_id"]),
    }


def get_readable_index(index_id: str) -> dict:
    """The index, if the caller may read it: its own build job, an analysis job on it, or a reader of its reference."""
    index = indexes.get_index_or_404(db(), index_id)
    if client().job is not None:
        rights.require_job_on(client(), "index", index_id)
        return index
    reference = references.find_reference(db(), index["reference"]["id"])
    if reference is not None:
        rights.require_reference_read(client(), reference)
    return index


@bp.post("/api/refs/<ref_id>/indexes")
def build(ref_id: str):
    reference = references.get_reference_or_404(db(), ref_id)
    rights.require_reference_right(client(), reference, "build")
    index = index_tasks.start_build(db(), ref_id, client().user)
    return json_response(serialize_index(index), 201, {"Location": f"/api/indexes/{index['_id']}"})


@bp.get("/api/indexes")
@query(IndexQuery)
def find(args: IndexQuery):
    """Indexes of the references the caller may read (``ready=true``: the latest ready one of each)."""
    ref_ids = (
        None
        if client().administrator
        else references.visible_reference_ids(db(), rights.reference_visibility_query(client()))
    )
    if args.ready:
        return json_response([serialize_index(d) for d in indexes.latest_ready_indexes(db(), ref_ids)])
    return paginated(
        indexes.find_indexes(db(), page=args.page, per_page=args.per_page, ref_ids=ref_ids), serialize_index
    )


@bp.get("/api/indexes/<index_id>")
@jobs_allowed
def get(index_id: str):
    return json_response(serialize_index_full(get_readable_index(index_id)))


@bp.get("/api/indexes/<index_id>/files/<name>")
@jobs_allowed
def download(index_id: str, name: str):
    index = get_readable_index(index_id)
    if name == "otus.json.gz":
        key = indexes.otus_json_key(db(), settings().data_path, index)
    else:
        key = indexes.file_key(db(), index_id, name)
    return send_stored(key, download_name=name, mimetype="application/octet-stream")


@bp.post("/api/indexes/<index_id>/files")
@takes_file
@jobs_only
@query(FileQuery)
def upload(args: FileQuery, index_id: str):
    indexes.get_index_or_404(db(), index_id)
    rights.require_job_on(client(), "index", index_id)
    if (client().job or {}).get("workflow") != "build_index":
        raise InsufficientRights()
    if args.name not in indexes.INDEX_FILE_NAMES:
        raise BadRequest("Unsupported index file name")
    entry = indexes.add_file(
        db(), settings().data_path, index_id, args.name, incoming_stream(), settings().max_upload_bytes
    )
    return json_response(entry, 201, {"Location": f"/api/indexes/{index_id}/files/{args.name}"})


@bp.patch("/api/indexes/<index_id>")
@jobs_only
def finalize(index_id: str):
    indexes.get_index_or_404(db(), index_id)
    rights.require_job_on(client(), "index", index_id)
    return json_response(serialize_index_full(indexes.finalize(db(), settings().data_path, index_id)))
