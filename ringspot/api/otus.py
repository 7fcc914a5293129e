"""OTUs, isolates and sequences: ``/api/refs/:ref_id/otus``, ``/api/otus/...`` and FASTA downloads.

Reads need read access to the OTU's reference; every write needs its ``modify_otu`` right and
becomes a new OTU version with a history entry. ``POST /api/refs/:ref_id/otus/import`` adds a
GenBank or FASTA upload's records the same way, in an ``import_records`` process.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from flask import Blueprint, Response
from pydantic import AfterValidator, Field, StringConstraints, model_validator

from ..bio.reference import IUPAC_NUCLEOTIDES, MOLECULES
from ..core import otus, references, rights, uploads
from ..core.errors import BadRequest
from ..core.rights import reference_visibility_query
from ..core.utils import to_json
from ..tasks import references as reference_tasks
from .context import client, db
from .processes import serialize_process
from .responses import json_response, no_content, paginated
from .validation import Body, PageQuery, body, query

bp = Blueprint("otus", __name__)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Text = Annotated[str, StringConstraints(strip_whitespace=True)]
_NOT_IUPAC = re.compile(f"[^{IUPAC_NUCLEOTIDES}]")


def _clean_sequence(value: str) -> str:
    cleaned = "".join(value.split()).upper()
    if not cleaned:
        raise ValueError("must not be empty")
    bad = _NOT_IUPAC.search(cleaned)
    if bad:
        raise ValueError(f"letter {bad.group()!r} at position {bad.start() + 1} is not an IUPAC nucleotide code")
    return cleaned


Sequence = Annotated[str, AfterValidator(_clean_sequence)]
SourceType = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True)]


def serialize_otu(doc: dict) -> dict:
    return to_json({k: v for k, v in doc.items() if k != "lower_name"})


def serialize_isolate(doc: dict) -> dict:
    return to_json(doc)


def serialize_sequence(doc: dict) -> dict:
    return to_json({k: v for k, v in doc.items() if k != "otu_id"})


def load_otu(otu_id: str, right: str | None = None) -> tuple[dict, dict]:
    """The OTU and its reference, if the caller may read it (or holds ``right`` on it)."""
    otu = otus.get_otu_or_404(db(), otu_id)
    ref = references.get_reference_or_404(db(), otu["reference"]["id"])
    if right:
        rights.require_reference_right(client(), ref, right)
    else:
        rights.require_reference_read(client(), ref)
    return otu, ref


# ---------------------------------------------------------------- request models


class Segment(Body):
    name: Name
    required: bool = True
    molecule: Literal[MOLECULES] = ""  # type: ignore[valid-type]


def _unique_segments(schema: list[Segment] | None) -> None:
    names = [segment.name for segment in schema or []]
    if len(names) != len(set(names)):
        raise ValueError("schema segment names must be unique")


class CreateOTU(Body):
    name: Name
    abbreviation: Text = ""
    otu_schema: list[Segment] = Field(default_factory=list, alias="schema")

    @model_validator(mode="after")
    def unique_segments(self):
        _unique_segments(self.otu_schema)
        return self


class EditOTU(Body):
    name: Name | None = None
    abbreviation: Text | None = None
    otu_schema: list[Segment] | None = Field(default=None, alias="schema")

    @model_validator(mode="after")
    def unique_segments(self):
        _unique_segments(self.otu_schema)
        return self

    def changes(self) -> dict:
        changes: dict = {k: v for k, v in (("name", self.name), ("abbreviation", self.abbreviation)) if v is not None}
        if self.otu_schema is not None:
            changes["schema"] = [segment.model_dump() for segment in self.otu_schema]
        return changes


class CreateIsolate(Body):
    source_type: SourceType = ""
    source_name: Text = ""
    default: bool = False


class EditIsolate(Body):
    source_type: SourceType | None = None
    source_name: Text | None = None


class CreateSequence(Body):
    accession: Name
    definition: Name
    sequence: Sequence
    host: Text = ""
    segment: Name | None = None
    target: Name | None = None


class EditSequence(Body):
    accession: Name | None = None
    definition: Name | None = None
    sequence: Sequence | None = None
    host: Text | None = None
    segment: Name | None = None
    target: Name | None = None


class ImportRecords(Body):
    upload_id: Name
    mapping_upload_id: Name | None = None


class FindOTUs(PageQuery):
    find: str | None = None
    verified: bool | None = None
    names: bool = False


# ---------------------------------------------------------------- OTUs


@bp.get("/api/otus")
@query(FindOTUs)
def find_all(args: FindOTUs):
    """Find OTUs in every reference the caller may see."""
    ref_ids = references.visible_reference_ids(db(), reference_visibility_query(client()))
    envelope = otus.find_otus(
        db(), {"$in": ref_ids}, term=args.find, verified=args.verified, page=args.page, per_page=args.per_page
    )
    return paginated(envelope, serialize_otu)


@bp.get("/api/refs/<ref_id>/otus")
@query(FindOTUs)
def find(args: FindOTUs, ref_id: str):
    """Find a reference's OTUs by name or abbreviation; ``names=true`` lists ``{id, name}`` only."""
    rights.require_reference_read(client(), references.get_reference_or_404(db(), ref_id))
    if args.names:
        return json_response([to_json(o) for o in otus.otu_names(db(), ref_id, term=args.find, verified=args.verified)])
    envelope = otus.find_otus(
        db(), ref_id, term=args.find, verified=args.verified, page=args.page, per_page=args.per_page
    )
    return paginated(envelope, serialize_otu)


@bp.post("/api/refs/<ref_id>/otus")
@body(CreateOTU)
def create(data: CreateOTU, ref_id: str):
    """Create an OTU (right ``modify_otu``)."""
    ref = references.get_reference_or_404(db(), ref_id)
    rights.require_reference_right(client(), ref, "modify_otu")
    joined = otus.create_otu(
        db(),
        ref,
        name=data.name,
        abbreviation=data.abbreviation,
        schema=[s.model_dump() for s in data.otu_schema],
        user_id=client().user,
    )
    doc = otus.complete_otu(db(), otus.get_otu_or_404(db(), joined["_id"]))
    return json_response(serialize_otu(doc), 201, {"Location": f"/api/otus/{joined['_id']}"})


@bp.post("/api/refs/<ref_id>/otus/import")
@body(ImportRecords)
def import_records(data: ImportRecords, ref_id: str):
    """Add a GenBank or FASTA upload's records to the reference, in a process (right ``modify_otu``)."""
    ref = references.get_reference_or_404(db(), ref_id)
    rights.require_reference_right(client(), ref, "modify_otu")  # 403, as for every OTU write
    upload = references.get_import_upload(db(), client(), data.upload_id)
    mapping = get_mapping_upload(data.mapping_upload_id) if data.mapping_upload_id else None
    process = reference_tasks.start_records_import(db(), ref, upload, mapping, client().user)
    return json_response(serialize_process(process), 202, {"Content-Location": f"/api/processes/{process['_id']}"})


def get_mapping_upload(upload_id: str) -> dict:
    """The caller's mapping CSV, uploaded as a ``reference`` file."""
    upload = uploads.get_usable_upload(db(), client(), upload_id, "Mapping file does not exist")
    if upload.get("type") != "reference":
        raise BadRequest("Mapping file must be uploaded with type=reference")
    return upload


@bp.get("/api/otus/<otu_id>")
def get(otu_id: str):
    """Get an OTU with its isolates, sequences, issues and most recent change."""
    otu, _ = load_otu(otu_id)
    return json_response(serialize_otu(otus.complete_otu(db(), otu)))


@bp.patch("/api/otus/<otu_id>")
@body(EditOTU)
def edit(data: EditOTU, otu_id: str):
    """Edit an OTU's name, abbreviation or schema (right ``modify_otu``)."""
    otu, _ = load_otu(otu_id, "modify_otu")
    otus.edit_otu(db(), otu, data.changes(), client().user)
    return json_response(serialize_otu(otus.complete_otu(db(), otus.get_otu_or_404(db(), otu_id))))


@bp.delete("/api/otus/<otu_id>")
def remove(otu_id: str):
    """Remove an OTU and its sequences (right ``modify_otu``)."""
    otu, _ = load_otu(otu_id, "modify_otu")
    otus.remove_otu(db(), otu, client().user)
    return no_content()


# ---------------------------------------------------------------- isolates


@bp.get("/api/otus/<otu_id>/isolates")
def find_isolates(otu_id: str):
    """The OTU's isolates with their sequences."""
    otu, _ = load_otu(otu_id)
    return json_response([serialize_isolate(i) for i in otus.join_otu(db(), otu)["isolates"]])


@bp.post("/api/otus/<otu_id>/isolates")
@body(CreateIsolate)
def add_isolate(data: CreateIsolate, otu_id: str):
    """Add an isolate; the first one, or one sent with ``default: true``, is the default."""
    otu, ref = load_otu(otu_id, "modify_otu")
    isolate = otus.add_isolate(db(), ref, otu, **data.model_dump(), user_id=client().user)
    return json_response(serialize_isolate(isolate), 201, {"Location": f"/api/otus/{otu_id}/isolates/{isolate['id']}"})


@bp.get("/api/otus/<otu_id>/isolates/<isolate_id>")
def get_isolate(otu_id: str, isolate_id: str):
    """One isolate with its sequences."""
    otu, _ = load_otu(otu_id)
    return json_response(serialize_isolate(otus.get_isolate_or_404(otus.join_otu(db(), otu), isolate_id)))


@bp.patch("/api/otus/<otu_id>/isolates/<isolate_id>")
@body(EditIsolate)
def edit_isolate(data: EditIsolate, otu_id: str, isolate_id: str):
    """Change an isolate's source type or name (right ``modify_otu``)."""
    otu, ref = load_otu(otu_id, "modify_otu")
    changes = data.model_dump(exclude_none=True)
    return json_response(serialize_isolate(otus.edit_isolate(db(), ref, otu, isolate_id, changes, client().user)))


@bp.put("/api/otus/<otu_id>/isolates/<isolate_id>/default")
def set_default_isolate(otu_id: str, isolate_id: str):
    """Make an isolate the OTU's default (right ``modify_otu``)."""
    otu, _ = load_otu(otu_id, "modify_otu")
    return json_response(serialize_isolate(otus.set_default_isolate(db(), otu, isolate_id, client().user)))


@bp.delete("/api/otus/<otu_id>/isolates/<isolate_id>")
def remove_isolate(otu_id: str, isolate_id: str):
    """Remove an isolate and its sequences (right ``modify_otu``)."""
    otu, _ = load_otu(otu_id, "modify_otu")
    otus.remove_isolate(db(), otu, isolate_id, client().user)
    return no_content()


# ---------------------------------------------------------------- sequences


@bp.get("/api/otus/<otu_id>/isolates/<isolate_id>/sequences")
def find_sequences(otu_id: str, isolate_id: str):
    """The isolate's sequences."""
    otu, _ = load_otu(otu_id)
    isolate = otus.get_isolate_or_404(otus.join_otu(db(), otu), isolate_id)
    return json_response([serialize_sequence(s) for s in isolate["sequences"]])


@bp.post("/api/otus/<otu_id>/isolates/<isolate_id>/sequences")
@body(CreateSequence)
def create_sequence(data: CreateSequence, otu_id: str, isolate_id: str):
    """Add a sequence to an isolate; its ``segment`` must be in the OTU's schema (right ``modify_otu``)."""
    otu, _ = load_otu(otu_id, "modify_otu")
    sequence = otus.create_sequence(db(), otu, isolate_id, data.model_dump(), client().user)
    location = f"/api/otus/{otu_id}/isolates/{isolate_id}/sequences/{sequence['_id']}"
    return json_response(serialize_sequence(sequence), 201, {"Location": location})


@bp.get("/api/otus/<otu_id>/isolates/<isolate_id>/sequences/<sequence_id>")
def get_sequence(otu_id: str, isolate_id: str, sequence_id: str):
    """One sequence."""
    otu, _ = load_otu(otu_id)
    return json_response(
        serialize_sequence(otus.get_sequence_or_404(otus.join_otu(db(), otu), isolate_id, sequence_id))
    )


@bp.patch("/api/otus/<otu_id>/isolates/<isolate_id>/sequences/<sequence_id>")
@body(EditSequence)
def edit_sequence(data: EditSequence, otu_id: str, isolate_id: str, sequence_id: str):
    """Edit a sequence (right ``modify_otu``)."""
    otu, _ = load_otu(otu_id, "modify_otu")
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    sequence = otus.edit_sequence(db(), otu, isolate_id, sequence_id, changes, client().user)
    return json_response(serialize_sequence(sequence))


@bp.delete("/api/otus/<otu_id>/isolates/<isolate_id>/sequences/<sequence_id>")
def remove_sequence(otu_id: str, isolate_id: str, sequence_id: str):
    """Remove a sequence (right ``modify_otu``)."""
    otu, _ = load_otu(otu_id, "modify_otu")
    otus.remove_sequence(db(), otu, isolate_id, sequence_id, client().user)
    return no_content()


# ---------------------------------------------------------------- FASTA downloads


def fasta_response(records, filename: str) -> Response:
    return Response(
        "".join(records), mimetype="text/plain", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@bp.get("/download/otus/<otu_id>")
def download_otu(otu_id: str):
    """Every sequence of the OTU as FASTA."""
    otu, _ = load_otu(otu_id)
    joined = otus.join_otu(db(), otu)
    return fasta_response(otus.fasta_records(joined, joined["isolates"]), otus.fasta_file_name(otu["name"]))


@bp.get("/download/otus/<otu_id>/isolates/<isolate_id>")
def download_isolate(otu_id: str, isolate_id: str):
    """One isolate's sequences as FASTA."""
    otu, _ = load_otu(otu_id)
    isolate = otus.get_isolate_or_404(otus.join_otu(db(), otu), isolate_id)
    name = otus.fasta_file_name(otu["name"], otus.format_isolate_name(isolate))
    return fasta_response(otus.fasta_records(otu, [isolate]), name)


@bp.get("/download/sequences/<sequence_id>")
def download_sequence(sequence_id: str):
    """One sequence as FASTA."""
    sequence = otus.get_sequence_doc_or_404(db(), sequence_id)
    otu, _ = load_otu(sequence["otu_id"])
    isolate = otus.get_isolate_or_404(otus.join_otu(db(), otu), sequence["isolate_id"])
    only = {**isolate, "sequences": [s for s in isolate["sequences"] if s["_id"] == sequence_id]}
    name = otus.fasta_file_name(otu["name"], otus.format_isolate_name(isolate), sequence_id)
    return fasta_response(otus.fasta_records(otu, [only]), name)
