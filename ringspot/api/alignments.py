"""``/api/alignments`` and ``POST /api/samples/:id/alignments``: a sample's reads mapped to one genome.

The resource has the properties of One Codex's Alignment (seed 002): ``$uri``, ``created_at``,
``updated_at``, ``complete``, ``success``, ``error_msg``, ``job`` and ``sample`` as ``$ref``s,
``job_args``; plus the ``reference`` sequence it aligned to, its ``statistics`` and ``files``.
The same paths serve the alignment job's Job API calls: read its alignment and the genome's
FASTA, upload its files, finalize it with the statistics.
"""

from __future__ import annotations

from flask import Blueprint
from pydantic import Field, model_validator

from ..core import alignments, rights, samples
from ..core.utils import to_json
from ..tasks import alignments as alignment_tasks
from .auth import jobs_allowed, jobs_only
from .context import client, db, settings
from .responses import json_response, no_content, paginated
from .stored import send_stored
from .uploads import incoming_stream
from .validation import Body, PageQuery, Query, body, query, takes_file

bp = Blueprint("alignments", __name__)

Id = Field(default=None, min_length=1, max_length=64)


class AlignmentsQuery(PageQuery):
    sample: str | None = None
    complete: bool | None = None


class CreateAlignmentBody(Body):
    """One reference sequence: ``sequence_id``, or ``accession`` with the ``ref_id`` it is in."""

    sequence_id: str | None = Id
    accession: str | None = Id
    ref_id: str | None = Id

    @model_validator(mode="after")
    def _one_sequence(self):
        if self.sequence_id is not None and self.accession is not None:
            raise ValueError("give either sequence_id or accession, not both")
        if self.sequence_id is None and (self.accession is None or self.ref_id is None):
            raise ValueError("give sequence_id, or accession and ref_id")
        return self


class StatisticsBody(Body):
    mapped_reads: int = Field(ge=0)
    length: int = Field(gt=0)
    breadth: float | int = Field(ge=0, le=1)
    mean_depth: float | int = Field(ge=0)
    identity: float | int | None = Field(ge=0, le=100)


class FinalizeBody(Body):
    statistics: StatisticsBody


class FileQuery(Query):
    name: str


def serialize_alignment(doc: dict) -> dict:
    data = to_json(doc)
    alignment_id, reference = data["id"], data["reference"]
    return {
        "$uri": f"/api/alignments/{alignment_id}",
        "id": alignment_id,
        **{key: data[key] for key in ("created_at", "updated_at", "complete", "success", "error_msg")},
        "job": {"$ref": f"/api/jobs/{data['job']['id']}"},
        "job_args": data.get("job_args"),
        "sample": {"$ref": f"/api/samples/{data['sample']['id']}"},
        "reference": {
            key: reference.get(key) for key in ("id", "name", "sequence_id", "accession", "definition", "otu")
        },
        "tax_id": data.get("tax_id"),
        "statistics": data.get("statistics"),
        "files": [{**f, "download_url": f"/api/alignments/{alignment_id}/{f['name']}"} for f in data.get("files", [])],
        "user": data.get("user"),
    }


def get_readable_alignment(alignment_id: str) -> dict:
    """The alignment if the caller may read it: its own job, or a reader of its sample."""
    alignment = alignments.get_alignment_or_404(db(), alignment_id)
    if client().job is not None:
        rights.require_job_on(client(), "alignment", alignment_id)
    else:
        rights.require_sample_read(client(), alignments.get_parent_sample(db(), alignment))
    return alignment


def get_own_alignment(alignment_id: str) -> dict:
    """Job API writes: only the job running this alignment."""
    alignment = alignments.get_alignment_or_404(db(), alignment_id)
    rights.require_job_on(client(), "alignment", alignment_id)
    return alignment


@bp.get("/api/alignments")
@query(AlignmentsQuery)
def find(args: AlignmentsQuery):
    """Alignments of the samples the caller may read, newest first."""
    envelope = alignments.find_alignments(
        db(),
        page=args.page,
        per_page=args.per_page,
        base_query=alignments.visible_query(db(), client()),
        sample_id=args.sample,
        complete=args.complete,
    )
    return paginated(envelope, serialize_alignment)


@bp.post("/api/samples/<sample_id>/alignments")
@body(CreateAlignmentBody)
def create(data: CreateAlignmentBody, sample_id: str):
    """Align the sample's reads to one reference sequence (write right on the sample)."""
    sample = samples.get_sample_or_404(db(), sample_id)
    rights.require_sample_write(client(), sample)
    alignment = alignment_tasks.start_alignment(
        db(), client(), sample, sequence_id=data.sequence_id, accession=data.accession, ref_id=data.ref_id
    )
    return json_response(
        serialize_alignment(alignment),
        201,
        {
            "Location": f"/api/alignments/{alignment['_id']}",
            "Content-Location": f"/api/processes/{alignment['job']['id']}",
        },
    )


@bp.get("/api/alignments/<alignment_id>")
@jobs_allowed
def get(alignment_id: str):
    """One alignment, with its statistics once complete."""
    return json_response(serialize_alignment(get_readable_alignment(alignment_id)))


@bp.patch("/api/alignments/<alignment_id>")
@jobs_only
@body(FinalizeBody)
def finalize(data: FinalizeBody, alignment_id: str):
    """Job API: record the statistics and mark the alignment complete (once, after its files)."""
    get_own_alignment(alignment_id)
    alignment = alignments.finalize(db(), alignment_id, data.statistics.model_dump())
    return json_response(serialize_alignment(alignment))


@bp.delete("/api/alignments/<alignment_id>")
def remove(alignment_id: str):
    """Remove an alignment and its files once its job ended (write right on the sample)."""
    alignment = alignments.get_alignment_or_404(db(), alignment_id)
    rights.require_sample_write(client(), alignments.get_parent_sample(db(), alignment))
    alignments.remove_alignment(db(), settings().data_path, alignment)
    return no_content()


@bp.post("/api/alignments/<alignment_id>/files")
@takes_file
@jobs_only
@query(FileQuery)
def upload(args: FileQuery, alignment_id: str):
    """Job API: store one of the alignment's files (raw body or multipart ``file``); a name sent again replaces it."""
    get_own_alignment(alignment_id)
    entry = alignments.add_file(
        db(), settings().data_path, alignment_id, args.name, incoming_stream(), settings().max_upload_bytes
    )
    return json_response(entry, 201, {"Location": f"/api/alignments/{alignment_id}/{args.name}"})


@bp.get("/api/alignments/<alignment_id>/<name>")
@jobs_allowed
def download(alignment_id: str, name: str):
    """Download ``alignment.bam``, ``alignment.bam.bai``, ``depth.json.gz``, ``coverage.svg``, ``coverage.png``
    or the genome as ``reference.fa`` (also the job's input)."""
    alignment = get_readable_alignment(alignment_id)
    if client().job is None and name == alignments.REFERENCE_FASTA:
        rights.require_reference_read(client(), alignments.get_reference_or_400(db(), alignment))
    key = alignments.file_key(settings().data_path, alignment, name)
    image = name.startswith("coverage.")
    return send_stored(key, as_attachment=not image, download_name=name, mimetype=alignments.MEDIA_TYPES[name])
