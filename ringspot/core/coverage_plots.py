"""Coverage plots of Pathoscope hits, drawn from a hit's depth array and kept with its analysis.

A finalized ``pathoscope_bowtie`` analysis stores, for every hit, ``align``: one depth per
position of the hit's sequence (in the analysis document, or in ``results.json`` when the
results were too large). The first request for a plot draws it; it is then served from
``DATA_PATH/analyses/<id>/plots/<sequence_id>.coverage.<svg|png>`` and goes with the analysis
when that is removed. Alignments' plots are drawn by their job instead (``tasks.alignments``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from pymongo.database import Database

from .analyses import analysis_dir, load_results
from .errors import NotFound
from .files import check_file_name
from .utils import new_id

FORMATS = {"svg": "image/svg+xml", "png": "image/png"}
PLOTS_DIR = "plots"


def hit_depth(data_path: str, analysis: dict, sequence_id: str) -> np.ndarray:
    """The depth array of the analysis's hit on ``sequence_id``; 404 when there is no such hit."""
    require_hits(analysis)
    results = load_results(data_path, analysis).get("results")
    hits = results.get("hits") or [] if isinstance(results, dict) else []
    for hit in hits:
        if hit.get("id") == sequence_id:
            return np.asarray(hit.get("align") or [], dtype=np.int64)
    raise NotFound("Sequence is not among the analysis's hits")


def require_hits(analysis: dict) -> None:
    if analysis.get("workflow") != "pathoscope_bowtie" or not analysis.get("ready"):
        raise NotFound("Analysis has no Pathoscope hits")


def hit_label(db: Database, sequence_id: str) -> str:
    """The sequence's accession for the title, else its id."""
    sequence = db.sequences.find_one({"_id": sequence_id}, {"accession": 1}) or {}
    return sequence.get("accession") or sequence_id


def hit_plot(db: Database, data_path: str, analysis: dict, sequence_id: str, fmt: str) -> Path:
    """Path of the hit's coverage plot in ``fmt``, drawn and stored on first use."""
    from ..bio.plots import (  # matplotlib only when a plot is drawn
        coverage_plot,
        coverage_title,
    )

    if fmt not in FORMATS:
        raise NotFound()
    require_hits(analysis)
    folder = analysis_dir(data_path, analysis["_id"]) / PLOTS_DIR
    path = folder / f"{check_file_name(sequence_id)}.coverage.{fmt}"
    if path.is_file():  # only ever drawn for a hit
        return path
    depth = hit_depth(data_path, analysis, sequence_id)
    content = coverage_plot(depth, coverage_title(hit_label(db, sequence_id), depth), fmt)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{path.name}.{new_id()}.partial"  # two first requests at once each write their own
    partial.write_bytes(content)
    os.replace(partial, path)
    return path
