"""Exports: an analysis's diagnosis as CSV/XLSX, NuVs contigs and ORFs as FASTA, and the virus x
sample report over many samples (``/api/reports/diagnosis``) as JSON, CSV, XLSX, SVG or PNG."""

from __future__ import annotations

from typing import Literal

import numpy as np
from flask import Blueprint, Response

from ..bio.plots import diagnosis_heatmap
from ..core import analyses, reports, rights
from ..core.errors import InvalidInput
from ..core.references import get_reference_or_404
from .analyses import get_readable_analysis
from .context import client, db, settings
from .responses import json_response
from .validation import Query, query

bp = Blueprint("reports", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_TYPES = {"csv": "text/csv", "xlsx": XLSX, "svg": "image/svg+xml", "png": "image/png", "fa": "text/x-fasta"}


def attachment(content: bytes, filename: str) -> Response:
    extension = filename.rsplit(".", 1)[-1]
    return Response(
        content,
        mimetype=MEDIA_TYPES.get(extension, "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/api/analyses/<analysis_id>/diagnosis.<any(csv, xlsx):extension>")
def diagnosis_export(analysis_id: str, extension: str):
    """The diagnosis table, with sample, reference and index version in the header rows."""
    analysis = get_readable_analysis(analysis_id)
    header, rows = reports.diagnosis_header(analysis), reports.diagnosis_rows(analysis)
    if extension == "csv":
        content = reports.to_csv(header, reports.DIAGNOSIS_COLUMNS, rows)
    else:
        content = reports.to_xlsx(header, reports.DIAGNOSIS_COLUMNS, rows, "diagnosis")
    return attachment(content, f"diagnosis-{analysis_id}.{extension}")


@bp.get("/api/analyses/<analysis_id>/contigs.fa")
def contigs_export(analysis_id: str):
    """A NuVs analysis's assembled contigs."""
    analysis = get_readable_analysis(analysis_id)
    return attachment(reports.contigs_fasta(settings().data_path, analysis), f"contigs-{analysis_id}.fa")


@bp.get("/api/analyses/<analysis_id>/orfs.faa")
def orfs_export(analysis_id: str):
    """A NuVs analysis's ORFs, as proteins."""
    analysis = get_readable_analysis(analysis_id)
    return attachment(reports.orfs_fasta(settings().data_path, analysis), f"orfs-{analysis_id}.faa")


class DiagnosisReportQuery(Query):
    ref_id: str
    sample_ids: str | None = None
    label: str | None = None
    format: Literal["json", "csv", "xlsx", "svg", "png"] = "json"


@bp.get("/api/reports/diagnosis")
@query(DiagnosisReportQuery)
def diagnosis_report(args: DiagnosisReportQuery):
    """Virus x sample calls, reads and breadth from each sample's latest Pathoscope analysis on the
    reference; ``sample_ids=a,b`` or ``label=``; ``format`` json, csv, xlsx, or an svg/png heatmap."""
    if (args.sample_ids is None) == (args.label is None):
        raise InvalidInput("Give either sample_ids or label")
    reference = get_reference_or_404(db(), args.ref_id)
    rights.require_reference_read(client(), reference)
    wanted = [part for part in (args.sample_ids or "").split(",") if part] if args.sample_ids is not None else None
    if wanted is not None and not wanted:
        raise InvalidInput("sample_ids names no sample")
    samples = analyses.readable_samples(db(), client(), wanted, args.label)
    matrix = reports.diagnosis_matrix(db(), reference, samples)
    if args.format == "json":
        return json_response(matrix)
    if args.format in ("svg", "png"):
        return attachment(_heatmap(matrix, args.format), f"diagnosis.{args.format}")
    header, columns, rows = reports.matrix_table(matrix)
    if args.format == "csv":
        return attachment(reports.to_csv(header, columns, rows), "diagnosis.csv")
    return attachment(reports.to_xlsx(header, columns, rows, "diagnosis"), "diagnosis.xlsx")


def _heatmap(matrix: dict, fmt: str) -> bytes:
    cells = matrix["cells"]
    reads = np.array([[cell["reads"] if cell else 0 for cell in row] for row in cells], dtype=np.int64)
    calls = [[cell["call"] if cell else "not_detected" for cell in row] for row in cells]
    names = [virus["name"] for virus in matrix["viruses"]]
    columns = [sample["name"] or sample["id"] for sample in matrix["samples"]]
    return diagnosis_heatmap(names, columns, reads.reshape(len(names), len(columns)), calls, fmt)
