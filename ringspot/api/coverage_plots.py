"""``/api/analyses/:id/hits/:sequence_id/coverage.<svg|png>``: coverage plots of Pathoscope hits.

Drawn from the hit's depth array on first request and kept with the analysis; alignments'
plots (``/api/alignments/:id/coverage.<svg|png>``) are drawn by their job and served in
``alignments.py``.
"""

from flask import Blueprint, send_file

from ..core import analyses, coverage_plots, rights
from .context import client, db, settings

bp = Blueprint("coverage_plots", __name__)


@bp.get("/api/analyses/<analysis_id>/hits/<sequence_id>/coverage.<fmt>")
def hit_plot(analysis_id: str, sequence_id: str, fmt: str):
    """Depth along a hit's sequence, with breadth and mean depth in the title (``svg`` or ``png``)."""
    analysis = analyses.get_analysis_or_404(db(), analysis_id)
    rights.require_sample_read(client(), analyses.get_parent_sample(db(), analysis))
    path = coverage_plots.hit_plot(db(), settings().data_path, analysis, sequence_id, fmt)
    return send_file(path, mimetype=coverage_plots.FORMATS[fmt], download_name=f"{sequence_id}.coverage.{fmt}")
