"""History: one document per change to an OTU, with the diff that undoes it.

``_id`` is ``"<otu_id>.<version>"`` (``"<otu_id>.removed"`` for a removal). ``diff`` holds the
whole joined OTU for creations (``create``, ``import``, ``clone``, ``remote``), the whole old OTU
for ``remove``, and a :func:`..diff.diff_otus` list for every other change. ``index`` is
``{"id": "unbuilt", "version": "unbuilt"}`` until an index build tags the change.

Listings run as aggregation pipelines: nx-27017 turns ``$match/$sort/$skip/$limit`` and
``$count`` into SQL, where ``find().sort()`` and ``count_documents`` read every (large) history
document first -- tens of times slower on a 2,000-OTU reference.
"""

from __future__ import annotations

from pymongo.database import Database

from .diff import diff_otus
from .errors import NotFound
from .pagination import count, paginate
from .utils import now

UNBUILT = {"id": "unbuilt", "version": "unbuilt"}
#: Methods whose ``diff`` is the whole new OTU: reverting them removes the OTU.
CREATION_METHODS = ("create", "import", "clone", "remote")
#: Listings leave out the diffs, which can hold whole OTUs.
LIST_PROJECTION = {"diff": 0}
#: One sort key on purpose: nx-27017 serves a single-key sort from the ``(reference.id,
#: created_at)`` index in milliseconds, but sorts on two keys (or on ``_id``) by reading every
#: document of the reference. Changes made at the same instant come back in index order.
NEWEST_FIRST = {"created_at": -1}


# ---------------------------------------------------------------- counting and pages


# ---------------------------------------------------------------- writing


def history_entry(
    method_name: str,
    description: str,
    old: dict | None,
    new: dict | None,
    user_id: str,
    created_at=None,
) -> dict:
    """The history document for a change from joined OTU ``old`` to ``new`` (either may be None)."""
    otu = new if new is not None else old
    assert otu is not None, "a change has an OTU before or after it"
    diff: dict | list | None
    if method_name == "remove":
        version, diff = "removed", old
    elif method_name in CREATION_METHODS:
        assert new is not None
        version, diff = new["version"], new
    else:
        assert old is not None and new is not None
        version, diff = new["version"], diff_otus(old, new)
    return {
        "_id": f"{otu['_id']}.{version}",
        "method_name": method_name,
        "description": description,
        "created_at": created_at or now(),
        "otu": {"id": otu["_id"], "name": otu["name"], "version": version},
        "reference": {"id": otu["reference"]["id"]},
        "index": dict(UNBUILT),
        "user": {"id": user_id},
        "diff": diff,
    }


def add(db: Database, method_name: str, description: str, old: dict | None, new: dict | None, user_id: str) -> dict:
    """Record one change; written as an upsert so a repeated write is harmless."""
    entry = history_entry(method_name, description, old, new, user_id)
    db.history.replace_one({"_id": entry["_id"]}, entry, upsert=True)
    return entry


# ---------------------------------------------------------------- reading


def get_change_or_404(db: Database, change_id: str) -> dict:
    doc = db.history.find_one({"_id": change_id})
    if doc is None:
        raise NotFound()
    return doc


def find_history(db: Database, base_query: dict, *, page: int, per_page: int, unbuilt: bool | None = None) -> dict:
    """Changes within ``base_query``, newest first; ``unbuilt`` keeps only unbuilt (or built) ones."""
    query: dict = {}
    if unbuilt is True:
        query = {"index.id": "unbuilt"}
    elif unbuilt is False:
        query = {"index.id": {"$ne": "unbuilt"}}
    return paginate(
        db.history,
        query,
        base_query=base_query,
        page=page,
        per_page=per_page,
        sort=NEWEST_FIRST,
        projection=LIST_PROJECTION,
    )


def otu_history(db: Database, otu_id: str) -> list[dict]:
    """Every change of one OTU, newest first, without diffs."""
    return list(
        db.history.aggregate(
            [
                {"$match": {"otu.id": otu_id}},
                {"$sort": NEWEST_FIRST},
                {"$project": LIST_PROJECTION},
            ]
        )
    )


def most_recent_change(db: Database, otu_id: str) -> dict | None:
    changes = list(
        db.history.aggregate(
            [
                {"$match": {"otu.id": otu_id}},
                {"$sort": NEWEST_FIRST},
                {"$limit": 1},
                {"$project": {"_id": 1, "created_at": 1, "description": 1, "method_name": 1, "user": 1}},
            ]
        )
    )
    return changes[0] if changes else None


def unbuilt_change_count(db: Database, ref_id: str) -> int:
    return count(db.history, {"reference.id": ref_id, "index.id": "unbuilt"})


def modified_otu_count(db: Database, ref_id: str) -> int:
    """OTUs with changes not yet built into an index."""
    return len(db.history.distinct("otu.id", {"reference.id": ref_id, "index.id": "unbuilt"}))


def contributors(db: Database, ref_id: str) -> list[dict]:
    """``[{id, count}]``: how many changes each user made to the reference, most first."""
    counts = [
        {"id": user_id, "count": count(db.history, {"reference.id": ref_id, "user.id": user_id})}
        for user_id in db.history.distinct("user.id", {"reference.id": ref_id})
        if user_id is not None
    ]
    return sorted(counts, key=lambda c: (-c["count"], c["id"]))
