"""Exports people open: an analysis's diagnosis as CSV or XLSX, NuVs contigs and ORFs as FASTA, and
a virus x sample matrix of calls over many samples (JSON, CSV, XLSX, heatmap).

Tables are lists of rows; the writers (``csv``, openpyxl) turn them into bytes. The header rows
of a diagnosis name the sample, the reference and the index version it was called against.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from openpyxl import Workbook
from openpyxl.styles import Font

from ..bio.orfs import iter_orf_fasta
from .analyses import load_results
from .db import Database
from .errors import InvalidInput

#: Columns of the diagnosis table, in the order they are written.
DIAGNOSIS_COLUMNS = (
    "virus",
    "abbreviation",
    "call",
    "reads",
    "breadth",
    "mean_depth",
    "median_depth",
    "segments_covered",
    "segments_total",
    "pi",
    "isolate",
    "reasons",
)
MATRIX_FORMATS = ("json", "csv", "xlsx", "svg", "png")


def diagnosis_header(analysis: dict) -> list[tuple[str, str]]:
    """(label, value) rows above the table: what was analysed against what."""
    sample, reference, index = (
        analysis.get("sample") or {},
        analysis.get("reference") or {},
        analysis.get("index") or {},
    )
    return [
        ("sample", f"{sample.get('name') or ''} ({sample.get('id')})"),
        ("reference", f"{reference.get('name') or ''} ({reference.get('id')})"),
        ("index version", str(index.get("version", ""))),
        ("workflow", analysis["workflow"]),
        ("analysis", f"{analysis['_id']} created {analysis.get('created_at')}"),
    ]


def diagnosis_rows(analysis: dict) -> list[list]:
    """One row per OTU of the analysis's diagnosis, in its order (detected, possible, then by reads)."""
    if analysis["workflow"] != "pathoscope_bowtie":
        raise InvalidInput("Only Pathoscope analyses have a diagnosis")
    if not analysis.get("ready"):
        raise InvalidInput("The analysis is not finished yet")
    rows = []
    for row in analysis.get("diagnosis") or []:
        segments = row.get("segments") or {}
        isolate = row.get("isolate") or {}
        rows.append(
            [
                row["name"],
                row.get("abbreviation") or "",
                row["call"],
                row["reads"],
                row["breadth"],
                row["mean_depth"],
                row["median_depth"],
                segments.get("covered"),
                segments.get("total"),
                row["pi"],
                isolate.get("source_name") or isolate.get("id") or "",
                "; ".join(row.get("reasons") or []),
            ]
        )
    return rows


def to_csv(header: Sequence[tuple[str, str]], columns: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """Header rows (``# label: value``), one blank line, then the table."""
    buffer = io.StringIO()
    for label, value in header:
        buffer.write(f"# {label}: {value}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def to_xlsx(header: Sequence[tuple[str, str]], columns: Sequence[str], rows: Iterable[Sequence], title: str) -> bytes:
    """One sheet: the header rows, a blank row, the bold column names and the table."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None  # a new workbook always has one sheet
    sheet.title = title[:31]  # Excel's limit on sheet names
    for label, value in header:
        sheet.append([label, value])
    sheet.append([])
    sheet.append(list(columns))
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def contigs_fasta(data_path: str, analysis: dict) -> bytes:
    """A NuVs analysis's contigs as FASTA (``>contig_<index>``)."""
    results = _nuvs_results(data_path, analysis)
    lines = [f">contig_{contig['index']}\n{contig['sequence']}\n" for contig in results.get("hits") or []]
    return "".join(lines).encode()


def orfs_fasta(data_path: str, analysis: dict) -> bytes:
    """A NuVs analysis's ORFs as protein FASTA."""
    results = _nuvs_results(data_path, analysis)
    return "".join(iter_orf_fasta(results.get("hits") or [])).encode()


def _nuvs_results(data_path: str, analysis: dict) -> dict:
    if analysis["workflow"] != "nuvs":
        raise InvalidInput("Only NuVs analyses have contigs")
    if not analysis.get("ready"):
        raise InvalidInput("The analysis is not finished yet")
    results = load_results(data_path, analysis).get("results")
    return results if isinstance(results, dict) else {}


# ---------------------------------------------------------------- many samples


def diagnosis_matrix(db: Database, reference: dict, samples: list[dict]) -> dict:
    """Calls of every virus (rows) in every sample (columns), from each sample's latest finished
    Pathoscope analysis against ``reference``.

    ``cells[v][s]`` is ``{"call", "reads", "breadth"}`` or None when the virus has no reads there.
    A sample without such an analysis is listed in ``missing`` and left out of the columns.
    """
    columns, missing, per_sample = [], [], []
    for sample in samples:
        analysis = db.analyses.find_one(
            {
                "sample.id": sample["_id"],
                "reference.id": reference["_id"],
                "workflow": "pathoscope_bowtie",
                "ready": True,
            },
            {"results": 0},
            sort=[("created_at", -1)],
        )
        if analysis is None:
            missing.append({"id": sample["_id"], "name": sample.get("name")})
            continue
        columns.append({"id": sample["_id"], "name": sample.get("name"), "analysis": analysis["_id"]})
        per_sample.append({row["id"]: row for row in analysis.get("diagnosis") or [] if row["reads"] > 0})
    viruses: dict[str, dict] = {}
    for rows in per_sample:
        for otu_id, row in rows.items():
            viruses.setdefault(otu_id, {"id": otu_id, "name": row["name"], "abbreviation": row.get("abbreviation")})
    cells = [
        [_cell(rows.get(otu_id)) for rows in per_sample]
        for otu_id in viruses  # insertion order; the heatmap clusters rows itself
    ]
    return {
        "reference": {"id": reference["_id"], "name": reference.get("name")},
        "samples": columns,
        "missing": missing,
        "viruses": list(viruses.values()),
        "cells": cells,
    }


def _cell(row: dict | None) -> dict | None:
    if row is None:
        return None
    return {"call": row["call"], "reads": row["reads"], "breadth": row["breadth"]}


def matrix_table(matrix: dict) -> tuple[list[tuple[str, str]], list[str], list[list]]:
    """(header, columns, rows) of the matrix: one row per virus, a call, reads and breadth column per sample."""
    header = [("reference", f"{matrix['reference']['name']} ({matrix['reference']['id']})")]
    if matrix["missing"]:
        header.append(("without a finished analysis", ", ".join(s["name"] or s["id"] for s in matrix["missing"])))
    columns = ["virus"]
    for sample in matrix["samples"]:
        name = sample["name"] or sample["id"]
        columns += [f"{name} call", f"{name} reads", f"{name} breadth"]
    rows = []
    for virus, cells in zip(matrix["viruses"], matrix["cells"], strict=True):
        row: list = [virus["name"]]
        for cell in cells:
            row += [cell["call"], cell["reads"], cell["breadth"]] if cell else ["not_detected", 0, 0.0]
        rows.append(row)
    return header, columns, rows
