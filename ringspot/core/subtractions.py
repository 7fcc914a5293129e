"""Subtractions: host genomes whose reads analyses set aside, kept as a Bowtie2 index.

Created unready from an uploaded FASTA; the ``create_subtraction`` job validates it,
counts its sequences and nucleotide composition, builds the index and uploads
``subtraction.fa.gz`` plus the six Bowtie2 files to ``DATA_PATH/subtractions/<id>/``.
"""

from __future__ import annotations

import re
from typing import BinaryIO

from pymongo.database import Database

from . import uploads
from .auth import Client
from .db import update_array
from .errors import BadRequest, Conflict, NotFound
from .pagination import paginate
from .rights import sample_visibility_query
from .samples import active_jobs_using, consume_uploads, reserve_uploads
from .storage import store_at
from .utils import new_id, now

FASTA_NAME = "subtraction.fa.gz"
BOWTIE2_SUFFIXES = ("1", "2", "3", "4", "rev.1", "rev.2")
#: bowtie2-build writes ``.bt2l`` (large index) files for genomes over 4 Gbp.
FILE_NAMES = (FASTA_NAME,) + tuple(f"subtraction.{s}.{ext}" for ext in ("bt2", "bt2l") for s in BOWTIE2_SUFFIXES)
GC_KEYS = ("a", "t", "g", "c", "n")


def file_type(name: str) -> str:
    return "fasta" if name == FASTA_NAME else "bowtie2"


def get_subtraction_or_404(db: Database, subtraction_id: str) -> dict:
    doc = db.subtractions.find_one({"_id": subtraction_id})
    if doc is None:
        raise NotFound()
    return doc


def linked_samples(db: Database, client: Client, subtraction_id: str) -> list[dict]:
    """``{id, name}`` of the samples using the subtraction that ``client`` may read (names of others stay private)."""
    query = {"subtractions": subtraction_id}
    visible = sample_visibility_query(client)
    combined = {"$and": [query, visible]} if visible else query
    return [{"id": s["_id"], "name": s["name"]} for s in db.samples.find(combined, {"name": 1}).sort("name", 1)]


def find_subtractions(
    db: Database, *, page: int, per_page: int, term: str | None = None, ready: bool | None = None
) -> dict:
    clauses: list[dict] = []
    if term:
        pattern = re.escape(term)
        clauses.append(
            {
                "$or": [
                    {"name": {"$regex": pattern, "$options": "i"}},
                    {"nickname": {"$regex": pattern, "$options": "i"}},
                ]
            }
        )
    if ready is not None:
        clauses.append({"ready": ready})
    query = {"$and": clauses} if len(clauses) > 1 else (clauses[0] if clauses else {})
    envelope = paginate(db.subtractions, query, page=page, per_page=per_page, sort=[("name", 1), ("_id", 1)])
    envelope["ready_count"] = db.subtractions.count_documents({"ready": True})
    return envelope


def ready_subtractions(db: Database) -> list[dict]:
    """Every ready subtraction, short form, for pickers."""
    return list(db.subtractions.find({"ready": True}, {"name": 1, "nickname": 1}).sort([("name", 1), ("_id", 1)]))


def check_name_free(db: Database, name: str, subtraction_id: str | None = None) -> None:
    query: dict = {"name": name}
    if subtraction_id:
        query["_id"] = {"$ne": subtraction_id}
    if db.subtractions.find_one(query, {"_id": 1}):
        raise BadRequest("Subtraction name already exists")


def create_subtraction(db: Database, client: Client, name: str, nickname: str, upload_id: str, job_id: str) -> dict:
    """Insert an unready subtraction for an uploaded FASTA and reserve the upload."""
    check_name_free(db, name)
    (upload,) = reserve_uploads(db, client, [upload_id], "subtraction", "Upload does not exist")
    doc = {
        "_id": new_id(),
        "name": name,
        "nickname": nickname,
        "is_host": True,
        "ready": False,
        "count": None,
        "gc": None,
        "file": {"id": upload["_id"], "name": upload["name"]},
        "files": [],
        "user": {"id": client.user_id},
        "job": {"id": job_id},
        "created_at": now(),
    }
    db.subtractions.insert_one(doc)
    oldest = db.subtractions.find({"name": name}, {"_id": 1}).sort([("created_at", 1), ("_id", 1)]).limit(1)
    first = next(iter(oldest))
    if first["_id"] != doc["_id"]:
        db.subtractions.delete_one({"_id": doc["_id"]})
        uploads.release(db, [upload_id])
        raise BadRequest("Subtraction name already exists")
    return doc


def edit_subtraction(db: Database, subtraction_id: str, changes: dict) -> dict:
    if "name" in changes:
        check_name_free(db, changes["name"], subtraction_id)
    if changes:
        db.subtractions.update_one({"_id": subtraction_id}, {"$set": changes})
    return get_subtraction_or_404(db, subtraction_id)


def remove_subtraction(db: Database, data_path: str, subtraction: dict) -> None:
    """Delete a subtraction and its files; refused while samples link it or a job uses it."""
    subtraction_id = subtraction["_id"]
    if db.samples.find_one({"subtractions": subtraction_id}, {"_id": 1}):
        raise Conflict("Has linked samples")
    if active_jobs_using(db, "subtraction", subtraction_id):
        raise Conflict("Subtraction is in use by a running or waiting job")
    _delete(db, data_path, subtraction)


def _delete(db: Database, data_path: str, subtraction: dict) -> None:
    # The document goes last: once the subtraction reads as gone, its upload and files are settled.
    if not subtraction.get("ready"):
        uploads.release(db, [subtraction["file"]["id"]])
    store_at(data_path).delete_prefix(f"subtractions/{subtraction['_id']}")
    db.subtractions.delete_one({"_id": subtraction["_id"]})


def discard_failed_subtraction(db: Database, data_path: str, subtraction_id: str, upload_ids: list[str]) -> None:
    """After a failed or cancelled create_subtraction job: no unready subtraction, upload free again."""
    doc = db.subtractions.find_one({"_id": subtraction_id})
    if doc is None or not doc.get("ready"):
        uploads.release(db, upload_ids)
    if doc is not None and not doc.get("ready"):
        _delete(db, data_path, doc)


# ---------------------------------------------------------------- the create_subtraction job's side


def add_file(db: Database, data_path: str, subtraction: dict, name: str, stream: BinaryIO, limit: int) -> dict:
    """Store one file of an unready subtraction; uploading a name again replaces it (retried jobs)."""
    if name not in FILE_NAMES:
        raise BadRequest("Unsupported subtraction file name")
    if subtraction.get("ready"):
        raise Conflict("Subtraction is already finalized")
    size = store_at(data_path).put(f"subtractions/{subtraction['_id']}/{name}", stream, limit)
    if size == 0:
        raise BadRequest("File is empty")
    entry = {"name": name, "size": size, "type": file_type(name), "uploaded_at": now()}
    update_array(
        db.subtractions,
        subtraction["_id"],
        "files",
        lambda files: sorted([f for f in files if f["name"] != name] + [entry], key=lambda f: f["name"]),
    )
    return entry


def file_key(subtraction: dict, name: str) -> str:
    """The store key of a file the subtraction has."""
    if not any(f["name"] == name for f in subtraction.get("files", [])):
        raise NotFound()
    return f"subtractions/{subtraction['_id']}/{name}"


def missing_files(subtraction: dict) -> list[str]:
    names = {f["name"] for f in subtraction.get("files", [])}
    missing = [] if FASTA_NAME in names else [FASTA_NAME]
    for suffix in BOWTIE2_SUFFIXES:
        if f"subtraction.{suffix}.bt2" not in names and f"subtraction.{suffix}.bt2l" not in names:
            missing.append(f"subtraction.{suffix}.bt2")
    return missing


def finalize(db: Database, data_path: str, subtraction: dict, count: int, gc: dict) -> dict:
    """Record ``count`` and ``gc`` and mark ready once every file is in; the upload is consumed."""
    if subtraction.get("ready"):
        raise Conflict("Subtraction is already finalized")
    missing = missing_files(subtraction)
    if missing:
        raise Conflict(
            f"Subtraction requires its FASTA and Bowtie2 files before it is finalized. "
            f"Missing files: {', '.join(missing)}"
        )
    if set(gc) != set(GC_KEYS):
        raise BadRequest(f"gc must have exactly the keys {', '.join(GC_KEYS)}")
    update = {"count": count, "gc": {k: gc[k] for k in GC_KEYS}, "ready": True}
    if not db.subtractions.update_one({"_id": subtraction["_id"], "ready": False}, {"$set": update}).modified_count:
        raise Conflict("Subtraction is already finalized")
    consume_uploads(db, data_path, [subtraction["file"]["id"]])
    return get_subtraction_or_404(db, subtraction["_id"])
