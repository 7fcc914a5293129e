"""History: every change to an OTU, listed per reference, per OTU or overall; ``DELETE`` reverts.

A change can be reverted while unbuilt; reverting it also reverts every later change of the
same OTU (right ``modify_otu``).
"""

from __future__ import annotations

from flask import Blueprint

from ..core import history, otus, references, rights
from ..core.rights import reference_visibility_query
from ..core.utils import to_json
from .context import client, db
from .responses import json_response, no_content, paginated
from .validation import PageQuery, query

bp = Blueprint("history", __name__)


def serialize_change(doc: dict) -> dict:
    return to_json(doc)


class HistoryQuery(PageQuery):
    unbuilt: bool | None = None


def load_change(change_id: str, right: str | None = None) -> dict:
    """The change, if the caller may read its reference (or holds ``right`` on it)."""
    change = history.get_change_or_404(db(), change_id)
    ref = references.get_reference_or_404(db(), change["reference"]["id"])
    if right:
        rights.require_reference_right(client(), ref, right)
    else:
        rights.require_reference_read(client(), ref)
    return change


@bp.get("/api/history")
@query(HistoryQuery)
def find(args: HistoryQuery):
    """Find changes in every reference the caller may see, newest first."""
    ref_ids = references.visible_reference_ids(db(), reference_visibility_query(client()))
    envelope = history.find_history(
        db(), {"reference.id": {"$in": ref_ids}}, page=args.page, per_page=args.per_page, unbuilt=args.unbuilt
    )
    return paginated(envelope, serialize_change)


@bp.get("/api/refs/<ref_id>/history")
@query(HistoryQuery)
def find_for_reference(args: HistoryQuery, ref_id: str):
    """Find a reference's changes, newest first; ``unbuilt=true|false`` keeps unbuilt or built ones."""
    rights.require_reference_read(client(), references.get_reference_or_404(db(), ref_id))
    envelope = history.find_history(
        db(), {"reference.id": ref_id}, page=args.page, per_page=args.per_page, unbuilt=args.unbuilt
    )
    return paginated(envelope, serialize_change)


@bp.get("/api/otus/<otu_id>/history")
def find_for_otu(otu_id: str):
    """Every change of one OTU, newest first."""
    otu = otus.get_otu_or_404(db(), otu_id)
    rights.require_reference_read(client(), references.get_reference_or_404(db(), otu["reference"]["id"]))
    return json_response([serialize_change(c) for c in history.otu_history(db(), otu_id)])


@bp.get("/api/history/<change_id>")
def get(change_id: str):
    """One change with its diff."""
    return json_response(serialize_change(load_change(change_id)))


@bp.delete("/api/history/<change_id>")
def revert(change_id: str):
    """Revert an unbuilt change and every later change of its OTU (right ``modify_otu``)."""
    otus.revert_change(db(), load_change(change_id, "modify_otu"))
    return no_content()
