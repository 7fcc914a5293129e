"""HMM profiles for NuVs: the installed vFam set, its annotations, and installing a new set.

A profile set is installed from two uploads of type ``hmm``: ``profiles.hmm`` (plain or gzipped
HMMER3 text) and its annotations (a JSON list, plain or gzipped, one object per vFam cluster).
Every set gets an id; its annotation documents in ``hmm`` carry ``set.id``, its files live in
``DATA_PATH/hmms/<set id>/``. The ``status`` document ``{_id: "hmm"}`` names the installed set;
switching sets is one write to it, so readers see the old set or the new one, never a mix.
Old sets' annotations stay (hidden): finished NuVs analyses point at their ids.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from . import processes, uploads
from .auth import Client
from .errors import BadRequest, Conflict, NotFound
from .files import path_in_store, remove_tree
from .pagination import paginate
from .storage import check_key, publish, store_at
from .utils import new_id, now

STATUS_ID = "hmm"
PROFILES_FILE = "profiles.hmm"
ANNOTATIONS_FILE = "annotations.json.gz"
#: Files of a set that jobs may download.
SET_FILES = (PROFILES_FILE, ANNOTATIONS_FILE)
#: Annotation fields kept from an uploaded annotation (Virtool's ``annotations.json``).
ANNOTATION_FIELDS = (
    "cluster",
    "count",
    "length",
    "mean_entropy",
    "total_entropy",
    "names",
    "families",
    "genera",
    "entries",
)
_GZIP_MAGIC = b"\x1f\x8b"


def set_dir(data_path: str, set_id: str) -> Path:
    """Where an install prepares a set's files on its machine before they go to the store."""
    return path_in_store(data_path, "hmms", set_id)


def set_key(set_id: str, name: str) -> str:
    return f"hmms/{set_id}/{name}"


# ---------------------------------------------------------------- status


def _default_status() -> dict:
    return {"_id": STATUS_ID, "installed": None, "updating": False, "process": None, "errors": [], "updates": []}


def get_status(db: Database) -> dict:
    return db.status.find_one({"_id": STATUS_ID}) or _default_status()


def ensure_status(db: Database) -> None:
    with contextlib.suppress(DuplicateKeyError):
        db.status.insert_one(_default_status())


def installed_set(db: Database) -> dict | None:
    """The installed set ``{id, version, sha256, ...}``, or None."""
    return get_status(db).get("installed")


def profiles_installed(db: Database) -> bool:
    """True once a profile set is installed: NuVs refuses to start before."""
    return installed_set(db) is not None


# ---------------------------------------------------------------- annotations


def find_hmms(db: Database, *, page: int, per_page: int, term: str | None = None) -> dict:
    """The installed set's annotations by cluster; ``term`` searches their names."""
    installed = installed_set(db)
    base = {"set.id": installed["id"] if installed else {"$in": []}}
    query = {"names": {"$regex": re.escape(term), "$options": "i"}} if term else {}
    return paginate(db.hmm, query, base_query=base, page=page, per_page=per_page, sort=[("cluster", 1)])


def get_hmm_or_404(db: Database, hmm_id: str) -> dict:
    """Any annotation, of the installed set or an older one that analyses still point at."""
    doc = db.hmm.find_one({"_id": hmm_id})
    if doc is None:
        raise NotFound()
    return doc


def set_file_key(db: Database, data_path: str, name: str, set_id: str | None = None) -> str:
    """A file of the installed set, or of ``set_id`` (so a job reads one consistent set)."""
    if name not in SET_FILES:
        raise NotFound()
    if set_id is None:
        installed = installed_set(db)
        if installed is None:
            raise NotFound("No HMM profiles are installed")
        set_id = installed["id"]
    key = set_key(check_key(set_id), name)
    if not store_at(data_path).exists(key):
        raise NotFound()
    return key


def format_nuvs_results(db: Database, results: dict) -> dict:
    """NuVs results as users read them: each HMM hit gains its annotation's ``cluster``,
    ``families`` and ``names`` (Virtool's ``format_nuvs``), whichever set the analysis used."""
    contigs = results.get("hits") or []
    ids = list({hit["hit"] for contig in contigs for orf in contig.get("orfs", []) for hit in orf.get("hits", [])})
    annotations = (
        {doc["_id"]: doc for doc in db.hmm.find({"_id": {"$in": ids}}, {"cluster": 1, "families": 1, "names": 1})}
        if ids
        else {}
    )
    formatted = []
    for contig in contigs:
        orfs = []
        for orf in contig.get("orfs", []):
            hits = [
                {**hit, **{key: annotations.get(hit["hit"], {}).get(key) for key in ("cluster", "families", "names")}}
                for hit in orf.get("hits", [])
            ]
            orfs.append({**orf, "hits": hits})
        formatted.append({**contig, "orfs": orfs})
    return {**results, "hits": formatted}


# ---------------------------------------------------------------- installing


def check_install_uploads(db: Database, client: Client | None, upload_id: str, annotations_upload_id: str) -> None:
    """Both uploads are ``client``'s HMM files; another user's upload answers as a missing one."""
    for upload_id_ in (upload_id, annotations_upload_id):
        upload = uploads.get_usable_upload(db, client, upload_id_, f"Upload does not exist: {upload_id_}")
        if upload["type"] != "hmm":
            raise BadRequest(f"Upload {upload_id_} is not of type hmm")


def claim_install(db: Database, process_id: str) -> None:
    """Mark the status as updating for ``process_id``; 409 while another install runs.

    An install whose process already ended (its worker died and the process was reaped)
    does not block the next one.
    """
    ensure_status(db)
    take = {"$set": {"updating": True, "process": {"id": process_id}, "errors": []}}
    if db.status.update_one({"_id": STATUS_ID, "updating": {"$ne": True}}, take).modified_count:
        return
    status = get_status(db)
    previous = (status.get("process") or {}).get("id")
    running = db.processes.find_one({"_id": previous, "state": {"$nin": list(processes.FINISHED)}}, {"_id": 1})
    if running is None and db.status.update_one({"_id": STATUS_ID, "process.id": previous}, take).modified_count:
        return
    raise Conflict("Install already in progress")


def reserve_install(db: Database, process_id: str, upload_id: str, annotations_upload_id: str) -> dict:
    """Claim the install slot for ``process_id`` and reserve its uploads; returns the process context."""
    claim_install(db, process_id)
    uploads.reserve(db, [upload_id, annotations_upload_id])
    return {"upload_id": upload_id, "annotations_upload_id": annotations_upload_id, "set_id": new_id()}


def unpack_profiles(data_path: str, upload_id: str, set_id: str) -> Path:
    """Copy the uploaded profiles into the set's folder, decompressing a gzipped upload."""
    target = set_dir(data_path, set_id) / PROFILES_FILE
    remove_tree(target.parent)
    target.parent.mkdir(parents=True)
    with uploads.local_upload(data_path, upload_id) as source:
        with open(source, "rb") as raw:
            gzipped = raw.read(2) == _GZIP_MAGIC
        opener = gzip.open if gzipped else open
        try:
            with opener(source, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (EOFError, OSError) as error:
            raise ValueError(f"profiles upload is a damaged gzip file ({error})") from None
    publish(store_at(data_path), set_key(set_id, PROFILES_FILE), target)
    return target


def load_annotations(path: Path) -> list[dict]:
    """The uploaded annotations: a JSON list (plain or gzipped) of objects with an integer ``cluster``."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == _GZIP_MAGIC
    try:
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as handle:
            data = json.load(handle)
    except (EOFError, OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"annotations are not readable JSON ({error})") from None
    if not isinstance(data, list) or not data:
        raise ValueError("annotations must be a non-empty JSON list of cluster objects")
    for position, annotation in enumerate(data):
        if not isinstance(annotation, dict) or type(annotation.get("cluster")) is not int:
            raise ValueError(f"annotation {position} has no integer cluster")
    return data


def annotation_documents(annotations: list[dict], set_id: str) -> list[dict]:
    """``hmm`` documents of a new set: known fields only, new ids, hidden until the switch."""
    docs = []
    for annotation in annotations:
        doc = {key: annotation[key] for key in ANNOTATION_FIELDS if key in annotation}
        doc.update(_id=new_id(), set={"id": set_id}, hidden=True)
        docs.append(doc)
    return docs


def import_annotations(db: Database, docs: list[dict], set_id: str) -> None:
    db.hmm.delete_many({"set.id": set_id})  # a retried run starts the set over
    if docs:
        db.hmm.insert_many(docs)


def write_annotations_file(data_path: str, set_id: str, docs: list[dict]) -> Path:
    """``annotations.json.gz``: the set's annotations with their ids, for NuVs jobs."""
    target = set_dir(data_path, set_id) / ANNOTATIONS_FILE
    partial = target.with_name(target.name + ".partial")
    records = [{"id": d["_id"], **{k: v for k, v in d.items() if k not in ("_id", "set", "hidden")}} for d in docs]
    with gzip.open(partial, "wt") as handle:
        json.dump(records, handle)
    os.replace(partial, target)
    publish(store_at(data_path), set_key(set_id, ANNOTATIONS_FILE), target)
    return target


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def switch_installed(
    db: Database,
    *,
    process_id: str,
    set_id: str,
    profile_names: list[str],
    sha256: str,
    uploads_used: dict,
    user_id: str | None,
) -> dict:
    """Make ``set_id`` the installed set in one write, then hide the previous set's annotations."""
    status = get_status(db)
    previous = status.get("installed")
    installed = {
        "id": set_id,
        "version": (previous or {}).get("version", 0) + 1,
        "sha256": sha256,
        "count": len(profile_names),
        "installed_at": now(),
        "user": {"id": user_id} if user_id else None,
        "process": {"id": process_id},
        **uploads_used,
    }
    # The whole ``updates`` list is written (nx-27017 mangles ``$push``); only this install's
    # process may write the status while it holds the slot, so nothing is lost in between.
    updates = list(status.get("updates") or []) + [installed]
    switched = db.status.update_one(
        {"_id": STATUS_ID, "process.id": process_id},
        {"$set": {"installed": installed, "updating": False, "errors": [], "updates": updates}},
    ).modified_count
    if not switched:
        raise Conflict("Another install took over")
    db.hmm.update_many({"set.id": set_id}, {"$set": {"hidden": False}})
    if previous:
        db.hmm.update_many({"set.id": previous["id"]}, {"$set": {"hidden": True}})
    return installed


def abandon_install(db: Database, data_path: str, process_id: str, set_id: str, error: str) -> None:
    """Undo a failed install: its annotations and files go, the installed set stays as it was."""
    if (installed_set(db) or {}).get("id") == set_id:
        return
    db.hmm.delete_many({"set.id": set_id})
    remove_tree(set_dir(data_path, set_id))
    store_at(data_path).delete_prefix(f"hmms/{set_id}")
    db.status.update_one({"_id": STATUS_ID, "process.id": process_id}, {"$set": {"updating": False, "errors": [error]}})
