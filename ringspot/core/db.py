"""Database access: one pymongo client per process, the indexes the queries need.

The query subset every supported server honours (``tests/core/test_storage_contract.py``
checks each shape against nx-27017 and SecantusDB):

- Arrays of sub-documents are written whole with ``$set`` through ``update_array``:
  nx-27017 stores a ``$push``-ed sub-document (and the rest of that array) as JSON strings.
- Membership in an array of sub-documents is ``{"$or": [{"arr.id": v}, ...]}`` (``any_of``),
  not ``{"arr.id": {"$in": [...]}}``, which nx-27017 never matches.
- A boolean written by ``$set`` on a scalar path reads back from nx-27017 as 0/1: code
  tests truthiness (never ``is True``) and ``utils.to_json`` restores ``BOOLEAN_FIELDS``.
- Collection names avoid SQL keywords (``refs``, not ``references``).
- String ``$regex``, no ``arrayFilters``, claims by conditional ``update_one``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import pymongo
import pymongo.errors
from pymongo.database import Database

#: Raised by any query while the database server cannot be reached (selection timeouts included).
DatabaseUnreachable = pymongo.errors.ConnectionFailure
#: Raised when a document to write exceeds the server's limit (16 MB on MongoDB).
DocumentTooLarge = pymongo.errors.DocumentTooLarge

_clients: dict[tuple[str, int | None], pymongo.MongoClient] = {}
_lock = threading.Lock()


#: How often the API's client checks that the server answers (ms): a server that stopped answering
#: (hung, not refusing) is found within this plus ``_CONNECT_TIMEOUT_MS``, its in-flight requests are
#: interrupted and new ones wait at most one server selection, so requests answer 503 within 5 s.
#: Operations themselves stay unbounded: building a large reference's index is one long write.
API_HEARTBEAT_MS = 1000
_SERVER_SELECTION_TIMEOUT_MS = 2000
#: Opening a connection (TCP and handshake) to a live server takes milliseconds, even across a LAN;
#: also the bound on one server check.
_CONNECT_TIMEOUT_MS = 1000


def connect(uri: str, heartbeat_ms: int | None = None) -> Database:
    """The database named in ``uri``; one client (and connection pool) per server and heartbeat per process."""
    parts = urlsplit(uri)
    server = urlunsplit(parts._replace(path="/"))
    with _lock:
        client = _clients.get((server, heartbeat_ms))
        if client is None:
            client = pymongo.MongoClient(
                server,
                serverSelectionTimeoutMS=_SERVER_SELECTION_TIMEOUT_MS,
                connectTimeoutMS=_CONNECT_TIMEOUT_MS,
                tz_aware=False,
                **cast(dict[str, Any], {"heartbeatFrequencyMS": heartbeat_ms} if heartbeat_ms else {}),
            )
            _clients[(server, heartbeat_ms)] = client
    return client[parts.path.strip("/") or "ringspot"]


def close_all() -> None:
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


#: (collection, keys, options) for every index the project's queries rely on.
INDEXES: list[tuple[str, list[tuple[str, int]], dict]] = [
    ("keys", [("user.id", 1)], {}),
    ("sessions", [("expires_at", 1)], {}),
    ("processes", [("type", 1), ("state", 1)], {}),
    ("processes", [("created_at", -1)], {}),
    # "references" is an SQL keyword that nx-27017 cannot use as a table name.
    ("refs", [("name", 1)], {}),
    ("otus", [("reference.id", 1), ("lower_name", 1)], {}),
    ("sequences", [("otu_id", 1)], {}),
    ("sequences", [("reference.id", 1)], {}),
    ("history", [("reference.id", 1), ("index.id", 1)], {}),
    ("history", [("otu.id", 1)], {}),
    ("history", [("reference.id", 1), ("created_at", -1)], {}),
    ("history", [("reference.id", 1), ("user.id", 1)], {}),
    ("history", [("index.id", 1)], {}),
    ("otus", [("reference.id", 1), ("abbreviation", 1)], {}),
    ("otus", [("reference.id", 1), ("remote.id", 1)], {}),
    ("indexes", [("reference.id", 1), ("version", -1)], {}),
    ("samples", [("name", 1)], {}),
    ("samples", [("created_at", -1)], {}),
    ("subtractions", [("name", 1)], {}),
    ("analyses", [("sample.id", 1)], {}),
    ("alignments", [("sample.id", 1), ("created_at", -1)], {}),
    ("uploads", [("type", 1)], {}),
]


def ensure_indexes(db: Database) -> None:
    for collection, keys, options in INDEXES:
        db[collection].create_index(keys, **options)


def any_of(field: str, values) -> dict:
    """Match documents whose array ``field`` (e.g. ``groups.id``) holds any of ``values``."""
    values = list(values)
    if not values:
        return {"_id": {"$exists": False}}  # matches nothing
    return {"$or": [{field: value} for value in values]}


class ConcurrentUpdate(RuntimeError):
    """An array kept changing under ``update_array``; the caller may retry."""


def update_array(
    collection, doc_id: str, field: str, change: Callable[[list], list | None], attempts: int = 50
) -> list | None:
    """Replace array ``field`` of one document by ``change(current)``, safely under concurrency.

    An optimistic loop on a ``_rev`` counter: read, compute, write only if nobody wrote in
    between. ``change`` returns the new list, or None to leave the document alone (the
    return value is then None too). Returns the new list; KeyError if the document is gone.
    """
    for _ in range(attempts):
        doc = collection.find_one({"_id": doc_id}, {field: 1, "_rev": 1})
        if doc is None:
            raise KeyError(doc_id)
        new = change(list(doc.get(field) or []))
        if new is None:
            return None
        rev = doc.get("_rev", 0)
        guard = {"_rev": rev} if rev else {"_rev": {"$exists": False}}
        if collection.update_one({"_id": doc_id, **guard}, {"$set": {field: new, "_rev": rev + 1}}).modified_count:
            return new
    raise ConcurrentUpdate(f"{collection.name} {doc_id}: {field} changed {attempts} times while updating")


def append(collection, doc_id: str, field: str, item) -> list:
    return update_array(collection, doc_id, field, lambda items: items + [item]) or []
