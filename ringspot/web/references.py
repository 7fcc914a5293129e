"""``/refs``, ``/refs/<id>`` and ``/otus/<id>``: references, their OTUs, isolates, sequences,
history and indexes, read through the API's lookups (``get_readable_reference``, ``load_otu``)."""

from __future__ import annotations

from flask import render_template

from ..api.context import client, db
from ..api.history import serialize_change
from ..api.otus import load_otu, serialize_otu
from ..api.refs import get_readable_reference, serialize_index, serialize_reference
from ..core import history, otus, references, rights
from ..core.pagination import DEFAULT_PER_PAGE
from .blueprint import bp
from .jobs import process_of
from .paging import page_number, text_arg

#: Changes shown on a reference's page (the full history is a paged API list).
RECENT_CHANGES = 10
RECENT_INDEXES = 5


@bp.get("/refs", endpoint="refs")
def refs_page():
    envelope = references.find_references(
        db(),
        rights.reference_visibility_query(client()),
        term=text_arg("find") or None,
        page=page_number(),
        per_page=DEFAULT_PER_PAGE,
    )
    page = {**envelope, "documents": [serialize_reference(doc) for doc in envelope["documents"]]}
    can_create = client().has_permission("create_ref") and client().has_permission("upload_file")
    return render_template("refs.html", page=page, find=text_arg("find"), can_create=can_create)


@bp.get("/refs/<ref_id>")
def ref_page(ref_id: str):
    ref = get_readable_reference(ref_id)
    found = otus.find_otus(
        db(), ref_id, term=text_arg("find") or None, verified=None, page=page_number(), per_page=DEFAULT_PER_PAGE
    )
    changes = history.find_history(db(), {"reference.id": ref_id}, page=1, per_page=RECENT_CHANGES)
    built = references.find_indexes(db(), ref_id, page=1, per_page=RECENT_INDEXES)
    return render_template(
        "ref.html",
        ref=serialize_reference(references.complete_reference(db(), ref)),
        job=process_of(ref),
        page={**found, "documents": [serialize_otu(doc) for doc in found["documents"]]},
        find=text_arg("find"),
        changes=[serialize_change(doc) for doc in changes["documents"]],
        indexes=[serialize_index(doc) for doc in built["documents"]],
        can_build=rights.can_on_reference(client(), ref, "build"),
    )


@bp.get("/otus/<otu_id>")
def otu_page(otu_id: str):
    otu, ref = load_otu(otu_id)
    return render_template(
        "otu.html",
        otu=serialize_otu(otus.complete_otu(db(), otu)),
        ref=serialize_reference(ref),
        changes=[serialize_change(doc) for doc in history.otu_history(db(), otu_id)],
    )
