"""``PUT /api/analyses/:id/:sequence_index/blast``: BLAST a NuVs contig (seed "BLAST Contig")."""

from flask import Blueprint

from ..core import blast, rights
from ..core.utils import to_json
from ..tasks import blast as blast_tasks
from .context import client, db, settings
from .responses import json_response
from .validation import Body, body

bp = Blueprint("blast", __name__)


class BlastBody(Body):
    """No options: the seed sends ``{}``."""


def serialize_blast(record: dict) -> dict:
    return to_json(record)


@bp.put("/api/analyses/<analysis_id>/<sequence_index>/blast")
@body(BlastBody)
def blast_contig(_: BlastBody, analysis_id: str, sequence_index: str):
    """Start a BLAST of one contig, replacing any earlier result; follow it at ``Content-Location``."""
    analysis = blast.get_analysis_or_404(db(), analysis_id)
    rights.require_sample_write(client(), blast.get_parent_sample(db(), analysis))
    index = blast.get_contig_index(analysis, sequence_index)
    record = blast_tasks.start_blast(db(), settings(), analysis_id, index, client().user)
    process_id = record["process"]["id"]
    return json_response(serialize_blast(record), 200, {"Content-Location": f"/api/processes/{process_id}"})
