"""The list envelope every paginated endpoint returns, and counting that stays fast.

Counts and pages are aggregation pipelines: nx-27017 answers ``$count`` and a single-key
``$sort``/``$skip``/``$limit`` from SQL in milliseconds, while ``count_documents`` reads
every document (about 300 ms on 2,000 history entries).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pymongo.collection import Collection

DEFAULT_PER_PAGE = 15
MAX_PER_PAGE = 100
#: Beyond this a page is never full of anything; it also keeps ``$skip`` within a 64-bit integer.
MAX_PAGE = 100_000


def count(collection: Collection, query: dict) -> int:
    """``count_documents`` as a ``$count`` pipeline."""
    result = list(collection.aggregate([{"$match": query}, {"$count": "n"}]))
    return result[0]["n"] if result else 0


def paginate(
    collection: Collection,
    query: dict,
    *,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
    sort: list | dict | None = None,
    base_query: dict | None = None,
    projection: dict | None = None,
    transform: Callable[[dict], dict] = lambda d: d,
) -> dict:
    """One page of ``query`` within ``base_query`` (what the client may see at all).

    ``total_count`` counts ``base_query``; ``found_count`` counts ``query`` within it.
    """
    base_query = base_query or {}
    combined = {"$and": [base_query, query]} if base_query and query else (query or base_query)
    total = count(collection, base_query)
    found = total if combined == base_query else count(collection, combined)
    pipeline: list[dict] = [{"$match": combined}]
    if sort:
        pipeline.append({"$sort": dict(sort)})
    pipeline += [{"$skip": (page - 1) * per_page}, {"$limit": per_page}]
    if projection:
        pipeline.append({"$project": projection})
    return {
        "documents": [transform(d) for d in collection.aggregate(pipeline)],
        "total_count": total,
        "found_count": found,
        "page_count": math.ceil(found / per_page) if per_page else 0,
        "per_page": per_page,
        "page": page,
    }
