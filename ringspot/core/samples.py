"""Samples: read files of one sequencing run, their quality document and who may see them.

A sample is created unready with its uploads reserved; the ``create_sample`` job
validates and compresses the reads, uploads them to ``DATA_PATH/samples/<id>/`` and
finalizes the sample with its quality, which releases and removes the uploads. A
failed or cancelled job leaves no sample behind and gives the uploads back.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO

from pymongo.database import Database

from . import uploads
from .auth import Client
from .db import any_of, update_array
from .errors import BadRequest, Conflict, InsufficientRights, NotFound
from .files import path_in_store
from .pagination import paginate
from .rights import sample_visibility_query
from .storage import store_at
from .utils import new_id, now

LIBRARY_TYPES = ("normal", "srna", "amplicon")
READ_NAMES = ("reads_1.fq.gz", "reads_2.fq.gz")

#: Virtool's defaults for the ``sample_*_read/write`` settings.
DEFAULT_RIGHTS = {"group_read": True, "group_write": False, "all_read": True, "all_write": False}
RIGHTS_FIELDS = ("group", "group_read", "group_write", "all_read", "all_write")

#: Workflow names as filters and ``workflows`` keys use them -> the analysis workflow.
WORKFLOWS = {"pathoscope": "pathoscope_bowtie", "nuvs": "nuvs"}
WORKFLOW_STATES = ("none", "pending", "complete", "incompatible")
#: Library types a workflow cannot analyse (amplicon reads are not shotgun data).
INCOMPATIBLE = {"pathoscope": ("amplicon",), "nuvs": ("amplicon",)}

#: Jobs in these states still use the objects in their context.
ACTIVE_JOB_STATES = ["waiting", "running"]

#: The big fields left out of lists.
LIST_PROJECTION = {"quality": 0}


def sample_dir(data_path: str, sample_id: str) -> Path:
    return path_in_store(data_path, "samples", sample_id)


def get_sample_or_404(db: Database, sample_id: str) -> dict:
    doc = db.samples.find_one({"_id": sample_id})
    if doc is None:
        raise NotFound()
    return doc


# ---------------------------------------------------------------- workflow states


def workflow_states(db: Database, samples: list[dict]) -> dict[str, dict[str, str]]:
    """``{sample_id: {"pathoscope": state, "nuvs": state}}`` from the samples' analyses.

    ``complete`` when one analysis of the workflow is ready, ``pending`` when one is
    under way, ``incompatible`` for library types the workflow cannot use, else ``none``
    (failed analyses count as none).
    """
    ids = [s["_id"] for s in samples]
    seen: dict[tuple[str | None, str | None], str] = {}
    for analysis in db.analyses.find(any_of("sample.id", ids), {"sample": 1, "workflow": 1, "ready": 1, "failed": 1}):
        if analysis.get("failed"):
            continue
        key = ((analysis.get("sample") or {}).get("id"), analysis.get("workflow"))
        if analysis.get("ready"):
            seen[key] = "complete"
        else:
            seen.setdefault(key, "pending")
    states = {}
    for sample in samples:
        states[sample["_id"]] = {
            name: "incompatible"
            if sample.get("library_type") in INCOMPATIBLE[name]
            else seen.get((sample["_id"], workflow), "none")
            for name, workflow in WORKFLOWS.items()
        }
    return states


def with_workflows(db: Database, sample: dict) -> dict:
    return {**sample, "workflows": workflow_states(db, [sample])[sample["_id"]]}


def parse_workflow_filters(values: list[str]) -> dict[str, set[str]]:
    """``["pathoscope:complete nuvs:none", "nuvs:pending"]`` -> ``{workflow: {states}}``.

    >>> sorted(parse_workflow_filters(["pathoscope:complete nuvs:none", "nuvs:pending"])["nuvs"])
    ['none', 'pending']
    """
    wanted: dict[str, set[str]] = {}
    for value in values:
        for pair in re.split(r"[\s,]+", value.strip()):
            if not pair:
                continue
            workflow, sep, state = pair.partition(":")
            if not sep or workflow not in WORKFLOWS or state not in WORKFLOW_STATES:
                raise BadRequest(
                    f"Invalid workflow filter: {pair!r} (use <pathoscope|nuvs>:<{'|'.join(WORKFLOW_STATES)}>)"
                )
            wanted.setdefault(workflow, set()).add(state)
    return wanted


def _workflow_query(db: Database, wanted: dict[str, set[str]]) -> list[dict]:
    clauses = []
    for name, states in wanted.items():
        complete: set[str] = set()
        started: set[str] = set()
        for analysis in db.analyses.find({"workflow": WORKFLOWS[name]}, {"sample": 1, "ready": 1, "failed": 1}):
            if analysis.get("failed"):
                continue
            sample_id = (analysis.get("sample") or {}).get("id") or ""
            started.add(sample_id)
            if analysis.get("ready"):
                complete.add(sample_id)
        compatible = {"library_type": {"$nin": list(INCOMPATIBLE[name])}}
        options = {
            "complete": {"$and": [compatible, {"_id": {"$in": sorted(complete)}}]},
            "pending": {"$and": [compatible, {"_id": {"$in": sorted(started - complete)}}]},
            "none": {"$and": [compatible, {"_id": {"$nin": sorted(started)}}]},
            "incompatible": {"library_type": {"$in": list(INCOMPATIBLE[name])}},
        }
        clauses.append({"$or": [options[state] for state in sorted(states)]})
    return clauses


def find_samples(
    db: Database,
    client: Client,
    *,
    page: int,
    per_page: int,
    term: str | None = None,
    labels: list[str] | None = None,
    workflows: list[str] | None = None,
) -> dict:
    """The samples ``client`` may read, newest first, with their workflow states."""
    clauses: list[dict] = []
    if term:
        pattern = re.escape(term)
        clauses.append(
            {"$or": [{"name": {"$regex": pattern, "$options": "i"}}, {"user.id": {"$regex": pattern, "$options": "i"}}]}
        )
    if labels:
        clauses.append({"labels": {"$in": labels}})
    if workflows:
        clauses += _workflow_query(db, parse_workflow_filters(workflows))
    query = {"$and": clauses} if len(clauses) > 1 else (clauses[0] if clauses else {})
    envelope = paginate(
        db.samples,
        query,
        base_query=sample_visibility_query(client),
        page=page,
        per_page=per_page,
        sort=[("created_at", -1), ("_id", 1)],
        projection=LIST_PROJECTION,
    )
    states = workflow_states(db, envelope["documents"])
    envelope["documents"] = [{**d, "workflows": states[d["_id"]]} for d in envelope["documents"]]
    return envelope


# ---------------------------------------------------------------- checks shared with subtractions


def _named(client: Client, name: str) -> dict:
    """Samples called ``name`` among those ``client`` may read.

    Names are unique within what a user can see: a private sample's name is never "in use" to
    someone who may not read it, or the answer would tell them it exists.
    """
    visible = sample_visibility_query(client)
    return {"$and": [{"name": name}, visible]} if visible else {"name": name}


def check_name_free(db: Database, client: Client, name: str, sample_id: str | None = None) -> None:
    query = _named(client, name)
    if sample_id:
        query = {"$and": [query, {"_id": {"$ne": sample_id}}]}
    if db.samples.find_one(query, {"_id": 1}):
        raise BadRequest("Sample name is already in use")


def check_subtractions(db: Database, subtraction_ids: list[str]) -> None:
    found = {d["_id"] for d in db.subtractions.find({"_id": {"$in": subtraction_ids}}, {"_id": 1})}
    if set(subtraction_ids) - found:
        raise BadRequest("Subtraction does not exist")


def check_group(db: Database, group: str) -> None:
    if group != "none" and not db.groups.find_one({"_id": group}, {"_id": 1}):
        raise BadRequest("Group does not exist")


def reserve_uploads(db: Database, client: Client, upload_ids: list[str], upload_type: str, missing: str) -> list[dict]:
    """Reserve each upload for one new sample or subtraction, or none of them.

    Unknown, removed, other-type uploads and uploads of other users raise ``BadRequest(missing)``;
    an upload already reserved by another object is a 409. The conditional update makes two
    requests racing for one upload end with exactly one winner.
    """
    docs = [uploads.get_usable_upload(db, client, upload_id, missing) for upload_id in upload_ids]
    if any(doc.get("type") != upload_type for doc in docs):
        raise BadRequest(missing)
    taken: list[str] = []
    for doc in docs:
        claimed = db.uploads.update_one({"_id": doc["_id"], "reserved": False}, {"$set": {"reserved": True}})
        if not claimed.modified_count:
            uploads.release(db, taken)
            raise Conflict(f"Upload {doc['_id']} is already in use")
        taken.append(doc["_id"])
    return docs


def active_jobs_using(db: Database, kind: str, object_id: str) -> int:
    """How many waiting or running jobs have ``object_id`` in their context."""
    return db.processes.count_documents(
        {
            "workflow": {"$exists": True},
            "state": {"$in": ACTIVE_JOB_STATES},
            "$or": [{f"context.{kind}_id": object_id}, {f"context.{kind}_ids": object_id}],
        }
    )


# ---------------------------------------------------------------- create, edit, remove


def create_sample(db: Database, client: Client, data: dict, job_id: str) -> dict:
    """Insert an unready sample for ``data`` (the validated body) and reserve its uploads."""
    check_name_free(db, client, data["name"])
    upload_ids = data["files"]
    if len(set(upload_ids)) != len(upload_ids):
        raise BadRequest("The two files must be different uploads")
    check_subtractions(db, data["subtractions"])
    group = data.get("group") or "none"
    check_group(db, group)
    docs = reserve_uploads(db, client, upload_ids, "reads", "File does not exist")
    sample = {
        "_id": new_id(),
        "name": data["name"],
        "host": data["host"],
        "isolate": data["isolate"],
        "locale": data["locale"],
        "notes": data["notes"],
        "library_type": data["library_type"],
        # The 3' adapter of a small-RNA library when the lab gives it; else it is detected.
        "adapter": data.get("adapter"),
        "format": "fastq",
        "paired": len(upload_ids) == 2,
        "files": [{"id": d["_id"], "name": d["name"], "size": d["size"]} for d in docs],
        "reads": [],
        "quality": None,
        "subtractions": data["subtractions"],
        "labels": data["labels"],
        "group": group,
        **DEFAULT_RIGHTS,
        "user": {"id": client.user_id},
        "created_at": now(),
        "ready": False,
        "job": {"id": job_id},
    }
    db.samples.insert_one(sample)
    # Two requests racing with one name both pass the check: the later one gives way.
    oldest = db.samples.find(_named(client, data["name"]), {"_id": 1}).sort([("created_at", 1), ("_id", 1)]).limit(1)
    first = next(iter(oldest))
    if first["_id"] != sample["_id"]:
        db.samples.delete_one({"_id": sample["_id"]})
        uploads.release(db, upload_ids)
        raise BadRequest("Sample name is already in use")
    return sample


def edit_sample(db: Database, client: Client, sample_id: str, changes: dict) -> dict:
    if "name" in changes:
        check_name_free(db, client, changes["name"], sample_id)
    if "subtractions" in changes:
        check_subtractions(db, changes["subtractions"])
    if changes:
        db.samples.update_one({"_id": sample_id}, {"$set": changes})
    return get_sample_or_404(db, sample_id)


def require_owner_or_admin(client: Client, sample: dict) -> None:
    if not client.administrator and (sample.get("user") or {}).get("id") != client.user_id:
        raise InsufficientRights("Must be administrator or sample owner")


def set_rights(db: Database, sample_id: str, changes: dict) -> dict:
    if "group" in changes:
        check_group(db, changes["group"])
    if changes:
        db.samples.update_one({"_id": sample_id}, {"$set": changes})
    return get_sample_or_404(db, sample_id)


def remove_sample(db: Database, data_path: str, sample: dict) -> None:
    """Delete a sample with its reads and analyses; refused while a job uses it."""
    if active_jobs_using(db, "sample", sample["_id"]):
        raise Conflict("Sample is in use by a running or waiting job")
    _delete(db, data_path, sample)


def _delete(db: Database, data_path: str, sample: dict) -> None:
    # The document goes last: once the sample reads as gone, its uploads and files are settled.
    sample_id = sample["_id"]
    if not sample.get("ready"):
        uploads.release(db, [f["id"] for f in sample.get("files", [])])
    store = store_at(data_path)
    for analysis in db.analyses.find({"sample.id": sample_id}, {"_id": 1}):
        store.delete_prefix(f"analyses/{analysis['_id']}")
    db.analyses.delete_many({"sample.id": sample_id})
    for alignment in db.alignments.find({"sample.id": sample_id}, {"_id": 1}):
        store.delete_prefix(f"alignments/{alignment['_id']}")
    db.alignments.delete_many({"sample.id": sample_id})
    store.delete_prefix(f"samples/{sample_id}")
    db.samples.delete_one({"_id": sample_id})


def discard_failed_sample(db: Database, data_path: str, sample_id: str, upload_ids: list[str]) -> None:
    """After a failed or cancelled create_sample job: no unready sample, uploads free again."""
    sample = db.samples.find_one({"_id": sample_id})
    if sample is None or not sample.get("ready"):
        uploads.release(db, upload_ids)
    if sample is not None and not sample.get("ready"):
        _delete(db, data_path, sample)


# ---------------------------------------------------------------- the create_sample job's side


def mapping_adapter(sample: dict) -> str | None:
    """The adapter to cut from a small-RNA sample's reads before mapping or assembly.

    The one given on the sample, else the one found when it was created (None when none was),
    else ``"detect"`` (``bio.trim.DETECT``): samples made before trimming existed are detected
    on their reads.

    >>> mapping_adapter({"adapter": "TGGAATTC"}), mapping_adapter({"quality": {"trimming": {"adapter": None}}})
    ('TGGAATTC', None)
    >>> mapping_adapter({"quality": {"count": 10}})
    'detect'
    """
    if sample.get("adapter"):
        return sample["adapter"]
    trimming = (sample.get("quality") or {}).get("trimming")
    return trimming.get("adapter") if trimming is not None else "detect"


def read_names(sample: dict) -> tuple[str, ...]:
    return READ_NAMES if sample.get("paired") else READ_NAMES[:1]


def check_read_name(sample: dict, name: str) -> None:
    if name not in read_names(sample):
        raise BadRequest(f"Read file name must be one of: {', '.join(read_names(sample))}")


def store_reads(db: Database, data_path: str, sample: dict, name: str, stream: BinaryIO, limit: int) -> dict:
    """Write one read file of an unready sample; a second upload of a name replaces the first."""
    check_read_name(sample, name)
    if sample.get("ready"):
        raise Conflict("Sample is already finalized")
    size = store_at(data_path).put(read_key(sample, name), stream, limit)
    if size == 0:
        raise BadRequest("Read file is empty")
    entry = {"name": name, "size": size, "uploaded_at": now()}
    update_array(
        db.samples,
        sample["_id"],
        "reads",
        lambda reads: sorted([r for r in reads if r["name"] != name] + [entry], key=lambda r: r["name"]),
    )
    return entry


def read_key(sample: dict, name: str) -> str:
    return f"samples/{sample['_id']}/{name}"


def stored_read(sample: dict, name: str) -> str:
    """The store key of a read file the sample has."""
    if not any(r["name"] == name for r in sample.get("reads", [])):
        raise NotFound()
    return read_key(sample, name)


def finalize(db: Database, data_path: str, sample: dict, quality: dict) -> dict:
    """Mark the sample ready with its quality once its reads are in; its uploads are consumed."""
    if sample.get("ready"):
        raise Conflict("Sample is already finalized")
    have = {r["name"] for r in sample.get("reads", [])}
    missing = [n for n in read_names(sample) if n not in have]
    if missing:
        raise Conflict(f"Sample requires its read files before it is finalized. Missing files: {', '.join(missing)}")
    if not db.samples.update_one(
        {"_id": sample["_id"], "ready": False}, {"$set": {"quality": quality, "ready": True}}
    ).modified_count:
        raise Conflict("Sample is already finalized")
    consume_uploads(db, data_path, [f["id"] for f in sample.get("files", [])])
    return get_sample_or_404(db, sample["_id"])


def consume_uploads(db: Database, data_path: str, upload_ids: list[str]) -> None:
    """The uploads became part of a finished object: drop them (reserved ones included)."""
    db.uploads.update_many(
        {"_id": {"$in": upload_ids}}, {"$set": {"removed": True, "reserved": False, "removed_at": now()}}
    )
    store = store_at(data_path)
    for upload_id in upload_ids:
        store.delete(uploads.upload_key(upload_id))
