"""The list envelope every paginated endpoint returns."""

from __future__ import annotations

import math
from typing import Callable

from pymongo.collection import Collection

DEFAULT_PER_PAGE = 15
MAX_PER_PAGE = 100


def paginate(
    collection: Collection,
    query: dict,
    *,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
    sort: list | None = None,
    base_query: dict | None = None,
    projection: dict | None = None,
    transform: Callable[[dict], dict] = lambda d: d,
) -> dict:
    """One page of ``query`` within ``base_query`` (what the client may see at all).

    ``total_count`` counts ``base_query``; ``found_count`` counts ``query`` within it.
    """
    base_query = base_query or {}
    combined = {"$and": [base_query, query]} if base_query and query else (query or base_query)
    total = collection.count_documents(base_query)
    found = total if combined == base_query else collection.count_documents(combined)
    cursor = collection.find(combined, projection)
    if sort:
        cursor = cursor.sort(sort)
    documents = [transform(d) for d in cursor.skip((page - 1) * per_page).limit(per_page)]
    return {
        "documents": documents,
        "total_count": total,
        "found_count": found,
        "page_count": math.ceil(found / per_page) if per_page else 0,
        "per_page": per_page,
        "page": page,
    }
