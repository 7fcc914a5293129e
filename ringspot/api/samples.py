"""``/api/samples``: samples, their rights and read files, and the Job API calls of create_sample.

Analyses of a sample (``/api/samples/:id/analyses``) live in ``analyses.py``.
"""

from __future__ import annotations

import functools
from typing import Literal

from flask import Blueprint, request
from pydantic import Field, ValidationError, ValidationInfo, field_validator

from ..core import rights, samples
from ..core.errors import InsufficientRights, InvalidQuery
from ..core.utils import to_json
from ..tasks import samples as sample_tasks
from .auth import jobs_allowed, jobs_only
from .context import client, db, settings
from .responses import json_response, no_content, paginated
from .stored import send_stored
from .uploads import incoming_stream
from .validation import Body, PageQuery, _field_errors, body, parse_body, takes_file

bp = Blueprint("samples", __name__)

Name = Field(min_length=1, max_length=255)


def _strip_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


class SampleQuery(PageQuery):
    find: str | None = None
    label: list[str] = []
    workflows: list[str] = []


class CreateSampleBody(Body):
    name: str = Name
    host: str = ""
    isolate: str = ""
    locale: str = ""
    notes: str = ""
    library_type: Literal["normal", "srna", "amplicon"] = "normal"
    #: 3' adapter of a small-RNA library; detected among the common kits when not given.
    adapter: str | None = Field(default=None, min_length=1, max_length=200)
    files: list[str] = Field(min_length=1, max_length=2)
    subtractions: list[str] = []
    labels: list[str] = []
    group: str | None = None

    _name = field_validator("name")(_strip_name)

    @field_validator("adapter")
    @classmethod
    def _adapter(cls, value, info: ValidationInfo):
        if value is None:
            return None
        value = value.strip().upper()
        if not value or set(value) - set("ACGTN"):
            raise ValueError("must be a DNA sequence of the letters A, C, G, T and N")
        if info.data.get("library_type") != "srna":
            raise ValueError("only small-RNA libraries (library_type srna) are adapter-trimmed")
        return value


class EditSampleBody(Body):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    host: str | None = None
    isolate: str | None = None
    locale: str | None = None
    notes: str | None = None
    labels: list[str] | None = None
    subtractions: list[str] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value):
        return None if value is None else _strip_name(value)


class RightsBody(Body):
    group: str | None = None
    group_read: bool | None = None
    group_write: bool | None = None
    all_read: bool | None = None
    all_write: bool | None = None


class TrimmingBody(Body):
    """What adapter trimming did to a small-RNA sample (``bio.trim.TrimSummary``)."""

    adapter: str | None
    kit: str | None
    reads_in: int
    reads_out: int
    reads_with_adapter: int
    too_short: int
    min_length: int
    lengths: list[list[int]]


class QualityBody(Body):
    count: int
    encoding: str
    gc: float | int
    length: list[int] = Field(min_length=2, max_length=2)
    bases: list[list[float | int]]
    composition: list[list[float | int]]
    sequences: list[int]
    trimming: TrimmingBody | None = None
    warnings: list[str] = []


class FinalizeBody(Body):
    quality: QualityBody


def list_query(model):
    """Like ``validation.query``, keeping every value of the list fields (``?label=a&label=b``)."""

    lists = [name for name, field in model.model_fields.items() if field.annotation == list[str]]

    def parse():
        data = {**request.args.to_dict(), **{name: request.args.getlist(name) for name in lists}}
        try:
            return model.model_validate(data)
        except ValidationError as error:
            raise InvalidQuery("Invalid query", errors=_field_errors(error)) from None
        except ValueError as error:
            raise InvalidQuery("Invalid query", errors={"query": [str(error)]}) from None

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            return view(parse(), *args, **kwargs)

        wrapper.openapi = {**getattr(view, "openapi", {}), "query": model}  # type: ignore[attr-defined]
        return wrapper

    return decorate


def serialize_sample(doc: dict) -> dict:
    data = to_json(doc)
    data["reads"] = [
        {**r, "download_url": f"/api/samples/{doc['_id']}/reads/{r['name']}"} for r in data.get("reads", [])
    ]
    return data


def serialize_rights(doc: dict) -> dict:
    return to_json({"_id": doc["_id"], **{key: doc.get(key) for key in samples.RIGHTS_FIELDS}})


def get_readable_sample(sample_id: str) -> dict:
    """The sample, if the caller may read it: a job running for it, or a user with read right."""
    sample = samples.get_sample_or_404(db(), sample_id)
    if client().job is not None:
        rights.require_job_on(client(), "sample", sample_id)
    else:
        rights.require_sample_read(client(), sample)
    return sample


def get_sample_for_create_job(sample_id: str) -> dict:
    """Job API writes: only the create_sample job of this very sample."""
    sample = samples.get_sample_or_404(db(), sample_id)
    rights.require_job_on(client(), "sample", sample_id)
    if (client().job or {}).get("workflow") != "create_sample":
        raise InsufficientRights()
    return sample


@bp.get("/api/samples")
@list_query(SampleQuery)
def find(args: SampleQuery):
    """Samples the caller may read, newest first."""
    envelope = samples.find_samples(
        db(),
        client(),
        page=args.page,
        per_page=args.per_page,
        term=args.find,
        labels=args.label,
        workflows=args.workflows,
    )
    return paginated(envelope, serialize_sample)


@bp.post("/api/samples")
@body(CreateSampleBody)
def create(data: CreateSampleBody):
    """Create a sample from one or two read uploads; a create_sample job prepares it."""
    rights.require_permission(client(), "create_sample")
    sample = sample_tasks.start_create_sample(db(), client(), data.model_dump())
    return json_response(
        serialize_sample(samples.with_workflows(db(), sample)), 201, {"Location": f"/api/samples/{sample['_id']}"}
    )


@bp.get("/api/samples/<sample_id>")
@jobs_allowed
def get(sample_id: str):
    """One sample."""
    return json_response(serialize_sample(samples.with_workflows(db(), get_readable_sample(sample_id))))


@bp.patch("/api/samples/<sample_id>")
@jobs_allowed
def edit(sample_id: str):
    """Edit a sample (users with write right); its create_sample job finalizes it with ``quality``."""
    if client().job is not None:
        return finalize(sample_id)
    sample = samples.get_sample_or_404(db(), sample_id)
    rights.require_sample_write(client(), sample)
    changes = parse_body(EditSampleBody).model_dump(exclude_none=True)
    return json_response(
        serialize_sample(samples.with_workflows(db(), samples.edit_sample(db(), client(), sample_id, changes)))
    )


edit.openapi = {"body": EditSampleBody}


def finalize(sample_id: str):
    """Job API: the create_sample job's last call, with the sample's quality document."""
    sample = get_sample_for_create_job(sample_id)
    quality = parse_body(FinalizeBody).model_dump(exclude_unset=True)["quality"]  # as sent: no empty extras
    return json_response(serialize_sample(samples.finalize(db(), settings().data_path, sample, quality)))


@bp.patch("/api/samples/<sample_id>/rights")
@body(RightsBody)
def set_rights(data: RightsBody, sample_id: str):
    """Set who may read and write a sample (its owner or an administrator)."""
    sample = samples.get_sample_or_404(db(), sample_id)
    samples.require_owner_or_admin(client(), sample)
    updated = samples.set_rights(db(), sample_id, data.model_dump(exclude_none=True))
    return json_response(serialize_rights(updated))


@bp.delete("/api/samples/<sample_id>")
def remove(sample_id: str):
    """Remove a sample, its reads and its analyses."""
    sample = samples.get_sample_or_404(db(), sample_id)
    rights.require_sample_write(client(), sample)
    samples.remove_sample(db(), settings().data_path, sample)
    return no_content()


@bp.get("/api/samples/<sample_id>/reads/<name>")
@jobs_allowed
def download_reads(sample_id: str, name: str):
    """Download a read file (reads_1.fq.gz, reads_2.fq.gz)."""
    sample = get_readable_sample(sample_id)
    return send_stored(samples.stored_read(sample, name), download_name=name, mimetype="application/gzip")


@bp.put("/api/samples/<sample_id>/reads/<name>")
@takes_file
@jobs_only
def upload_reads(sample_id: str, name: str):
    """Job API: store a read file of the sample being created."""
    sample = get_sample_for_create_job(sample_id)
    entry = samples.store_reads(
        db(), settings().data_path, sample, name, incoming_stream(), settings().max_upload_bytes
    )
    return json_response(entry, 201, {"Location": f"/api/samples/{sample_id}/reads/{name}"})
