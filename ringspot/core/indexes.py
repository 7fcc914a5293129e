"""Indexes: a reference's OTUs frozen at given versions and built into a Bowtie2 index.

Requesting a build snapshots a ``manifest`` (OTU id -> version) and tags every unbuilt
history entry with the new index; a failed or cancelled build removes the index and
un-tags the history, so the reference is free for the next build.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pymongo.database import Database

from . import events
from .db import update_array
from .errors import BadRequest, Conflict, NotFound
from .pagination import count, paginate
from .storage import local_copy, scratch_folder, store_at
from .utils import new_id, now

UNBUILT = {"id": "unbuilt", "version": "unbuilt"}

#: The names a build may upload. ``reference.4.bt4`` is listed by the Job API contract;
#: ``reference.4.bt2`` is what bowtie2-build writes, so both are accepted.
INDEX_FILE_NAMES = (
    "reference.json.gz",
    "reference.fa.gz",
    "reference.1.bt2",
    "reference.2.bt2",
    "reference.3.bt2",
    "reference.4.bt2",
    "reference.4.bt4",
    "reference.rev.1.bt2",
    "reference.rev.2.bt2",
)
BOWTIE2_FILES = (
    "reference.1.bt2",
    "reference.2.bt2",
    "reference.3.bt2",
    "reference.4.bt2",
    "reference.rev.1.bt2",
    "reference.rev.2.bt2",
)
REQUIRED_FILES = ("reference.json.gz", "reference.fa.gz") + BOWTIE2_FILES


def file_type(name: str) -> str:
    if name.endswith(".json.gz"):
        return "json"
    if name.endswith(".fa.gz"):
        return "fasta"
    return "bowtie2"


def index_key(index_id: str, name: str) -> str:
    return f"indexes/{index_id}/{name}"


def remove_files(data_path: str, index_id: str) -> None:
    store_at(data_path).delete_prefix(f"indexes/{index_id}")


def get_index_or_404(db: Database, index_id: str) -> dict:
    doc = db.indexes.find_one({"_id": index_id})
    if doc is None:
        raise NotFound()
    return doc


def change_counts(db: Database, index_id: str) -> tuple[int, int]:
    """(changes built into the index, distinct OTUs they touched), counted by the server.

    Pipelines, because history entries carry whole OTUs as diffs: reading them back to
    count would move megabytes per request.
    """
    match = {"$match": {"index.id": index_id}}
    otus = list(db.history.aggregate([match, {"$group": {"_id": "$otu.id"}}, {"$count": "n"}]))
    return count(db.history, {"index.id": index_id}), (otus[0]["n"] if otus else 0)


def contributors(db: Database, index_id: str) -> list[dict]:
    groups = db.history.aggregate(
        [{"$match": {"index.id": index_id}}, {"$group": {"_id": "$user.id", "count": {"$sum": 1}}}]
    )
    return sorted(({"id": g["_id"], "count": g["count"]} for g in groups), key=lambda c: -c["count"])


def _of_references(ref_ids: list[str] | None) -> dict:
    """Indexes of ``ref_ids`` only (the references a caller may read), or of all when None."""
    return {} if ref_ids is None else {"reference.id": {"$in": list(ref_ids)}}


def find_indexes(
    db: Database, *, page: int, per_page: int, ref_id: str | None = None, ref_ids: list[str] | None = None
) -> dict:
    query = {"reference.id": ref_id} if ref_id else {}
    return paginate(
        db.indexes,
        query,
        base_query=_of_references(ref_ids),
        page=page,
        per_page=per_page,
        sort=[("created_at", -1)],
        projection={"manifest": 0, "sequence_otu_map": 0},
    )


def latest_ready_indexes(db: Database, ref_ids: list[str] | None = None) -> list[dict]:
    latest: dict[str, dict] = {}
    query = {"ready": True, **_of_references(ref_ids)}
    for doc in db.indexes.find(query, {"manifest": 0, "sequence_otu_map": 0}).sort("version", -1):
        latest.setdefault(doc["reference"]["id"], doc)
    return list(latest.values())


def latest_ready_index(db: Database, ref_id: str) -> dict | None:
    docs = list(db.indexes.find({"reference.id": ref_id, "ready": True}).sort("version", -1).limit(1))
    return docs[0] if docs else None


def check_buildable(db: Database, ref_id: str) -> None:
    if db.indexes.find_one({"reference.id": ref_id, "ready": False}, {"_id": 1}):
        raise Conflict("Index build already in progress")
    if db.otus.find_one({"reference.id": ref_id, "verified": False}, {"_id": 1}):
        raise BadRequest("There are unverified OTUs")
    if not db.history.find_one({"reference.id": ref_id, "index.id": "unbuilt"}, {"_id": 1}):
        raise BadRequest("There are no unbuilt changes")


def create_index(db: Database, ref_id: str, user_id: str, job_id: str) -> dict:
    """Snapshot the manifest and tag unbuilt history; the build job fills in the files."""
    check_buildable(db, ref_id)
    manifest = {otu["_id"]: otu["version"] for otu in db.otus.find({"reference.id": ref_id}, {"version": 1})}
    previous = list(
        db.indexes.find({"reference.id": ref_id, "ready": True}, {"version": 1}).sort("version", -1).limit(1)
    )
    index: dict = {
        "_id": new_id(),
        "version": previous[0]["version"] + 1 if previous else 0,
        "created_at": now(),
        "manifest": manifest,
        "ready": False,
        "has_files": False,
        "files": [],
        "job": {"id": job_id},
        "reference": {"id": ref_id},
        "user": {"id": user_id},
    }
    db.indexes.insert_one(index)
    # A second request racing this one would see two unready indexes; keep only the oldest.
    unready = list(db.indexes.find({"reference.id": ref_id, "ready": False}, {"_id": 1}).sort("created_at", 1))
    if unready and unready[0]["_id"] != index["_id"]:
        db.indexes.delete_one({"_id": index["_id"]})
        raise Conflict("Index build already in progress")
    db.history.update_many(
        {"reference.id": ref_id, "index.id": "unbuilt"},
        {"$set": {"index": {"id": index["_id"], "version": index["version"]}}},
    )
    return index


def discard_failed_build(db: Database, data_path: str, index_id: str) -> None:
    """Remove an unfinished index and give its history back to ``unbuilt``."""
    index = db.indexes.find_one({"_id": index_id})
    if index is None or index.get("ready"):
        return
    db.history.update_many({"index.id": index_id}, {"$set": {"index": dict(UNBUILT)}})
    db.indexes.delete_one({"_id": index_id, "ready": False})
    remove_files(data_path, index_id)


def add_file(db: Database, data_path: str, index_id: str, name: str, stream: BinaryIO, limit: int) -> dict:
    index = get_index_or_404(db, index_id)
    if name not in INDEX_FILE_NAMES:
        raise BadRequest("Unsupported index file name")
    if any(f["name"] == name for f in index.get("files", [])):
        raise Conflict("File name already exists")
    size = store_at(data_path).put(index_key(index_id, name), stream, limit)
    entry = {"name": name, "reference": index_id, "size": size, "type": file_type(name), "uploaded_at": now()}

    def add(files: list) -> list | None:
        # Checked again inside the update: a concurrent duplicate upload loses here.
        if any(f["name"] == name for f in files):
            return None
        return files + [{"id": len(files) + 1, **entry}]

    files = update_array(db.indexes, index_id, "files", add)
    if files is None:
        raise Conflict("File name already exists")
    return files[-1]


def file_key(db: Database, index_id: str, name: str) -> str:
    """The store key of a file the index has."""
    index = get_index_or_404(db, index_id)
    if not any(f["name"] == name for f in index.get("files", [])):
        raise NotFound()
    return index_key(index_id, name)


def finalize(db: Database, data_path: str, index_id: str) -> dict:
    """Mark a build ready once all its files are in; record what it contains."""
    index = get_index_or_404(db, index_id)
    if index.get("ready"):
        raise Conflict("Index is already finalized")
    names = {f["name"] for f in index.get("files", [])}
    missing = [
        n for n in REQUIRED_FILES if n not in names and not (n == "reference.4.bt2" and "reference.4.bt4" in names)
    ]
    if missing:
        raise Conflict(
            f"Reference requires that all Bowtie2 index files have been uploaded. Missing files: {', '.join(missing)}"
        )
    with local_copy(store_at(data_path), index_key(index_id, "reference.json.gz"), data_path) as path:
        sequence_otu_map = read_sequence_otu_map(path)
    by_version: dict[int, list[str]] = {}
    for otu_id, version in index["manifest"].items():
        by_version.setdefault(version, []).append(otu_id)
    for version, otu_ids in by_version.items():  # one write per version, not one per OTU
        db.otus.update_many({"_id": {"$in": otu_ids}}, {"$set": {"last_indexed_version": version}})
    # ``ready`` last: a finalize cut short (the database going away) is simply repeated. Guarded, so
    # of finalizes racing each other one lands and emits ``index.ready``; the others are told so.
    ready = {"ready": True, "has_files": True, "sequence_otu_map": sequence_otu_map, "ready_at": now()}
    if not db.indexes.update_one({"_id": index_id, "ready": False}, {"$set": ready}).modified_count:
        raise Conflict("Index is already finalized")
    events.emit(
        db, "index.ready", {"index": {"id": index_id, "version": index["version"], "reference": index["reference"]}}
    )
    return get_index_or_404(db, index_id)


def read_sequence_otu_map(path: Path) -> dict[str, str]:
    with gzip.open(path, "rt") as handle:
        data = json.load(handle)
    return {
        sequence["_id"]: otu["_id"]
        for otu in data["otus"]
        for isolate in otu["isolates"]
        for sequence in isolate["sequences"]
    }


def iter_manifest_otus(db: Database, index: dict) -> Iterator[dict]:
    """Every OTU of the manifest, joined and patched back to its manifest version.

    The reference's OTUs come joined in two queries; only OTUs changed since the manifest
    was taken are patched back through their history.
    """
    from .otus import iter_joined_otus, patch_otu_to_version

    manifest = index["manifest"]
    current = {otu["_id"]: otu for otu in iter_joined_otus(db, index["reference"]["id"]) if otu["_id"] in manifest}
    for otu_id, version in manifest.items():
        otu = current.get(otu_id)
        if otu is None or otu["version"] != version:
            otu = patch_otu_to_version(db, otu_id, version)
        if otu is not None:
            yield otu


def otus_json_key(db: Database, data_path: str, index: dict) -> str:
    """The manifest's OTUs as a gzipped JSON list (the build job's input), written once."""
    key = index_key(index["_id"], "otus.json.gz")
    store = store_at(data_path)
    if not store.exists(key):
        # Concurrent first requests (a retried download) each write their own copy; the
        # content is the same, so whichever lands last is as good as the first.
        with tempfile.TemporaryFile(dir=scratch_folder(data_path)) as handle:
            write_otus_json(db, index, handle)
            size = handle.tell()
            handle.seek(0)
            store.put(key, handle, size)
    return key


def write_otus_json(db: Database, index: dict, handle: BinaryIO) -> None:
    # Level 1: a transfer file, written once per build; level 9 would take 9 s for 26 MB.
    with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0, compresslevel=1) as out:
        out.write(b"[")
        for number, otu in enumerate(iter_manifest_otus(db, index)):
            if number:
                out.write(b",")
            out.write(json.dumps(otu, default=str).encode())
        out.write(b"]")
