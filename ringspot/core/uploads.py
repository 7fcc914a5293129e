"""Uploaded files (references, reads, subtraction FASTA, HMM profiles) waiting to be used."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pymongo.database import Database

from .auth import Client
from .errors import BadRequest, Conflict, NotFound
from .files import check_file_name, path_in_store
from .pagination import paginate
from .rights import can_use_upload, upload_visibility_query
from .storage import local_copy, store_at
from .utils import new_id, now

UPLOAD_TYPES = ("reference", "reads", "subtraction", "hmm")


def upload_key(upload_id: str) -> str:
    return f"uploads/{upload_id}"


def upload_path(data_path: str, upload_id: str) -> Path:
    """Where an upload lives in the local folder store (see ``local_upload`` for any store)."""
    return path_in_store(data_path, "uploads", upload_id)


@contextlib.contextmanager
def local_upload(data_path: str, upload_id: str) -> Iterator[Path]:
    """The upload as a local file, for the server operations that parse one (fetched from object storage)."""
    with local_copy(store_at(data_path), upload_key(upload_id), data_path) as path:
        yield path


def create_upload(
    db: Database, data_path: str, stream: BinaryIO, *, name: str, upload_type: str, user_id: str, limit: int
) -> dict:
    """Stream an upload to the store, then record it; a failed transfer leaves nothing behind."""
    check_file_name(name)
    if upload_type not in UPLOAD_TYPES:
        raise BadRequest(f"Unsupported upload type: {upload_type}")
    upload_id = new_id()
    store = store_at(data_path)
    size = store.put(upload_key(upload_id), stream, limit)
    if size == 0:
        store.delete(upload_key(upload_id))
        raise BadRequest("File is empty")
    doc = {
        "_id": upload_id,
        "name": name,
        "type": upload_type,
        "size": size,
        "user": {"id": user_id},
        "uploaded_at": now(),
        "created_at": now(),
        "ready": True,
        "reserved": False,
        "removed": False,
    }
    db.uploads.insert_one(doc)
    return doc


def get_upload_or_404(db: Database, upload_id: str) -> dict:
    doc = db.uploads.find_one({"_id": upload_id, "removed": False})
    if doc is None:
        raise NotFound()
    return doc


def get_usable_upload(db: Database, client: Client | None, upload_id: str, missing: str) -> dict:
    """The upload ``client`` may use (their own), else ``BadRequest(missing)``.

    Another user's upload answers exactly as a missing one: its id tells the caller nothing.
    ``client=None`` is the service itself, re-checking an upload a request already vetted.
    """
    doc = db.uploads.find_one({"_id": upload_id, "removed": False})
    if doc is None or (client is not None and not can_use_upload(client, doc)):
        raise BadRequest(missing)
    return doc


def find_uploads(
    db: Database, client: Client, *, page: int, per_page: int, upload_type: str | None, user_id: str | None
) -> dict:
    """The uploads ``client`` may use: their own, or every one for an administrator."""
    query: dict = {}
    if upload_type:
        query["type"] = upload_type
    if user_id:
        query["user.id"] = user_id
    base_query = {"removed": False, **upload_visibility_query(client)}
    return paginate(db.uploads, query, base_query=base_query, page=page, per_page=per_page, sort=[("created_at", -1)])


def reserve(db: Database, upload_ids: list[str]) -> None:
    """Mark uploads as used by a sample or subtraction; they cannot be removed until released."""
    db.uploads.update_many({"_id": {"$in": upload_ids}}, {"$set": {"reserved": True}})


def release(db: Database, upload_ids: list[str]) -> None:
    db.uploads.update_many({"_id": {"$in": upload_ids}}, {"$set": {"reserved": False}})


def remove_upload(db: Database, data_path: str, upload_id: str) -> None:
    doc = get_upload_or_404(db, upload_id)
    if doc.get("reserved"):
        raise Conflict("Upload is in use")
    db.uploads.update_one({"_id": upload_id}, {"$set": {"removed": True, "removed_at": now()}})
    store_at(data_path).delete(upload_key(upload_id))
