"""Who may read a process (or job) document, and who may see what it is about.

A process is read by its user, by administrators and by holders of ``cancel_job``, who keep
the queue moving and so must see all of it. What a process is about (its ``context`` ids and a
job's ``args``, which carry names of references, samples and uploads) is shown only to callers
who may read every object it names: a private sample's name must not leak through the queue.
"""

from __future__ import annotations

from collections.abc import Callable

from .auth import Client
from .db import Database
from .errors import InsufficientRights, NotPermitted
from .rights import can_read_reference, can_use_upload, sample_rights

#: The permission that lets a user see (and cancel) every process, not only their own.
QUEUE_PERMISSION = "cancel_job"


def _owner(process: dict) -> str | None:
    return (process.get("user") or {}).get("id")


def can_read_process(client: Client, process: dict) -> bool:
    return client.has_permission(QUEUE_PERMISSION) or (client.user_id is not None and _owner(process) == client.user_id)


def require_process_read(client: Client, process: dict) -> None:
    if not can_read_process(client, process):
        raise InsufficientRights()


def require_process_cancel(client: Client, process: dict) -> None:
    """The process's user, an administrator or a holder of ``cancel_job`` may cancel it."""
    if not can_read_process(client, process):
        raise NotPermitted()


def process_visibility_query(client: Client) -> dict:
    """A query matching the processes ``client`` may read."""
    return {} if client.has_permission(QUEUE_PERMISSION) else {"user.id": client.user_id}


def _reference_readable(db: Database, client: Client, ref_id: str) -> bool:
    reference = db.refs.find_one({"_id": ref_id})
    return reference is not None and can_read_reference(client, reference)


def _sample_readable(db: Database, client: Client, sample_id: str) -> bool:
    sample = db.samples.find_one({"_id": sample_id})
    return sample is not None and sample_rights(client, sample)[0]


def _parent_sample_readable(collection: str) -> Callable[[Database, Client, str], bool]:
    def readable(db: Database, client: Client, object_id: str) -> bool:
        doc = db[collection].find_one({"_id": object_id}, {"sample": 1})
        return doc is not None and _sample_readable(db, client, doc["sample"]["id"])

    return readable


def _index_readable(db: Database, client: Client, index_id: str) -> bool:
    index = db.indexes.find_one({"_id": index_id}, {"reference": 1})
    return index is not None and _reference_readable(db, client, index["reference"]["id"])


def _sequence_readable(db: Database, client: Client, sequence_id: str) -> bool:
    sequence = db.sequences.find_one({"_id": sequence_id}, {"reference": 1})
    return sequence is not None and _reference_readable(db, client, sequence["reference"]["id"])


def _upload_usable(db: Database, client: Client, upload_id: str) -> bool:
    upload = db.uploads.find_one({"_id": upload_id})
    return upload is not None and can_use_upload(client, upload)


def _anyone(db: Database, client: Client, object_id: str) -> bool:
    return True


#: Context keys naming objects, and who may read each. Subtractions and HMM sets are every user's.
_READERS: dict[str, Callable[[Database, Client, str], bool]] = {
    "ref_id": _reference_readable,
    "source_id": _reference_readable,
    "index_id": _index_readable,
    "sample_id": _sample_readable,
    "sequence_id": _sequence_readable,
    "analysis_id": _parent_sample_readable("analyses"),
    "alignment_id": _parent_sample_readable("alignments"),
    "upload_id": _upload_usable,
    "annotations_upload_id": _upload_usable,
    "upload_ids": _upload_usable,
    "subtraction_id": _anyone,
    "subtraction_ids": _anyone,
    "set_id": _anyone,
    "user_id": _anyone,  # the process's own user, named again
}


def can_read_objects(db: Database, client: Client, process: dict) -> bool:
    """``client`` may read every object ``process`` names (an unknown kind of id counts as unreadable)."""
    if client.administrator:
        return True
    for key, value in (process.get("context") or {}).items():
        if not (key.endswith("_id") or key.endswith("_ids")):
            continue
        reader = _READERS.get(key)
        values = value if isinstance(value, list) else [value]
        if reader is None or not all(reader(db, client, v) for v in values if v is not None):
            return False
    return True
