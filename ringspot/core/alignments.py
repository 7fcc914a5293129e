"""Alignments: one sample's reads mapped to one reference sequence (One Codex's Alignment resource).

An alignment is created with its ``alignment`` job (``tasks.alignments.start_alignment``). The
sequence is written at once to ``DATA_PATH/alignments/<id>/reference.fa``, so the job maps to
the genome as it was when asked for, whatever later edits of the OTU do. The job uploads the
sorted BAM, its index, the depths and the coverage plots, then finalizes the alignment with its
statistics (``complete`` and ``success`` true). A job that fails or is cancelled leaves the
alignment ``complete`` but not ``success``, with the job's error as ``error_msg``, and no files.
"""

from __future__ import annotations

import hashlib
import io
import re
from typing import BinaryIO

from pymongo.database import Database

from .auth import Client
from .db import update_array
from .errors import BadRequest, Conflict, InsufficientRights, NotFound
from .pagination import paginate
from .rights import can_read_reference, sample_visibility_query
from .storage import store_at
from .utils import now

#: Files the job uploads, all required before it may finalize.
FILE_NAMES = ("alignment.bam", "alignment.bam.bai", "depth.json.gz", "coverage.svg", "coverage.png")
REFERENCE_FASTA = "reference.fa"
MEDIA_TYPES = {
    "alignment.bam": "application/octet-stream",
    "alignment.bam.bai": "application/octet-stream",
    "depth.json.gz": "application/gzip",
    "coverage.svg": "image/svg+xml",
    "coverage.png": "image/png",
    REFERENCE_FASTA: "text/plain",
}
#: Job states in which an alignment is still being worked on.
ACTIVE_JOB_STATES = ("waiting", "running")
#: The part of an accession before its version: ``NC_005266.2`` -> ``NC_005266``.
_VERSION = re.compile(r"\.\d+$")


def alignment_key(alignment_id: str, name: str) -> str:
    return f"alignments/{alignment_id}/{name}"


def remove_files(data_path: str, alignment_id: str) -> None:
    store_at(data_path).delete_prefix(f"alignments/{alignment_id}")


def get_alignment_or_404(db: Database, alignment_id: str) -> dict:
    doc = db.alignments.find_one({"_id": alignment_id})
    if doc is None:
        raise NotFound()
    return doc


def get_parent_sample(db: Database, alignment: dict) -> dict:
    """The sample the alignment belongs to; a missing one is a 400, as for analyses."""
    sample = db.samples.find_one({"_id": alignment["sample"]["id"]})
    if sample is None:
        raise BadRequest("Parent sample does not exist")
    return sample


def get_reference_or_400(db: Database, alignment: dict) -> dict:
    reference = db.refs.find_one({"_id": alignment["reference"]["id"]})
    if reference is None:
        raise BadRequest("Reference does not exist")
    return reference


# ---------------------------------------------------------------- listing


def visible_query(db: Database, client: Client) -> dict:
    """Alignments of the samples ``client`` may read."""
    if client.administrator:
        return {}
    sample_ids = [doc["_id"] for doc in db.samples.find(sample_visibility_query(client), {"_id": 1})]
    return {"sample.id": {"$in": sample_ids}}


def find_alignments(
    db: Database,
    *,
    page: int,
    per_page: int,
    base_query: dict | None = None,
    sample_id: str | None = None,
    complete: bool | None = None,
) -> dict:
    query: dict = {}
    if sample_id is not None:
        query["sample.id"] = sample_id
    if complete is not None:
        query["complete"] = complete
    return paginate(
        db.alignments, query, base_query=base_query, page=page, per_page=per_page, sort=[("created_at", -1), ("_id", 1)]
    )


# ---------------------------------------------------------------- creation


def find_sequence(
    db: Database, *, sequence_id: str | None = None, accession: str | None = None, ref_id: str | None = None
) -> tuple[dict, dict]:
    """The sequence to align to and its reference, by sequence id or by accession in a reference; else a 400.

    An accession matches with or without its version (``NC_005266`` finds ``NC_005266.1``).
    """
    if sequence_id is not None:
        sequence = db.sequences.find_one({"_id": sequence_id})
        if sequence is None or (ref_id is not None and sequence["reference"]["id"] != ref_id):
            raise BadRequest("Sequence does not exist")
        ref_id = sequence["reference"]["id"]
        reference = db.refs.find_one({"_id": ref_id})
        if reference is None:
            raise BadRequest("Reference does not exist")
        return sequence, reference
    reference = db.refs.find_one({"_id": ref_id})
    if reference is None:
        raise BadRequest("Reference does not exist")
    accession = (accession or "").strip()
    base = _VERSION.sub("", accession)
    pattern = f"^{re.escape(base)}(\\.[0-9]+)?$"
    found = list(
        db.sequences.find({"reference.id": ref_id, "accession": {"$regex": pattern, "$options": "i"}})
        .sort("_id", 1)
        .limit(10)
    )
    exact = [s for s in found if s.get("accession") == accession]
    matches = exact or found
    if not matches:
        raise BadRequest(f"No sequence with accession {accession} in the reference")
    if len({s["_id"] for s in matches}) > 1:
        ids = ", ".join(s["_id"] for s in matches)
        raise BadRequest(f"Accession {accession} matches several sequences ({ids}): give a sequence_id")
    return matches[0], reference


def check_inputs(
    db: Database,
    client: Client,
    sample: dict,
    *,
    sequence_id: str | None = None,
    accession: str | None = None,
    ref_id: str | None = None,
) -> tuple[dict, dict]:
    """The sequence and reference of a new alignment of ``sample``: 400 unless all is usable, 403
    when ``client`` may not read the reference named by ``ref_id``.

    A reference the caller may not read is refused before any accession is looked up in it, and
    a ``sequence_id`` in one answers as a missing sequence: no answer tells what it holds.
    """
    if not sample.get("ready"):
        raise BadRequest("Sample is not ready")
    named = db.refs.find_one({"_id": ref_id}) if ref_id is not None else None
    if named is not None and not can_read_reference(client, named):
        raise InsufficientRights()
    sequence, reference = find_sequence(db, sequence_id=sequence_id, accession=accession, ref_id=ref_id)
    if not can_read_reference(client, reference):
        raise BadRequest("Sequence does not exist")
    if not sequence.get("sequence"):
        raise BadRequest("Sequence is empty")
    return sequence, reference


def fasta_name(sequence: dict) -> str:
    """The reference name in the FASTA and BAM: the accession, else the sequence id.

    >>> fasta_name({"_id": "o6g9f7oq", "accession": "NC_005266"}), fasta_name({"_id": "x1", "accession": "a b"})
    ('NC_005266', 'x1')
    """
    accession = (sequence.get("accession") or "").strip()
    if accession and not any(c.isspace() for c in accession) and accession.isprintable():
        return accession
    return sequence["_id"]


def sequence_fasta(sequence: dict) -> bytes:
    """The sequence as a FASTA record, 80 bases a line.

    >>> sequence_fasta({"_id": "s", "accession": "NC_1", "definition": "A virus", "sequence": "ACGT"})
    b'>NC_1 A virus\\nACGT\\n'
    """
    bases = "".join(sequence["sequence"].split()).upper()
    lines = [bases[i : i + 80] for i in range(0, len(bases), 80)]
    header = f">{fasta_name(sequence)} {sequence.get('definition') or ''}".rstrip()
    return ("\n".join([header, *lines]) + "\n").encode()


def create_alignment(
    db: Database,
    data_path: str,
    *,
    alignment_id: str,
    job_id: str,
    sample: dict,
    sequence: dict,
    reference: dict,
    user_id: str,
    job_args: dict,
) -> dict:
    """Write the sequence's FASTA, then insert the alignment (incomplete)."""
    fasta = sequence_fasta(sequence)
    store_at(data_path).put(alignment_key(alignment_id, REFERENCE_FASTA), io.BytesIO(fasta), len(fasta))
    otu = db.otus.find_one({"_id": sequence.get("otu_id")}, {"name": 1, "taxid": 1}) or {}
    created = now()
    doc: dict = {
        "_id": alignment_id,
        "created_at": created,
        "updated_at": created,
        "complete": False,
        "success": False,
        "error_msg": None,
        "job": {"id": job_id},
        "job_args": job_args,
        "sample": {"id": sample["_id"], "name": sample.get("name")},
        "reference": {
            "id": reference["_id"],
            "name": reference.get("name"),
            "sequence_id": sequence["_id"],
            "accession": sequence.get("accession"),
            "definition": sequence.get("definition"),
            "otu": {"id": sequence.get("otu_id"), "name": otu.get("name")},
            "length": len("".join(sequence["sequence"].split())),
            "sha256": hashlib.sha256(fasta).hexdigest(),
        },
        # Seed 002: the genome's taxon, from its OTU (null when the OTU names none).
        "tax_id": otu.get("taxid"),
        "statistics": None,
        "user": {"id": user_id},
        "files": [],
    }
    db.alignments.insert_one(doc)
    return doc


# ---------------------------------------------------------------- the job's side


def check_file_name(name: str) -> None:
    if name not in FILE_NAMES:
        raise BadRequest(f"File name must be one of: {', '.join(FILE_NAMES)}")


def add_file(db: Database, data_path: str, alignment_id: str, name: str, stream: BinaryIO, limit: int) -> dict:
    """Store a file of an unfinished alignment; a name uploaded again replaces it (a retried job)."""
    check_file_name(name)
    if get_alignment_or_404(db, alignment_id).get("complete"):
        raise Conflict("Alignment is complete")
    size = store_at(data_path).put(alignment_key(alignment_id, name), stream, limit)
    entry = {"name": name, "size": size, "uploaded_at": now()}
    try:
        update_array(
            db.alignments,
            alignment_id,
            "files",
            lambda files: sorted([f for f in files if f["name"] != name] + [entry], key=lambda f: f["name"]),
        )
    except KeyError:
        raise NotFound() from None
    return entry


def file_key(data_path: str, alignment: dict, name: str) -> str:
    """Store key of an uploaded file of the alignment, or of its reference FASTA; 404 otherwise."""
    key = alignment_key(alignment["_id"], name)
    if name == REFERENCE_FASTA:
        if not store_at(data_path).exists(key):
            raise NotFound()
        return key
    if name not in FILE_NAMES or not any(f["name"] == name for f in alignment.get("files", [])):
        raise NotFound()
    return key


def finalize(db: Database, alignment_id: str, statistics: dict) -> dict:
    """Record the statistics and mark the alignment complete and successful; only once, files first."""
    alignment = get_alignment_or_404(db, alignment_id)
    if alignment.get("complete"):
        raise Conflict("Alignment is complete")
    have = {f["name"] for f in alignment.get("files", [])}
    missing = [name for name in FILE_NAMES if name not in have]
    if missing:
        raise Conflict(f"Alignment requires its files before it is finalized. Missing files: {', '.join(missing)}")
    if statistics["length"] != alignment["reference"]["length"]:
        raise BadRequest(f"length {statistics['length']} is not the sequence's ({alignment['reference']['length']})")
    update = {
        "$set": {"complete": True, "success": True, "error_msg": None, "statistics": statistics, "updated_at": now()}
    }
    if not db.alignments.update_one({"_id": alignment_id, "complete": False}, update).modified_count:
        raise Conflict("Alignment is complete")
    return get_alignment_or_404(db, alignment_id)


def mark_failed(db: Database, data_path: str, alignment_id: str, error_msg: str) -> None:
    """After a failed or cancelled job: complete, not successful, the reason given, no files kept."""
    update = {
        "$set": {"complete": True, "success": False, "error_msg": error_msg[:1000], "files": [], "updated_at": now()}
    }
    if db.alignments.update_one({"_id": alignment_id, "complete": False}, update).modified_count:
        remove_files(data_path, alignment_id)


def failure_message(job: dict) -> str:
    """``error_msg`` of an alignment whose job ended in ``error`` or ``cancelled``.

    >>> failure_message({"state": "cancelled", "error": None})
    'The alignment job was cancelled'
    >>> failure_message({"state": "error", "error": "bowtie2 exited with code 1: (ERR): bad reads"})
    'The alignment job failed: bowtie2 exited with code 1: (ERR): bad reads'
    """
    if job.get("state") == "cancelled":
        return "The alignment job was cancelled"
    return f"The alignment job failed: {job.get('error') or 'unknown error'}"


# ---------------------------------------------------------------- removal


def remove_alignment(db: Database, data_path: str, alignment: dict) -> None:
    """Remove an alignment and its files, unless its job is still waiting or running."""
    if not alignment.get("complete"):
        job = db.processes.find_one({"_id": alignment["job"]["id"]}, {"state": 1})
        if job is not None and job.get("state") in ACTIVE_JOB_STATES:
            raise Conflict("Alignment is still running")
    if db.alignments.delete_one({"_id": alignment["_id"]}).deleted_count:
        remove_files(data_path, alignment["_id"])
