"""``/api/refs``: references -- create (empty, clone, import, remote), edit, remove, export,
members with rights, remote releases and updates, and the reference's indexes."""

from __future__ import annotations

import io
from typing import Annotated, Literal

from flask import Blueprint, send_file
from pydantic import Field, StringConstraints, model_validator

from ..core import reference_content, references, rights
from ..core.rights import reference_visibility_query
from ..core.utils import to_json
from ..tasks import references as reference_tasks
from .context import client, db
from .otus import get_mapping_upload
from .processes import serialize_process
from .responses import json_response, no_content, paginated
from .validation import Body, PageQuery, Query, body, query

bp = Blueprint("refs", __name__, url_prefix="/api/refs")

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Slug = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")]


def serialize_reference(doc: dict) -> dict:
    return to_json(doc)


def serialize_member(doc: dict) -> dict:
    return to_json(doc)


def serialize_index(doc: dict) -> dict:
    """An index of the reference, with the seed's ``ref`` and how many changes it built."""
    return to_json({**doc, "ref": doc["reference"], **references.index_change_counts(db(), doc["_id"])})


def process_headers(process: dict) -> dict:
    return {"Content-Location": f"/api/processes/{process['_id']}"}


def get_readable_reference(ref_id: str) -> dict:
    ref = references.get_reference_or_404(db(), ref_id)
    rights.require_reference_read(client(), ref)
    return ref


def get_reference_with_right(ref_id: str, right: str) -> dict:
    ref = references.get_reference_or_404(db(), ref_id)
    rights.require_reference_right(client(), ref, right)
    return ref


# ---------------------------------------------------------------- request models


class FindReferences(PageQuery):
    find: str | None = None


class CreateReference(Body):
    name: Name
    description: str = ""
    data_type: Literal["genome", "barcode"] = "genome"
    organism: str = ""
    public: bool = False
    clone_from: Name | None = None
    import_from: Name | None = None
    remote_from: Slug | None = None
    #: A CSV upload (accession, otu, isolate, segment) for the GenBank or FASTA records of ``import_from``.
    mapping_from: Name | None = None

    @model_validator(mode="after")
    def one_source(self):
        if sum(bool(s) for s in (self.clone_from, self.import_from, self.remote_from)) > 1:
            raise ValueError("only one of clone_from, import_from and remote_from may be given")
        if self.mapping_from and not self.import_from:
            raise ValueError("mapping_from applies to import_from only")
        return self


class EditReference(Body):
    name: Name | None = None
    description: str | None = None
    data_type: Literal["genome", "barcode"] | None = None
    organism: str | None = None
    public: bool | None = None
    internal_control: str | None = None
    restrict_source_types: bool | None = None
    source_types: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]] | None = None

    def changes(self) -> dict:
        """The fields sent; only ``internal_control`` may be null (to clear it)."""
        return {
            k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None or k == "internal_control"
        }


class Rights(Body):
    build: bool = False
    modify: bool = False
    modify_otu: bool = False
    remove: bool = False


class AddUser(Rights):
    user_id: Name


class AddGroup(Rights):
    group_id: Name


class EditRights(Body):
    build: bool | None = None
    modify: bool | None = None
    modify_otu: bool | None = None
    remove: bool | None = None


class ExportQuery(Query):
    scope: Literal["current", "built", "unbuilt"] = "current"
    index_version: Annotated[int, Field(ge=0)] | None = None


# ---------------------------------------------------------------- references


@bp.get("")
@query(FindReferences)
def find(args: FindReferences):
    """Find the references the caller may see."""
    envelope = references.find_references(
        db(), reference_visibility_query(client()), term=args.find, page=args.page, per_page=args.per_page
    )
    return paginated(envelope, serialize_reference)


@bp.post("")
@body(CreateReference)
def create(data: CreateReference):
    """Create a reference: empty, or filled by cloning, importing a file, or a remote release."""
    rights.require_permission(client(), "create_ref")
    fields = data.model_dump(include={"name", "description", "data_type", "organism", "public"})
    user_id, process = client().user, None
    if data.clone_from:
        source = references.get_clone_source(db(), client(), data.clone_from)
        ref, process = reference_tasks.start_clone(db(), source, user_id, **fields)
    elif data.import_from:
        upload = references.get_import_upload(db(), client(), data.import_from)
        mapping = get_mapping_upload(data.mapping_from) if data.mapping_from else None
        ref, process = reference_tasks.start_import(db(), upload, user_id, mapping, **fields)
    elif data.remote_from:
        ref, process = reference_tasks.start_remote(db(), data.remote_from, user_id, **fields)
    else:
        ref = references.create_reference(db(), user_id, **fields)
    headers = {"Location": f"/api/refs/{ref['_id']}"}
    if process:
        headers.update(process_headers(process))
    return json_response(serialize_reference(references.complete_reference(db(), ref)), 201, headers)


@bp.get("/<ref_id>")
def get(ref_id: str):
    """Get a reference with its counts, contributors, latest build and internal control."""
    return json_response(serialize_reference(references.complete_reference(db(), get_readable_reference(ref_id))))


@bp.route("/<ref_id>", methods=["PATCH", "POST"])
@body(EditReference)
def edit(data: EditReference, ref_id: str):
    """Edit a reference's metadata, internal control and source types (right ``modify``)."""
    ref = get_reference_with_right(ref_id, "modify")
    edited = references.edit_reference(db(), ref, data.changes())
    return json_response(serialize_reference(references.complete_reference(db(), edited)))


@bp.delete("/<ref_id>")
def remove(ref_id: str):
    """Remove a reference now; a ``delete_reference`` process removes its OTUs and indexes."""
    ref = get_reference_with_right(ref_id, "remove")
    process = reference_tasks.start_removal(db(), ref, client().user)
    references.hide_reference(db(), ref)
    return json_response(serialize_process(process), 202, process_headers(process))


@bp.get("/<ref_id>/export")
@query(ExportQuery)
def export(args: ExportQuery, ref_id: str):
    """Download the reference as ``reference.json.gz`` (scope ``current``, ``built`` or ``unbuilt``)."""
    data = reference_content.export_file(db(), get_readable_reference(ref_id), args.scope, args.index_version)
    return send_file(
        io.BytesIO(data), mimetype="application/gzip", as_attachment=True, download_name="reference.json.gz"
    )


@bp.get("/<ref_id>/indexes")
@query(PageQuery)
def find_indexes(args: PageQuery, ref_id: str):
    """Find the reference's indexes."""
    get_readable_reference(ref_id)
    envelope = references.find_indexes(db(), ref_id, page=args.page, per_page=args.per_page)
    return paginated(envelope, serialize_index)


# ---------------------------------------------------------------- remote releases


@bp.get("/<ref_id>/release")
def get_release(ref_id: str):
    """The latest release seen for a remote reference (``POST`` checks again)."""
    ref = get_readable_reference(ref_id)
    references.require_remote(ref)
    return json_response(to_json(ref.get("release")))


@bp.post("/<ref_id>/release")
def check_release(ref_id: str):
    """Ask the release source for the latest release (right ``modify``)."""
    ref = get_reference_with_right(ref_id, "modify")
    process = reference_tasks.start_release_check(db(), ref, client().user)
    return json_response(serialize_process(process), 202, process_headers(process))


@bp.get("/<ref_id>/updates")
def find_updates(ref_id: str):
    """The releases installed or being installed, newest first."""
    ref = get_readable_reference(ref_id)
    references.require_remote(ref)
    return json_response(to_json(list(reversed(ref.get("updates") or []))))


@bp.post("/<ref_id>/updates")
def update(ref_id: str):
    """Install the latest release (right ``modify``)."""
    ref = get_reference_with_right(ref_id, "modify")
    update_doc, process = reference_tasks.start_update(db(), ref, client().user)
    return json_response(to_json(update_doc), 201, process_headers(process))


# ---------------------------------------------------------------- users and groups


@bp.get("/<ref_id>/users", defaults={"kind": "users"})
@bp.get("/<ref_id>/groups", defaults={"kind": "groups"})
def find_members(ref_id: str, kind: str):
    """The users (or groups) given rights on the reference."""
    return json_response([serialize_member(m) for m in get_readable_reference(ref_id).get(kind, [])])


@bp.post("/<ref_id>/users")
@body(AddUser)
def add_user(data: AddUser, ref_id: str):
    """Give a user rights on the reference (right ``modify``)."""
    ref = get_reference_with_right(ref_id, "modify")
    member = references.add_member(db(), ref, "users", data.user_id, data.model_dump())
    return json_response(serialize_member(member), 201, {"Location": f"/api/refs/{ref_id}/users/{member['id']}"})


@bp.post("/<ref_id>/groups")
@body(AddGroup)
def add_group(data: AddGroup, ref_id: str):
    """Give a group rights on the reference (right ``modify``)."""
    ref = get_reference_with_right(ref_id, "modify")
    member = references.add_member(db(), ref, "groups", data.group_id, data.model_dump())
    return json_response(serialize_member(member), 201, {"Location": f"/api/refs/{ref_id}/groups/{member['id']}"})


@bp.get("/<ref_id>/users/<member_id>", defaults={"kind": "users"})
@bp.get("/<ref_id>/groups/<member_id>", defaults={"kind": "groups"})
def get_member(ref_id: str, member_id: str, kind: str):
    """One user's (or group's) rights on the reference."""
    return json_response(
        serialize_member(references.get_member_or_404(get_readable_reference(ref_id), kind, member_id))
    )


@bp.patch("/<ref_id>/users/<member_id>", defaults={"kind": "users"})
@bp.patch("/<ref_id>/groups/<member_id>", defaults={"kind": "groups"})
@body(EditRights)
def edit_member(data: EditRights, ref_id: str, member_id: str, kind: str):
    """Change a user's (or group's) rights (right ``modify``)."""
    ref = get_reference_with_right(ref_id, "modify")
    changes = {k: v for k, v in data.model_dump().items() if v is not None}
    return json_response(serialize_member(references.edit_member(db(), ref, kind, member_id, changes)))


@bp.delete("/<ref_id>/users/<member_id>", defaults={"kind": "users"})
@bp.delete("/<ref_id>/groups/<member_id>", defaults={"kind": "groups"})
def remove_member(ref_id: str, member_id: str, kind: str):
    """Take a user's (or group's) rights away (right ``modify``)."""
    references.remove_member(db(), get_reference_with_right(ref_id, "modify"), kind, member_id)
    return no_content()
