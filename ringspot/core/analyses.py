"""Analyses: one workflow run (Pathoscope, NuVs) on one sample, its files and its results.

An analysis is created together with its job (``tasks.analyses.start_analysis``), filled in
by that job through the Job API (files, then :func:`finalize` with ``results``) and read back
formatted: Pathoscope hits grouped by OTU, isolate and sequence (spec ``workflows.md`` 1.7).
Files live under ``DATA_PATH/analyses/<id>/``. An analysis whose job fails stays, marked
``failed`` with the job's error (:func:`mark_failed`), until someone removes it: a lab must see
that it failed and why. One whose job is cancelled is removed with its files
(:func:`discard_unfinished`).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import BinaryIO

import bson
import numpy as np
from pymongo.database import Database

from ..bio.coverage import coverage_to_coordinates, covered_fraction, median_depth
from . import hmms
from .auth import Client
from .db import update_array
from .errors import BadRequest, Conflict, NotFound
from .files import check_file_name, path_in_store, remove_tree
from .hmms import format_nuvs_results
from .indexes import latest_ready_index
from .otus import patch_otu_to_version
from .pagination import paginate
from .rights import require_sample_read, sample_visibility_query
from .storage import store_at
from .utils import now

WORKFLOWS = ("pathoscope_bowtie", "nuvs")
#: Formats an analysis file may declare (Virtool's analysis file formats).
FILE_FORMATS = ("sam", "bam", "fasta", "fastq", "csv", "tsv", "json", "unknown")
_EXTENSION_FORMATS = {
    "fa": "fasta",
    "fasta": "fasta",
    "fq": "fastq",
    "fastq": "fastq",
    "sam": "sam",
    "bam": "bam",
    "csv": "csv",
    "tsv": "tsv",
    "json": "json",
}
#: Results larger than this (BSON bytes) are stored as ``results.json`` beside the files, as
#: Virtool does, since a MongoDB document may not exceed 16 MiB.
MAX_INLINE_RESULTS = 12 * 1024 * 1024
RESULTS_FILE = "results.json"
#: Job states in which an unfinished analysis is still being worked on.
ACTIVE_JOB_STATES = ("waiting", "running")


def results_key(analysis_id: str) -> str:
    return f"analyses/{analysis_id}/{RESULTS_FILE}"


def analysis_dir(data_path: str, analysis_id: str) -> Path:
    """The analysis's local folder: coverage plots drawn from its results are cached there."""
    return path_in_store(data_path, "analyses", analysis_id)


def get_analysis_or_404(db: Database, analysis_id: str) -> dict:
    doc = db.analyses.find_one({"_id": analysis_id})
    if doc is None:
        raise NotFound()
    return doc


def get_parent_sample(db: Database, analysis: dict) -> dict:
    """The sample the analysis belongs to; a missing one is a 400, as in the seed."""
    sample = db.samples.find_one({"_id": analysis["sample"]["id"]})
    if sample is None:
        raise BadRequest("Parent sample does not exist")
    return sample


# ---------------------------------------------------------------- listing


def visible_query(db: Database, client: Client) -> dict:
    """Analyses of the samples ``client`` may read."""
    if client.administrator:
        return {}
    sample_ids = [doc["_id"] for doc in db.samples.find(sample_visibility_query(client), {"_id": 1})]
    return {"sample.id": {"$in": sample_ids}}


def find_analyses(
    db: Database,
    *,
    page: int,
    per_page: int,
    base_query: dict | None = None,
    sample_id: str | None = None,
    workflow: str | None = None,
    ready: bool | None = None,
) -> dict:
    query: dict = {}
    if sample_id is not None:
        query["sample.id"] = sample_id
    if workflow is not None:
        query["workflow"] = workflow
    if ready is not None:
        query["ready"] = ready
    return paginate(
        db.analyses,
        query,
        base_query=base_query,
        page=page,
        per_page=per_page,
        sort=[("created_at", -1)],
        projection={"results": 0, "diagnosis": 0},
    )


# ---------------------------------------------------------------- creation


def get_reference_or_400(db: Database, ref_id: str) -> dict:
    reference = db.refs.find_one({"_id": ref_id})
    if reference is None:
        raise BadRequest("Reference does not exist")
    return reference


def check_inputs(
    db: Database, sample: dict, ref_id: str, subtraction_ids: list[str] | None, workflow: str
) -> tuple[dict, dict, list[dict]]:
    """The reference, its latest ready index and the subtractions of a new analysis, or a 400.

    ``subtraction_ids`` None means the sample's own subtractions.
    """
    if not sample.get("ready"):
        raise BadRequest("Sample is not ready")
    reference = get_reference_or_400(db, ref_id)
    index = latest_ready_index(db, ref_id)
    if index is None:
        raise BadRequest("No index is ready for the reference")
    if subtraction_ids is None:
        subtraction_ids = list(sample.get("subtractions") or [])
    subtraction_ids = list(dict.fromkeys(subtraction_ids))
    found = {
        doc["_id"]: doc for doc in db.subtractions.find({"_id": {"$in": subtraction_ids}}, {"name": 1, "ready": 1})
    }
    if any(subtraction_id not in found for subtraction_id in subtraction_ids):
        raise BadRequest("Subtraction does not exist")
    if any(not found[subtraction_id].get("ready") for subtraction_id in subtraction_ids):
        raise BadRequest("Subtraction is not ready")
    if workflow == "nuvs" and not hmms.profiles_installed(db):
        raise BadRequest("HMM profiles are not installed")
    return reference, index, [found[subtraction_id] for subtraction_id in subtraction_ids]


def create_analysis(
    db: Database,
    *,
    analysis_id: str,
    job_id: str,
    workflow: str,
    sample: dict,
    reference: dict,
    index: dict,
    subtractions: list[dict],
    user_id: str,
) -> dict:
    created = now()
    doc = {
        "_id": analysis_id,
        "workflow": workflow,
        # Seed 000's name of the workflow; both are kept, as clients read one or the other.
        "algorithm": workflow,
        "ready": False,
        "created_at": created,
        "updated_at": created,
        "job": {"id": job_id},
        "sample": {"id": sample["_id"], "name": sample.get("name")},
        "index": {"id": index["_id"], "version": index["version"]},
        "reference": {"id": reference["_id"], "name": reference.get("name")},
        "subtractions": [{"id": s["_id"], "name": s.get("name")} for s in subtractions],
        "user": {"id": user_id},
        "results": None,
        "files": [],
    }
    db.analyses.insert_one(doc)
    return doc


# ---------------------------------------------------------------- results


def require_unfinalized(analysis: dict) -> None:
    """A finalized analysis takes no other results (409), whatever they hold."""
    if analysis.get("ready"):
        raise Conflict("There is already a result for this analysis")


def finalize(db: Database, data_path: str, analysis_id: str, results: dict) -> dict:
    """Store the results and mark the analysis ready; only once.

    A Pathoscope ``diagnosis`` (one row per OTU) leaves the results for the analysis document
    itself, where seed 000 has it: small, and read with the analysis.
    """
    analysis = get_analysis_or_404(db, analysis_id)
    require_unfinalized(analysis)
    fields: dict = {"algorithm": analysis["workflow"]}
    if analysis["workflow"] == "pathoscope_bowtie" and "diagnosis" in results:
        results = dict(results)
        fields["diagnosis"] = results.pop("diagnosis")
    stored: dict | str = results
    if _results_go_to_file(analysis["workflow"], results):
        encoded = json.dumps(results).encode()
        store_at(data_path).put(results_key(analysis_id), io.BytesIO(encoded), len(encoded))
        stored = "file"
    update = {"$set": {"ready": True, "results": stored, "updated_at": now(), **fields}}
    if not db.analyses.update_one({"_id": analysis_id, "ready": False}, update).modified_count:
        raise Conflict("There is already a result for this analysis")
    return load_results(data_path, get_analysis_or_404(db, analysis_id))


def _results_go_to_file(workflow: str, results: dict) -> bool:
    """Pathoscope results (the depth at every position of every hit: hundreds of KB) are written
    once and read whole, so they live in ``results.json`` and analysis documents stay small for
    the queries that scan them; NuVs results stay in the document, where BLAST records are
    written into them, unless they would pass the document size limit."""
    return workflow == "pathoscope_bowtie" or len(bson.encode({"results": results})) > MAX_INLINE_RESULTS


def load_results(data_path: str, analysis: dict) -> dict:
    """The analysis with ``results`` read back from its file when they are kept there."""
    if analysis.get("results") != "file":
        return analysis
    encoded = b"".join(store_at(data_path).chunks(results_key(analysis["_id"])))
    return {**analysis, "results": json.loads(encoded)}


def format_analysis(db: Database, data_path: str, analysis: dict, all_otus: bool = False) -> dict:
    """The analysis as a user reads it: results loaded, Pathoscope hits grouped by OTU, NuVs hits annotated.

    The diagnosis lists the OTUs reads were assigned to; ``all_otus`` adds those that drew
    alignments but kept no read after reassignment.
    """
    analysis = {**load_results(data_path, analysis), "algorithm": analysis.get("algorithm") or analysis["workflow"]}
    results = analysis.get("results")
    if not analysis.get("ready") or not isinstance(results, dict):
        return analysis
    if analysis["workflow"] == "pathoscope_bowtie":
        formatted = {
            **analysis,
            "read_count": results.get("read_count"),
            "subtracted_count": results.get("subtracted_count"),
            "results": format_pathoscope(db, results, analysis.get("diagnosis")),
        }
        # An analysis finalized before diagnoses existed has none: it is not shown an empty one.
        if analysis.get("diagnosis") is not None:
            rows = analysis["diagnosis"]
            formatted["diagnosis"] = rows if all_otus else [row for row in rows if row["reads"] > 0]
        return formatted
    if analysis["workflow"] == "nuvs":
        return {**analysis, "results": format_nuvs_results(db, results)}
    return analysis


def format_pathoscope(db: Database, results: dict, diagnosis: list[dict] | None = None) -> dict:
    """Group hits by OTU version, patch each OTU to it and nest isolates and sequences (spec 1.7).

    ``depth`` is Virtool's figure, a mean for a sequence and a median for an isolate or an OTU;
    ``mean_depth`` and ``median_depth`` say which. Sequences carry ``pi``, ``best``, ``reads``
    (final figures), ``coverage``, both depths and ``align`` as change-point coordinates.
    Isolates add ``pi`` (sum), ``coverage`` and both depths of their sequences' depths end to
    end (shortest first); OTUs add ``pi`` (sum), ``coverage`` (best isolate), the median depth
    of the position-wise maximum over isolates and ``reads``:
    the reads assigned to the OTU (its diagnosis row's; without one, its sequences' final
    reads summed), never pi times the read count. Isolates without a hit are left out; OTUs
    come by pi, largest first.
    """
    assigned = {row["id"]: row["reads"] for row in diagnosis or []}
    by_otu: dict[tuple[str, object], list[dict]] = {}
    for hit in results.get("hits") or []:
        by_otu.setdefault((hit["otu"]["id"], hit["otu"]["version"]), []).append(hit)
    otus = [_format_otu(db, otu_id, version, hits, assigned.get(otu_id)) for (otu_id, version), hits in by_otu.items()]
    return {**results, "hits": sorted(otus, key=lambda otu: -otu["pi"])}


def _format_otu(db: Database, otu_id: str, version, hits: list[dict], reads: int | None) -> dict:
    otu = patch_otu_to_version(db, otu_id, version) or _otu_from_hits(otu_id, version, hits)
    by_sequence = {hit["id"]: hit for hit in hits}
    isolates, depths = [], []
    for isolate in otu["isolates"]:
        matched = [
            (sequence, by_sequence[sequence["_id"]])
            for sequence in isolate["sequences"]
            if sequence["_id"] in by_sequence
        ]
        if matched:
            formatted, depth = _format_isolate(isolate, matched)
            isolates.append(formatted)
            depths.append(depth)
    lengths = [len(s.get("sequence") or "") for isolate in otu["isolates"] for s in isolate["sequences"]]
    otu_depth = _positionwise_max(depths)
    pi = sum(isolate["pi"] for isolate in isolates)
    return {
        "id": otu_id,
        "name": otu.get("name"),
        "abbreviation": otu.get("abbreviation", ""),
        "version": version,
        "length": max(lengths, default=0),
        "pi": pi,
        "reads": reads if reads is not None else sum(hit["final"]["reads"] for hit in hits),
        "coverage": max((isolate["coverage"] for isolate in isolates), default=0.0),
        "depth": median_depth(otu_depth),
        "median_depth": median_depth(otu_depth),
        "isolates": isolates,
    }


def _format_isolate(isolate: dict, matched: list[tuple[dict, dict]]) -> tuple[dict, np.ndarray]:
    sequences = [_format_sequence(sequence, hit) for sequence, hit in matched]
    aligns = sorted((np.asarray(hit["align"], dtype=np.int64) for _, hit in matched), key=len)
    depth = np.concatenate(aligns) if aligns else np.zeros(0, dtype=np.int64)
    fields = {key: value for key, value in isolate.items() if key != "sequences"}
    return {
        **fields,
        "pi": sum(s["pi"] for s in sequences),
        "coverage": covered_fraction(depth),
        "depth": median_depth(depth),
        "median_depth": median_depth(depth),
        "mean_depth": round(float(depth.mean()), 2) if len(depth) else 0.0,
        "sequences": sequences,
    }, depth


def _format_sequence(sequence: dict, hit: dict) -> dict:
    final = hit["final"]
    return {
        "id": sequence["_id"],
        "accession": sequence.get("accession"),
        "definition": sequence.get("definition"),
        "length": len(sequence.get("sequence") or "") or len(hit["align"]),
        "pi": final["pi"],
        "best": final["best"],
        "reads": final["reads"],
        "coverage": hit["coverage"],
        "depth": hit["depth"],
        "mean_depth": _mean(hit["align"]),
        "median_depth": median_depth(np.asarray(hit["align"], dtype=np.int64)),
        "align": coverage_to_coordinates(hit["align"]),
    }


def _mean(depth: list[int]) -> float:
    return round(sum(depth) / len(depth), 2) if depth else 0.0


def _positionwise_max(depths: list[np.ndarray]) -> np.ndarray:
    if not depths:
        return np.zeros(0, dtype=np.int64)
    out = np.zeros(max(len(d) for d in depths), dtype=np.int64)
    for depth in depths:
        np.maximum(out[: len(depth)], depth, out=out[: len(depth)])
    return out


def _otu_from_hits(otu_id: str, version, hits: list[dict]) -> dict:
    """A stand-in for an OTU the database no longer knows: one isolate holding the hit sequences."""
    return {
        "_id": otu_id,
        "name": None,
        "abbreviation": "",
        "version": version,
        "isolates": [
            {
                "id": "unknown",
                "default": False,
                "source_type": "unknown",
                "source_name": "",
                "sequences": [{"_id": hit["id"]} for hit in hits],
            }
        ],
    }


# ---------------------------------------------------------------- files


def file_format(name: str, declared: str | None = None) -> str:
    """The declared format, else one guessed from the extension (``.gz`` ignored).

    >>> file_format("report.tsv"), file_format("reads.fq.gz"), file_format("x.bin")
    ('tsv', 'fastq', 'unknown')
    """
    if declared:
        if declared not in FILE_FORMATS:
            raise BadRequest(f"Unsupported file format: {declared}")
        return declared
    base = name[:-3] if name.endswith(".gz") else name
    return _EXTENSION_FORMATS.get(base.rsplit(".", 1)[-1].lower() if "." in base else "", "unknown")


def add_file(
    db: Database,
    data_path: str,
    analysis_id: str,
    name: str,
    stream: BinaryIO,
    limit: int,
    declared_format: str | None = None,
) -> dict:
    """Store an uploaded result file; uploading a name again replaces it (a retried job re-uploads)."""
    check_file_name(name)
    if name == RESULTS_FILE:
        raise BadRequest("Invalid file name")
    analysis = get_analysis_or_404(db, analysis_id)
    if analysis.get("ready"):
        raise Conflict("Analysis is finalized")
    fmt = file_format(name, declared_format)
    previous = next((f for f in analysis.get("files", []) if f["name"] == name), None)
    file_id = previous["id"] if previous else max((f["id"] for f in analysis.get("files", [])), default=0) + 1
    name_on_disk = f"{file_id}-{name}"
    size = store_at(data_path).put(f"analyses/{analysis_id}/{name_on_disk}", stream, limit)
    entry = {
        "id": file_id,
        "analysis": analysis_id,
        "name": name,
        "name_on_disk": name_on_disk,
        "description": None,
        "format": fmt,
        "size": size,
        "uploaded_at": now(),
    }
    try:
        update_array(db.analyses, analysis_id, "files", lambda files: [f for f in files if f["name"] != name] + [entry])
    except KeyError:
        raise NotFound() from None
    return entry


def find_file(analysis: dict, name: str) -> dict:
    """The entry of the file called ``name`` (or with that numeric id) of the analysis."""
    for entry in analysis.get("files", []):
        if entry["name"] == name or str(entry["id"]) == name:
            return entry
    raise NotFound()


def file_key(analysis: dict, entry: dict) -> str:
    return f"analyses/{analysis['_id']}/{entry['name_on_disk']}"


# ---------------------------------------------------------------- removal


def _delete(db: Database, data_path: str, analysis_id: str, query: dict | None = None) -> bool:
    deleted = db.analyses.delete_one({"_id": analysis_id, **(query or {})}).deleted_count
    if deleted:
        store_at(data_path).delete_prefix(f"analyses/{analysis_id}")
        # Coverage plots drawn on this machine from the results.
        remove_tree(analysis_dir(data_path, analysis_id))
    return bool(deleted)


def remove_analysis(db: Database, data_path: str, analysis: dict) -> None:
    """Remove an analysis and its files, unless its job is still waiting or running."""
    if not analysis.get("ready"):
        job = db.processes.find_one({"_id": analysis["job"]["id"]}, {"state": 1})
        if job is not None and job.get("state") in ACTIVE_JOB_STATES:
            raise Conflict("Analysis is still running")
    _delete(db, data_path, analysis["_id"])


def remove_unfinished(db: Database, data_path: str, analysis: dict) -> None:
    """Job API removal: only an analysis not yet finalized may go this way."""
    if analysis.get("ready") or not _delete(db, data_path, analysis["_id"], {"ready": False}):
        raise Conflict("Analysis is finalized")


def mark_failed(db: Database, data_path: str, analysis_id: str, error: str | None) -> None:
    """After a failed job: the unfinished analysis stays, ``failed`` with the error; its partial files go."""
    update = {"$set": {"failed": True, "error": (error or "The job failed")[:1000], "files": [], "updated_at": now()}}
    if db.analyses.update_one({"_id": analysis_id, "ready": False}, update).modified_count:
        remove_tree(analysis_dir(data_path, analysis_id))


def discard_unfinished(db: Database, data_path: str, analysis_id: str) -> None:
    """Clean-up of a failed or cancelled job: its unfinished analysis and files go."""
    _delete(db, data_path, analysis_id, {"ready": False})


# ---------------------------------------------------------------- batches


def readable_samples(db: Database, client: Client, sample_ids: list[str] | None, label: str | None) -> list[dict]:
    """The readable samples with ``label``, or the samples named by id: a missing one is a 404 naming
    it and an unreadable one a 403, as when a sample is named alone."""
    if label is not None:
        return list(db.samples.find({**sample_visibility_query(client), "labels": label}).sort("name", 1))
    found = {doc["_id"]: doc for doc in db.samples.find({"_id": {"$in": sample_ids or []}})}
    absent = [sample_id for sample_id in sample_ids or [] if sample_id not in found]
    if absent:
        raise NotFound(f"Sample {absent[0]} not found")
    for sample in found.values():
        require_sample_read(client, sample)
    return [found[sample_id] for sample_id in sample_ids or []]


def check_batch(
    db: Database, samples: list[dict], ref_id: str, subtraction_ids: list[str] | None, workflow: str
) -> None:
    """Every sample of a batch can start its analysis, or a 400 listing those that cannot (nothing starts)."""
    if not samples:
        raise BadRequest("The batch names no sample")
    problems = []
    for sample in samples:
        try:
            check_inputs(db, sample, ref_id, subtraction_ids, workflow)
        except BadRequest as error:
            problems.append(f"{sample.get('name') or sample['_id']} ({sample['_id']}): {error}")
    if problems:
        raise BadRequest("Nothing was started: " + "; ".join(problems))
