"""Whole-reference work on OTUs, done by the reference actors: load a file's OTUs (import, clone,
remote), apply a newer release, remove everything, and export back to ``reference.json.gz``.

Loads insert in batches (``insert_many`` of ``BATCH`` documents): the full plant-virus reference
is 2,084 OTUs, 4,783 sequences and 2,084 history entries. Every OTU and sequence gets a new
local id -- the same file can be imported into many references -- and sequence ids are drawn
in file order within each isolate, so joined OTUs (sequences ordered by ``_id``) and exports
keep the file's order.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable

from pymongo.database import Database

from ..bio.reference import (
    export_reference,
    load_reference_file,
    validate_reference,
    write_reference_file,
)
from . import history
from .diff import diff_otus
from .errors import BadRequest, NotFound
from .indexes import remove_files as remove_index_files
from .otus import (
    iter_joined_otus,
    merge_sequences,
    patch_otu_to_version,
    patch_with_history,
    verify,
)
from .utils import new_id, now

BATCH = 500

Progress = Callable[[float], None]


def _no_progress(_fraction: float) -> None:
    pass


# ---------------------------------------------------------------- building documents


def _ordered_ids(count: int) -> list[str]:
    """``count`` new ids in ascending order, so assigning them in turn keeps an order by ``_id``."""
    ids: set[str] = set()
    while len(ids) < count:
        ids.add(new_id())
    return sorted(ids)


def build_otu(
    source: dict,
    ref_id: str,
    user_id: str,
    *,
    remote: bool,
    created_at,
    otu_id: str | None = None,
    sequence_ids: dict[str, str] | None = None,
) -> tuple[dict, list[dict]]:
    """The OTU and sequence documents for one file-shaped (or joined) OTU, at version 0.

    ``remote`` keeps the file's ids as ``remote.id``. ``otu_id`` and ``sequence_ids`` (file
    sequence id -> local id) reuse local ids when a release updates an existing OTU.
    """
    otu_id = otu_id or new_id()
    otu = {
        "_id": otu_id,
        "name": source["name"],
        "lower_name": source["name"].lower(),
        "abbreviation": source.get("abbreviation") or "",
        "reference": {"id": ref_id},
        "version": 0,
        "last_indexed_version": None,
        "verified": False,
        "issues": None,
        "imported": True,
        "schema": [dict(segment) for segment in source.get("schema") or []],
        "isolates": [],
        "created_at": created_at,
        "user": {"id": user_id},
    }
    if source.get("taxid") is not None:
        otu["taxid"] = source["taxid"]
    if remote:
        otu["remote"] = {"id": source["_id"]}
    sequences = []
    for isolate in source["isolates"]:
        otu["isolates"].append(
            {
                "id": isolate["id"],
                "source_type": isolate["source_type"],
                "source_name": isolate["source_name"],
                "default": isolate["default"],
            }
        )
        fresh = iter(_ordered_ids(len(isolate["sequences"])))
        for sequence in isolate["sequences"]:
            local_id = (sequence_ids or {}).get(sequence["_id"]) or next(fresh)
            doc = {
                "_id": local_id,
                "otu_id": otu_id,
                "isolate_id": isolate["id"],
                "accession": sequence["accession"],
                "definition": sequence["definition"],
                "host": sequence.get("host", ""),
                "segment": sequence.get("segment"),
                "sequence": sequence["sequence"],
                "reference": {"id": ref_id},
            }
            if sequence.get("target") is not None:
                doc["target"] = sequence["target"]
            if remote:
                doc["remote"] = {"id": sequence["_id"]}
            sequences.append(doc)
    return otu, sequences


def _set_verification(otu: dict, joined: dict) -> None:
    issues, verified = verify(joined)
    otu.update(issues=issues, verified=verified)
    joined.update(issues=issues, verified=verified)


def build_documents(
    sources: Iterable[dict],
    ref_id: str,
    user_id: str,
    method_name: str,
    *,
    remote: bool = False,
    describe: Callable[[dict], str],
) -> tuple[list, list, list]:
    """OTU, sequence and history documents for a whole file (or a cloned reference)."""
    created_at = now()
    otus, sequences, entries = [], [], []
    for source in sources:
        otu, otu_sequences = build_otu(source, ref_id, user_id, remote=remote, created_at=created_at)
        joined = merge_sequences(otu, otu_sequences)
        _set_verification(otu, joined)
        otus.append(otu)
        sequences.extend(otu_sequences)
        entries.append(history.history_entry(method_name, describe(otu), None, joined, user_id, created_at))
    return otus, sequences, entries


def insert_batches(db: Database, collection: str, docs: list[dict], progress: Progress = _no_progress) -> None:
    for start in range(0, len(docs), BATCH):
        db[collection].insert_many(docs[start : start + BATCH], ordered=False)
        progress(min(start + BATCH, len(docs)) / len(docs))


def clear_content(db: Database, ref_id: str) -> None:
    """Delete every OTU, sequence and history entry of a reference (a load starts from nothing)."""
    for collection in ("history", "sequences", "otus"):
        db[collection].delete_many({"reference.id": ref_id})


def clone_sources(db: Database, source_id: str) -> list[dict]:
    """The source reference's OTUs, joined, in their current version."""
    return list(iter_joined_otus(db, source_id))


# ---------------------------------------------------------------- updating from a release


def plan_update(db: Database, ref_id: str, data: dict, user_id: str, release_name: str) -> dict:
    """What installing a release changes, matched on ``remote.id``.

    Returns ``{"changed": [(old joined, new otu, new sequences)], "added": (otus, sequences,
    history), "removed": [otu documents]}``; nothing is written.
    """
    local = {otu["remote"]["id"]: otu for otu in db.otus.find({"reference.id": ref_id, "remote.id": {"$exists": True}})}
    local_sequences: dict[str, list[dict]] = {}
    for sequence in db.sequences.find({"reference.id": ref_id}):
        local_sequences.setdefault(sequence["otu_id"], []).append(sequence)

    changed, new_sources = [], []
    for source in data["otus"]:
        existing = local.get(source["_id"])
        if existing is None:
            new_sources.append(source)
            continue
        old = merge_sequences(existing, local_sequences.get(existing["_id"], ()))
        sequence_ids = {
            s["remote"]["id"]: s["_id"] for s in local_sequences.get(existing["_id"], ()) if s.get("remote")
        }
        otu, sequences = build_otu(
            source,
            ref_id,
            user_id,
            remote=True,
            created_at=existing.get("created_at"),
            otu_id=existing["_id"],
            sequence_ids=sequence_ids,
        )
        for field in ("version", "last_indexed_version", "imported", "user", "created_at"):
            if field in existing:
                otu[field] = existing[field]
        joined = merge_sequences(otu, sequences)
        _set_verification(otu, joined)
        if diff_otus(old, joined):
            changed.append((old, otu, sequences))

    file_ids = {source["_id"] for source in data["otus"]}
    removed = [otu for remote_id, otu in local.items() if remote_id not in file_ids]
    added = build_documents(
        new_sources,
        ref_id,
        user_id,
        "remote",
        remote=True,
        describe=lambda otu: f"Added {otu['name']} from release {release_name}",
    )
    return {"changed": changed, "added": added, "removed": removed}


def apply_changes(db: Database, plan: dict, user_id: str, release_name: str, progress: Progress = _no_progress) -> None:
    """Write changed OTUs as new versions (history ``update``) and insert the new ones."""
    changed = plan["changed"]
    for number, (old, otu, sequences) in enumerate(changed):
        otu["version"] = old["version"] + 1
        new = merge_sequences(otu, sequences)
        entry = history.history_entry("update", f"Updated {otu['name']} from release {release_name}", old, new, user_id)
        db.otus.replace_one({"_id": otu["_id"]}, otu)
        db.sequences.delete_many({"otu_id": otu["_id"]})
        if sequences:
            db.sequences.insert_many(sequences)
        db.history.replace_one({"_id": entry["_id"]}, entry, upsert=True)
        progress((number + 1) / (len(changed) + 1))
    otus, sequences, entries = plan["added"]
    for collection, docs in (("otus", otus), ("sequences", sequences), ("history", entries)):
        if docs:
            insert_batches(db, collection, docs)
    progress(1.0)


def apply_removals(db: Database, plan: dict, user_id: str, release_name: str) -> None:
    """Remove OTUs the release no longer has, each with a ``remove`` history entry."""
    for otu in plan["removed"]:
        old = merge_sequences(otu, db.sequences.find({"otu_id": otu["_id"]}))
        entry = history.history_entry(
            "remove", f"Removed {otu['name']} (not in release {release_name})", old, None, user_id
        )
        db.history.replace_one({"_id": entry["_id"]}, entry, upsert=True)
        db.sequences.delete_many({"otu_id": otu["_id"]})
        db.otus.delete_one({"_id": otu["_id"]})


# ---------------------------------------------------------------- deleting a reference


def delete_indexes(db: Database, data_path: str, ref_id: str) -> None:
    """Delete the reference's indexes no analysis uses, and their files; keep the used ones."""
    used = set(db.analyses.distinct("index.id", {"reference.id": ref_id}))
    for index in db.indexes.find({"reference.id": ref_id}, {"_id": 1}):
        if index["_id"] in used:
            db.indexes.update_one({"_id": index["_id"]}, {"$set": {"deleted": True}})
        else:
            db.indexes.delete_one({"_id": index["_id"]})
            remove_index_files(data_path, index["_id"])


def delete_otus(db: Database, ref_id: str, user_id: str) -> None:
    """Delete the OTUs, sequences and history of a removed reference.

    OTUs in an index that analyses used are removed like a user would remove them (a
    ``<id>.removed`` entry holding the whole OTU), and their history is kept, so
    ``patch_otu_to_version`` still rebuilds what those analyses saw.
    """
    used_indexes = db.analyses.distinct("index.id", {"reference.id": ref_id})
    keep: set[str] = set()
    for index in db.indexes.find({"_id": {"$in": used_indexes}}, {"manifest": 1}):
        keep.update(index.get("manifest") or {})
    for otu in db.otus.find({"reference.id": ref_id, "_id": {"$in": sorted(keep)}}):
        old = merge_sequences(otu, db.sequences.find({"otu_id": otu["_id"]}))
        entry = history.history_entry("remove", f"Removed {otu['name']} with its reference", old, None, user_id)
        db.history.replace_one({"_id": entry["_id"]}, entry, upsert=True)
    db.sequences.delete_many({"reference.id": ref_id})
    db.otus.delete_many({"reference.id": ref_id})
    db.history.delete_many({"reference.id": ref_id, "otu.id": {"$nin": sorted(keep)}})


# ---------------------------------------------------------------- export


def _built_otus(db: Database, ref_id: str, index_version: int | None) -> list[dict]:
    query = {"reference.id": ref_id, "ready": True}
    if index_version is not None:
        query["version"] = index_version
    indexes = list(db.indexes.find(query, {"manifest": 1, "version": 1}).sort("version", -1).limit(1))
    if not indexes:
        if index_version is not None:
            raise NotFound("Index version does not exist")
        raise BadRequest("Reference has no built index")
    manifest = indexes[0].get("manifest") or {}
    current = {otu["_id"]: otu for otu in iter_joined_otus(db, ref_id)}
    otus = []
    for otu_id, version in manifest.items():
        otu = current.get(otu_id)
        if otu is None or otu["version"] != version:
            otu = patch_otu_to_version(db, otu_id, version)
        if otu is not None:
            otus.append(otu)
    return sorted(otus, key=lambda o: (o["name"].lower(), o["_id"]))


def _last_verified(db: Database, otu: dict) -> dict | None:
    """The newest version of an unverified OTU that had no blocking issue, or None."""
    for version in range(otu["version"] - 1, -1, -1):
        _, patched, _ = patch_with_history(db, otu["_id"], version)
        if patched is not None and verify(patched)[1]:
            return patched
    return None


def export_otus(db: Database, ref: dict, scope: str, index_version: int | None = None) -> list[dict]:
    """Joined OTUs for an export.

    ``current``: every OTU as it is now. ``built``: the OTUs of the latest ready index (or of
    ``index_version``) at the versions built. ``unbuilt``: what a build would take now -- each
    OTU at its newest verified version (OTUs never verified are left out).
    """
    if scope == "built" or index_version is not None:
        return _built_otus(db, ref["_id"], index_version)
    otus = list(iter_joined_otus(db, ref["_id"]))
    if scope == "unbuilt":
        last_verified = [otu if otu.get("verified") else _last_verified(db, otu) for otu in otus]
        otus = [otu for otu in last_verified if otu is not None]
    return otus


def export_file(db: Database, ref: dict, scope: str, index_version: int | None = None) -> bytes:
    """``reference.json.gz`` bytes of the reference (see :func:`export_otus`)."""
    data = export_reference(
        export_otus(db, ref, scope, index_version),
        ref.get("data_type") or "genome",
        ref.get("organism") or "",
        name=ref["name"],
        created_at=now(),
    )
    buffer = io.BytesIO()
    write_reference_file(data, buffer)
    return buffer.getvalue()


def load_validated(path) -> dict:
    """Read and validate a reference file (``ReferenceFileError`` names the first problem)."""
    return validate_reference(load_reference_file(path))
