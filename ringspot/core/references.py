"""Reference documents: create (empty, clone, import, remote), edit, members and their rights,
releases of remote references, and the computed fields every read adds.

Stored in the ``refs`` collection ("references" is an SQL keyword nx-27017 cannot use). The
OTUs themselves are ``core.otus``; whole-reference loading, updating, removal and export are
``core.reference_content``, run by the actors in ``tasks.references``. A reference made to be
filled by one of them names its process (``process_id``); ``tasks.references`` writes that
process and sends it, and takes the reference back if it cannot.
"""

from __future__ import annotations

import datetime

from pymongo.database import Database

from . import history, uploads
from .auth import Client
from .db import append, update_array
from .errors import BadRequest, Conflict, NotFound
from .pagination import count, paginate
from .rights import REFERENCE_RIGHTS, can_read_reference
from .utils import new_id, now

DEFAULT_SOURCE_TYPES = ["isolate", "strain"]


MEMBER_KINDS = {"users": "User", "groups": "Group"}
#: Fields of a release kept on the reference when an update is installed.
UPDATE_FIELDS = ("id", "name", "body", "filename", "size", "html_url", "published_at")


# ---------------------------------------------------------------- reading


def find_reference(db: Database, ref_id: str) -> dict | None:
    return db.refs.find_one({"_id": ref_id})


def get_reference_or_404(db: Database, ref_id: str) -> dict:
    ref = find_reference(db, ref_id)
    if ref is None:
        raise NotFound()
    return ref


def latest_build(db: Database, ref_id: str) -> dict | None:
    """``{id, version, created_at, user}`` of the newest ready index, or None."""
    docs = list(
        db.indexes.find({"reference.id": ref_id, "ready": True}, {"_id": 1, "version": 1, "created_at": 1, "user": 1})
        .sort("version", -1)
        .limit(1)
    )
    if not docs:
        return None
    return {
        "id": docs[0]["_id"],
        "version": docs[0]["version"],
        "created_at": docs[0].get("created_at"),
        "user": docs[0].get("user"),
    }


def complete_reference(db: Database, ref: dict) -> dict:
    """The reference with what is computed on read: counts, contributors, latest build, control name."""
    ref_id = ref["_id"]
    internal_control = None
    if ref.get("internal_control"):
        otu = db.otus.find_one({"_id": ref["internal_control"]["id"], "reference.id": ref_id}, {"name": 1})
        if otu:
            internal_control = {"id": otu["_id"], "name": otu["name"]}
    return {
        **ref,
        "internal_control": internal_control,
        "otu_count": count(db.otus, {"reference.id": ref_id}),
        "unbuilt_change_count": history.unbuilt_change_count(db, ref_id),
        "contributors": history.contributors(db, ref_id),
        "latest_build": latest_build(db, ref_id),
    }


def find_references(db: Database, visible: dict, *, term: str | None, page: int, per_page: int) -> dict:
    """References the client may see (``visible``, from ``rights.reference_visibility_query``)."""
    query = {}
    if term:
        pattern = "".join(f"\\{c}" if c in r".^$*+?{}[]\|()" else c for c in term)
        query = {
            "$or": [{"name": {"$regex": pattern, "$options": "i"}}, {"data_type": {"$regex": pattern, "$options": "i"}}]
        }
    envelope = paginate(db.refs, query, base_query=visible, page=page, per_page=per_page, sort=[("name", 1)])
    envelope["documents"] = [complete_reference(db, ref) for ref in envelope["documents"]]
    return envelope


def visible_reference_ids(db: Database, visible: dict) -> list[str]:
    return [ref["_id"] for ref in db.refs.find(visible, {"_id": 1})]


def find_indexes(db: Database, ref_id: str, *, page: int, per_page: int) -> dict:
    """The reference's indexes, newest first, without their manifests and sequence maps."""
    return paginate(
        db.indexes,
        {},
        base_query={"reference.id": ref_id},
        page=page,
        per_page=per_page,
        sort=[("version", -1)],
        projection={"manifest": 0, "sequence_otu_map": 0, "files": 0},
    )


def index_change_counts(db: Database, index_id: str) -> dict:
    """``change_count`` (history entries an index built) and ``modified_otu_count`` (their OTUs)."""
    return {
        "change_count": count(db.history, {"index.id": index_id}),
        "modified_otu_count": len(db.history.distinct("otu.id", {"index.id": index_id})),
    }


# ---------------------------------------------------------------- creating


def _owner(user_id: str) -> dict:
    return {"id": user_id, "created_at": now(), **{right: True for right in REFERENCE_RIGHTS}}


def _new_reference(
    ref_id: str,
    user_id: str,
    *,
    name: str,
    description: str,
    data_type: str | None,
    organism: str | None,
    public: bool,
    **extra,
) -> dict:
    return {
        "_id": ref_id,
        "name": name,
        "description": description,
        "data_type": data_type,
        "organism": organism,
        "public": public,
        "created_at": now(),
        "user": {"id": user_id},
        "internal_control": None,
        "restrict_source_types": False,
        "source_types": list(DEFAULT_SOURCE_TYPES),
        "groups": [],
        "users": [_owner(user_id)],
        **extra,
    }


def create_reference(db: Database, user_id: str, **fields) -> dict:
    """An empty reference; the creator gets every right."""
    ref = _new_reference(new_id(), user_id, **fields)
    db.refs.insert_one(ref)
    return ref


def get_clone_source(db: Database, client: Client, source_id: str) -> dict:
    """The reference to copy; one the caller may not read answers as a missing one."""
    source = db.refs.find_one({"_id": source_id})
    if source is None or not can_read_reference(client, source):
        raise BadRequest("Source reference does not exist")
    return source


def create_clone(db: Database, source: dict, user_id: str, process_id: str, **fields) -> dict:
    """A reference that the ``clone_reference`` process ``process_id`` fills with copies of ``source``'s OTUs."""
    fields.update(data_type=source.get("data_type"), organism=source.get("organism"))
    ref = _new_reference(
        new_id(),
        user_id,
        **fields,
        cloned_from={"id": source["_id"], "name": source["name"]},
        process={"id": process_id},
    )
    db.refs.insert_one(ref)
    return ref


def get_import_upload(db: Database, client: Client, upload_id: str) -> dict:
    """The caller's reference upload; another user's answers as a missing one."""
    upload = uploads.get_usable_upload(db, client, upload_id, "File does not exist")
    if upload.get("type") != "reference":
        raise BadRequest("File is not a reference file")
    return upload


def create_import(db: Database, upload: dict, user_id: str, process_id: str, **fields) -> dict:
    """A reference that the ``import_reference`` process ``process_id`` fills from an uploaded
    ``reference.json.gz``, which it reserves.

    ``data_type`` and ``organism`` come from the file once it is read.
    """
    fields.update(data_type=None, organism=None)
    uploads.reserve(db, [upload["_id"]])
    imported_from = {"id": upload["_id"], "name": upload["name"], "user": upload.get("user")}
    ref = _new_reference(new_id(), user_id, **fields, imported_from=imported_from, process={"id": process_id})
    db.refs.insert_one(ref)
    return ref


def create_remote(db: Database, slug: str, user_id: str, process_id: str, **fields) -> dict:
    """A reference that the ``remote_reference`` process ``process_id`` fills from the latest release of ``slug``."""
    fields.update(data_type=None, organism=None)
    created = now()
    remotes_from = {"slug": slug, "update": None, "last_checked": created, "last_updated": created}
    ref = _new_reference(
        new_id(),
        user_id,
        **fields,
        remotes_from=remotes_from,
        release=None,
        installed=None,
        updates=[],
        updating=False,
        process={"id": process_id},
    )
    db.refs.insert_one(ref)
    return ref


# ---------------------------------------------------------------- editing and removing


def _clean_source_types(source_types: list[str]) -> list[str]:
    cleaned: list[str] = []
    for source_type in source_types:
        source_type = source_type.strip().lower()
        if source_type and source_type not in cleaned:
            cleaned.append(source_type)
    return cleaned


def edit_reference(db: Database, ref: dict, changes: dict) -> dict:
    """Edit metadata; ``internal_control`` takes an OTU id of this reference, or ``""``/null to clear."""
    update = dict(changes)
    if "internal_control" in changes:
        otu_id = changes["internal_control"]
        if otu_id:
            if db.otus.find_one({"_id": otu_id, "reference.id": ref["_id"]}, {"_id": 1}) is None:
                raise BadRequest("Internal control does not exist")
            update["internal_control"] = {"id": otu_id}
        else:
            update["internal_control"] = None
    if "source_types" in changes:
        update["source_types"] = _clean_source_types(changes["source_types"])
    if update:
        db.refs.update_one({"_id": ref["_id"]}, {"$set": update})
    if "name" in changes and changes["name"] != ref["name"]:
        # Analyses keep the reference's name for display.
        db.analyses.update_many({"reference.id": ref["_id"]}, {"$set": {"reference.name": changes["name"]}})
    return get_reference_or_404(db, ref["_id"])


def hide_reference(db: Database, ref: dict) -> None:
    """Remove the reference document itself, once its clean-up is queued (or a load of it ended for good)."""
    db.refs.delete_one({"_id": ref["_id"]})


def reference_exists(db: Database, ref_id: str) -> bool:
    return db.refs.find_one({"_id": ref_id}, {"_id": 1}) is not None


def set_content_type(db: Database, ref_id: str, data_type: str, organism: str) -> None:
    """Record the data type and organism a loaded file declares."""
    db.refs.update_one({"_id": ref_id}, {"$set": {"data_type": data_type, "organism": organism}})


# ---------------------------------------------------------------- users and groups with rights


def get_member_or_404(ref: dict, kind: str, member_id: str) -> dict:
    for member in ref.get(kind, []):
        if member["id"] == member_id:
            return member
    raise NotFound()


def add_member(db: Database, ref: dict, kind: str, member_id: str, rights: dict) -> dict:
    """Give a user or group (``kind``: ``users``/``groups``) rights on the reference."""
    label = MEMBER_KINDS[kind]
    if db[kind].find_one({"_id": member_id}, {"_id": 1}) is None:
        raise BadRequest(f"{label} does not exist")
    member = {"id": member_id, "created_at": now(), **{right: bool(rights.get(right)) for right in REFERENCE_RIGHTS}}

    def add(members: list) -> list | None:
        return None if any(m["id"] == member_id for m in members) else members + [member]

    if update_array(db.refs, ref["_id"], kind, add) is None:
        raise BadRequest(f"{label} already exists")
    return member


def require_not_creator(ref: dict, kind: str, member_id: str) -> None:
    """The user who made a reference keeps every right on it: a holder of ``modify`` cannot lock them out."""
    if kind == "users" and member_id == (ref.get("user") or {}).get("id"):
        raise Conflict("The reference's creator keeps every right")


def edit_member(db: Database, ref: dict, kind: str, member_id: str, changes: dict) -> dict:
    get_member_or_404(ref, kind, member_id)
    rights = {k: bool(v) for k, v in changes.items() if k in REFERENCE_RIGHTS}
    if not all(rights.values()):
        require_not_creator(ref, kind, member_id)
    members = update_array(
        db.refs, ref["_id"], kind, lambda ms: [{**m, **rights} if m["id"] == member_id else m for m in ms]
    )
    return get_member_or_404({kind: members}, kind, member_id)


def remove_member(db: Database, ref: dict, kind: str, member_id: str) -> None:
    get_member_or_404(ref, kind, member_id)
    require_not_creator(ref, kind, member_id)
    update_array(db.refs, ref["_id"], kind, lambda ms: [m for m in ms if m["id"] != member_id])


# ---------------------------------------------------------------- remote releases


def require_remote(ref: dict) -> None:
    if not ref.get("remotes_from"):
        raise BadRequest("Not a remote reference")


def format_release(data: dict, etag: str | None = None) -> dict:
    """A GitHub-shaped release as stored on the reference; ``ValueError`` if it has no reference file."""
    asset = next((a for a in data.get("assets") or [] if a.get("name") == "reference.json.gz"), None)
    if asset is None:
        raise ValueError("The latest release has no reference.json.gz asset")
    return {
        "id": data["id"],
        "name": data.get("name") or data.get("tag_name"),
        "body": data.get("body") or "",
        "etag": etag,
        "filename": asset["name"],
        "size": asset.get("size"),
        "html_url": data.get("html_url"),
        "download_url": asset["browser_download_url"],
        "published_at": data.get("published_at"),
        "content_type": asset.get("content_type"),
        "retrieved_at": now(),
        "newer": False,
    }


def is_newer(release: dict, installed: dict | None) -> bool:
    """A release is newer when nothing is installed, or it was published after the installed one."""
    if not installed:
        return True
    if release["id"] == installed.get("id"):
        return False
    return (release.get("published_at") or "") >= (installed.get("published_at") or "")


def store_release(db: Database, ref_id: str, release: dict) -> dict:
    """Record the latest release seen and whether it is newer than the installed one."""
    ref = get_reference_or_404(db, ref_id)
    release = {**release, "newer": is_newer(release, ref.get("installed"))}
    db.refs.update_one({"_id": ref_id}, {"$set": {"release": release, "remotes_from.last_checked": now()}})
    return release


def begin_update(db: Database, ref: dict, user_id: str, process_id: str) -> dict:
    """Mark the reference updating to its latest stored release by ``process_id``; returns the ``updates`` entry.

    ``abandon_update`` takes it back.
    """
    require_remote(ref)
    release = ref.get("release")
    if not release:
        raise BadRequest("Target release does not exist")
    if ref.get("updating"):
        raise Conflict("Update already in progress")
    update = {
        **{k: release.get(k) for k in UPDATE_FIELDS},
        "created_at": now(),
        "user": {"id": user_id},
        "ready": False,
    }
    claimed = db.refs.update_one(
        {"_id": ref["_id"], "updating": {"$ne": True}}, {"$set": {"updating": True, "process": {"id": process_id}}}
    )
    if not claimed.modified_count:
        raise Conflict("Update already in progress")
    append(db.refs, ref["_id"], "updates", update)
    return update


def record_remote_install(
    db: Database, ref_id: str, release: dict, user_id: str, data_type: str, organism: str
) -> None:
    """After a remote reference's first load: its content type and the release installed."""
    release = {**release, "newer": False}
    installed = installed_release(release, user_id)
    changes = {
        "data_type": data_type,
        "organism": organism,
        "release": release,
        "installed": installed,
        "updates": [installed],
        "remotes_from.last_updated": installed["created_at"],
    }
    db.refs.update_one({"_id": ref_id}, {"$set": changes})


def installed_release(release: dict, user_id: str, created_at: datetime.datetime | None = None) -> dict:
    return {
        **{k: release.get(k) for k in UPDATE_FIELDS},
        "created_at": created_at or now(),
        "user": {"id": user_id},
        "ready": True,
    }


def finish_update(db: Database, ref_id: str, release: dict, user_id: str, data_type: str, organism: str) -> None:
    """Mark the update installed: ``installed``, the ``updates`` entry ready, ``updating`` off."""
    updates = (
        update_array(
            db.refs,
            ref_id,
            "updates",
            lambda us: [{**u, "ready": True} if u.get("id") == release["id"] else u for u in us],
        )
        or []
    )
    installed = next((u for u in updates if u.get("id") == release["id"]), None) or installed_release(release, user_id)
    stored = get_reference_or_404(db, ref_id).get("release") or release
    db.refs.update_one(
        {"_id": ref_id},
        {
            "$set": {
                "installed": installed,
                "updating": False,
                "release": {**stored, "newer": is_newer(stored, installed)},
                "remotes_from.last_updated": now(),
                "data_type": data_type,
                "organism": organism,
            }
        },
    )


def abandon_update(db: Database, ref_id: str, release_id) -> None:
    """After a failed update: drop its unfinished ``updates`` entry and let a new one start."""
    try:
        update_array(
            db.refs, ref_id, "updates", lambda us: [u for u in us if u.get("id") != release_id or u.get("ready")]
        )
    except KeyError:
        return
    db.refs.update_one({"_id": ref_id}, {"$set": {"updating": False}})
