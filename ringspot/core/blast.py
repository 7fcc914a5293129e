"""BLAST of NuVs contigs: the record kept on the analysis, and the local BLAST database.

The record of contig ``i`` lives at ``results.hits[i].blast``: ``{rid, ready, interval,
last_checked_at, result, error, backend, process: {id}, created_at}``. Each record belongs to
the process that fills it; a new request replaces the record with one of a new process, and a
superseded process can no longer write (every update checks the owner).

The wire-compatible servers we run on differ in how they update one element of an array
(nx-27017 ignores ``hits.3.blast``, SecantusDB refuses ``hits.$.blast`` on a nested array),
and nx-27017 mangles ``$push``-ed sub-documents, so a record is written by replacing
``results.hits`` whole, guarded by the analysis's ``_rev`` (the optimistic lock of
``core.db.update_array``, which cannot be used as is on a nested field): a concurrent BLAST of
another contig makes us read again and retry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pymongo.database import Database

from ..bio import blast as bio_blast
from .errors import BadRequest, Conflict, NotFound
from .files import path_in_store
from .utils import new_id, now

BACKENDS = ("ncbi", "local")
#: What ``_write``'s ``change`` returns to leave the contig without a record.
NO_RECORD: dict = {}
#: Optimistic-lock attempts before giving up on a record update.
MAX_WRITE_ATTEMPTS = 50
#: Local databases unused this long (seconds) are removed when a newer one is built.
STALE_DATABASE_AGE = 3600


# ---------------------------------------------------------------- the analysis and its contig


def get_analysis_or_404(db: Database, analysis_id: str) -> dict:
    doc = db.analyses.find_one({"_id": analysis_id})
    if doc is None:
        raise NotFound("Analysis not found")
    return doc


def get_parent_sample(db: Database, analysis: dict) -> dict:
    sample = db.samples.find_one({"_id": (analysis.get("sample") or {}).get("id")})
    if sample is None:
        raise BadRequest("Parent sample does not exist")
    return sample


def nuvs_hits(analysis: dict) -> list:
    results = analysis.get("results")
    hits = results.get("hits") if isinstance(results, dict) else results
    return hits if isinstance(hits, list) else []


def get_contig_index(analysis: dict, sequence_index: str | int) -> int:
    """The position of the NuVs contig ``sequence_index``, if the analysis can be BLASTed at all."""
    if analysis.get("workflow") != "nuvs":
        raise Conflict("Not a NuVs analysis")
    if not analysis.get("ready"):
        raise Conflict("Analysis is still running")
    index = _as_index(sequence_index)
    hits = nuvs_hits(analysis)
    if index is None or index >= len(hits) or hits[index].get("index", index) != index:
        raise NotFound("Sequence not found")
    return index


def _as_index(value: str | int) -> int | None:
    if isinstance(value, int):
        return value if value >= 0 else None
    return int(value) if value.isdigit() and value.isascii() else None


# ---------------------------------------------------------------- the record


def new_record(process_id: str, backend: str) -> dict:
    t = now()
    return {
        "rid": None,
        "ready": False,
        "interval": bio_blast.INITIAL_INTERVAL,
        "last_checked_at": t,
        "result": None,
        "error": None,
        "backend": backend,
        "process": {"id": process_id},
        "created_at": t,
    }


def _write(db: Database, analysis_id: str, index: int, change: Callable[[dict | None], dict | None]) -> dict | None:
    """Replace contig ``index``'s record by ``change(current)``; None from ``change`` writes nothing."""
    for _ in range(MAX_WRITE_ATTEMPTS):
        analysis = db.analyses.find_one({"_id": analysis_id}, {"results": 1, "_rev": 1})
        if analysis is None:
            return None
        hits = nuvs_hits(analysis)
        if index >= len(hits):
            return None
        record = change(hits[index].get("blast"))
        if record is None:
            return None
        if record is NO_RECORD:
            hits[index] = {key: value for key, value in hits[index].items() if key != "blast"}
        else:
            hits[index] = {**hits[index], "blast": record}
        revision = analysis.get("_rev", 0)
        guard = {"_rev": revision} if revision else {"_rev": {"$exists": False}}
        update = {"$set": {"results.hits": hits, "_rev": revision + 1}}
        if db.analyses.update_one({"_id": analysis_id, **guard}, update).modified_count:
            return record
        time.sleep(0.01)
    raise Conflict("The analysis is being changed by too many BLAST searches at once")


def replace_record(db: Database, analysis_id: str, index: int, record: dict) -> dict | None:
    """Put a fresh record on the contig; return the one it replaced (or None)."""
    previous: list = [None]

    def change(current):
        previous[0] = current
        return record

    _write(db, analysis_id, index, change)
    return previous[0]


def restore_record(db: Database, analysis_id: str, index: int, process_id: str, previous: dict | None) -> None:
    """Put back the record that ``process_id``'s record replaced (none if there was none), as long
    as the contig still holds ``process_id``'s: a request that could not start leaves no trace."""

    def change(current):
        if not current or (current.get("process") or {}).get("id") != process_id:
            return None
        return previous or NO_RECORD

    _write(db, analysis_id, index, change)


def contig_sequence(db: Database, analysis_id: str, index: int) -> str:
    """The nucleotide sequence of NuVs contig ``index``."""
    analysis = db.analyses.find_one({"_id": analysis_id}, {"results": 1})
    if analysis is None:
        raise NotFound()
    return nuvs_hits(analysis)[index]["sequence"]


def update_record(db: Database, analysis_id: str, index: int, process_id: str, **changes) -> dict | None:
    """Change fields of the record owned by ``process_id``; None when a newer request replaced it."""

    def change(current):
        if not current or (current.get("process") or {}).get("id") != process_id:
            return None
        return {**current, **changes}

    return _write(db, analysis_id, index, change)


def get_record(db: Database, analysis_id: str, index: int) -> dict | None:
    analysis = db.analyses.find_one({"_id": analysis_id}, {"results": 1})
    hits = nuvs_hits(analysis) if analysis else []
    return hits[index].get("blast") if index < len(hits) else None


# ---------------------------------------------------------------- local BLAST database


def database_key(db: Database) -> str:
    """A digest of every OTU's id and version (any sequence change bumps its OTU's version)."""
    digest = hashlib.sha256()
    for otu in db.otus.find({}, {"version": 1}).sort("_id", 1):
        digest.update(f"{otu['_id']}:{otu.get('version')}\n".encode())
    digest.update(f"sequences:{db.sequences.count_documents({})}".encode())
    return digest.hexdigest()[:16]


def _write_reference_fasta(db: Database, fasta: Path) -> dict[str, str]:
    """Every sequence of every reference as FASTA ``>{accession} {definition}``; returns accession -> OTU name."""
    otu_names = {otu["_id"]: otu.get("name", "") for otu in db.otus.find({}, {"name": 1})}
    names: dict[str, str] = {}
    count = 0
    with open(fasta, "w") as handle:
        for sequence in db.sequences.find({}, {"accession": 1, "definition": 1, "sequence": 1, "otu_id": 1}):
            accession = "".join((sequence.get("accession") or sequence["_id"]).split()) or sequence["_id"]
            definition = " ".join((sequence.get("definition") or "").split())
            handle.write(f">{accession} {definition}\n{sequence.get('sequence', '')}\n")
            names.setdefault(accession, otu_names.get(sequence.get("otu_id"), ""))
            count += 1
    if not count:
        raise ValueError("There are no reference sequences to BLAST against")
    return names


def ensure_local_database(
    db: Database, data_path: str, *, timeout: float | None = None, cancel: threading.Event | None = None
) -> Path:
    """The BLAST database of all reference sequences, built once per content under ``cache/blastdb/<key>``."""
    key = database_key(db)
    root = path_in_store(data_path, "cache", "blastdb")
    folder = root / key
    prefix = folder / "references"
    if (folder / "names.json").exists():
        return prefix
    partial = root / f"{key}.partial-{new_id()}"
    partial.mkdir(parents=True)
    try:
        names = _write_reference_fasta(db, partial / "references.fa")
        bio_blast.make_blast_db(partial / "references.fa", partial / "references", timeout=timeout, cancel=cancel)
        (partial / "references.fa").unlink()
        (partial / "names.json").write_text(json.dumps(names))
        with contextlib.suppress(OSError):  # another worker may have won the race
            os.rename(partial, folder)  # atomic
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    _remove_stale_databases(root, keep=key)
    return prefix


def _remove_stale_databases(root: Path, keep: str) -> None:
    cutoff = time.time() - STALE_DATABASE_AGE
    for entry in root.iterdir():
        if entry.name != keep and ".partial-" not in entry.name and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)


def name_local_hits(result: dict, prefix: Path) -> dict:
    """Give each hit of a local search its OTU name (NCBI's ``sciname`` has no local equivalent)."""
    names = json.loads((prefix.parent / "names.json").read_text())
    for hit in result.get("hits", []):
        if hit.get("name") in (None, "", "No name") and names.get(hit.get("accession")):
            hit["name"] = names[hit["accession"]]
    return result
