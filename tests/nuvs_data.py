"""NuVs test data: finished analyses whose contigs are the real SPAdes scaffolds of the RpRSV sample."""

from __future__ import annotations

import functools

from ringspot.bio import orfs
from ringspot.core.utils import new_id, now

from .conftest import DATA

SCAFFOLDS = DATA / "nuvs" / "scaffolds_paired.fa"


@functools.cache
def _contigs() -> tuple:
    with open(SCAFFOLDS) as handle:
        return tuple(orfs.process_contigs(orfs.read_fasta(handle)))


def scaffold_contigs() -> list[dict]:
    """The NuVs contig list of the recorded scaffolds (fresh copies)."""
    return [{**c, "orfs": [dict(o, hits=[]) for o in c["orfs"]]} for c in _contigs()]


def insert_nuvs_analysis(db, sample: dict, *, workflow: str = "nuvs", ready: bool = True, **fields) -> dict:
    """An analysis as the analyses API leaves it once a NuVs job finalized it."""
    doc = {
        "_id": new_id(),
        "workflow": workflow,
        "ready": ready,
        "created_at": now(),
        "updated_at": now(),
        "job": {"id": new_id()},
        "sample": {"id": sample["_id"], "name": sample.get("name")},
        "index": {"id": new_id(), "version": 0},
        "reference": {"id": new_id(), "name": "Plant viruses"},
        "subtractions": [],
        "user": {"id": sample["user"]["id"]},
        "results": {"hits": scaffold_contigs()} if ready else None,
        "files": [],
        **fields,
    }
    db.analyses.insert_one(doc)
    return doc
