"""``/samples``, ``/samples/<id>`` and ``/analyses/<id>``: what a lab reads, through the API's own
lookups and rights (``get_readable_sample``, ``get_readable_analysis``) and core's queries."""

from __future__ import annotations

from flask import render_template, request

from ..api.alignments import serialize_alignment
from ..api.analyses import get_readable_analysis, serialize_analysis
from ..api.context import client, db, settings
from ..api.refs import serialize_reference
from ..api.samples import get_readable_sample, serialize_sample
from ..core import alignments, analyses, blast, references, rights, samples
from ..core.pagination import DEFAULT_PER_PAGE, MAX_PER_PAGE
from .blueprint import bp, has_route
from .jobs import process_of
from .paging import page_number, text_arg
from .report import coverage_panels, diagnosis_rows, orf_map


@bp.get("/samples", endpoint="samples")
def samples_page():
    labels = [label for label in request.args.getlist("label") if label.strip()]
    envelope = samples.find_samples(
        db(), client(), page=page_number(), per_page=DEFAULT_PER_PAGE, term=text_arg("find") or None, labels=labels
    )
    page = {**envelope, "documents": [serialize_sample(doc) for doc in envelope["documents"]]}
    return render_template(
        "samples.html",
        page=page,
        find=text_arg("find"),
        labels=labels,
        can_create=client().has_permission("create_sample") and client().has_permission("upload_file"),
    )


def readable_references() -> list[dict]:
    envelope = references.find_references(
        db(), rights.reference_visibility_query(client()), term=None, page=1, per_page=MAX_PER_PAGE
    )
    return [serialize_reference(doc) for doc in envelope["documents"]]


@bp.get("/samples/<sample_id>")
def sample_page(sample_id: str):
    sample = get_readable_sample(sample_id)
    found = analyses.find_analyses(db(), page=1, per_page=MAX_PER_PAGE, sample_id=sample_id)
    aligned = alignments.find_alignments(db(), page=1, per_page=MAX_PER_PAGE, sample_id=sample_id)
    unfinished = [doc for doc in found["documents"] if not doc.get("ready")]
    return render_template(
        "sample.html",
        sample=serialize_sample(samples.with_workflows(db(), sample)),
        job=None if sample.get("ready") else process_of(sample),
        analysis_jobs={doc["_id"]: process_of(doc) for doc in unfinished},
        analyses=[serialize_analysis(doc) for doc in found["documents"]],
        alignments=[serialize_alignment(doc) for doc in aligned["documents"]],
        references=readable_references(),
        can_write=rights.sample_rights(client(), sample)[1],
    )


@bp.get("/analyses/<analysis_id>")
def analysis_page(analysis_id: str):
    analysis = get_readable_analysis(analysis_id)
    sample = analyses.get_parent_sample(db(), analysis)
    formatted = serialize_analysis(analyses.format_analysis(db(), settings().data_path, analysis))
    results = formatted.get("results")
    contigs = results.get("hits") or [] if formatted["workflow"] == "nuvs" and isinstance(results, dict) else []
    return render_template(
        "analysis.html",
        analysis=formatted,
        job=None if analysis.get("ready") else process_of(analysis),
        sample=serialize_sample(sample),
        diagnosis=diagnosis_rows(formatted),
        panels=coverage_panels(formatted),
        contigs=[{**contig, "orf_map": orf_map(contig)} for contig in contigs],
        can_write=rights.sample_rights(client(), sample)[1],
        exports=export_links(formatted) if formatted.get("ready") else [],
    )


#: The API's downloads of a report, per workflow; a link appears only where the route exists.
EXPORTS = {
    "pathoscope_bowtie": [("diagnosis.csv", "Diagnosis (CSV)"), ("diagnosis.xlsx", "Diagnosis (XLSX)")],
    "nuvs": [("contigs.fa", "Contigs (FASTA)"), ("orfs.faa", "ORFs (protein FASTA)")],
}


def export_links(analysis: dict) -> list[tuple[str, str]]:
    urls = [(f"/api/analyses/{analysis['id']}/{name}", label) for name, label in EXPORTS.get(analysis["workflow"], [])]
    return [(url, label) for url, label in urls if has_route(url)]


@bp.get("/analyses/<analysis_id>/contigs/<int:index>/blast")
def blast_result(analysis_id: str, index: int):
    """A contig's BLAST record alone, polled after the BLAST button until it is ready or failed."""
    analysis = get_readable_analysis(analysis_id)
    record = blast.get_record(db(), analysis["_id"], blast.get_contig_index(analysis, index))
    body = render_template("_blast.html", analysis_id=analysis_id, index=index, record=record)
    finished = record is None or record.get("ready") or record.get("error")
    return (body, 286) if finished else body
