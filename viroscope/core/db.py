"""Database access: one pymongo client per process, the indexes the queries need."""

from __future__ import annotations

import threading

import pymongo
from pymongo.database import Database

_clients: dict[str, pymongo.MongoClient] = {}
_lock = threading.Lock()


def connect(uri: str) -> Database:
    """The database named in ``uri``; clients are shared per URI within a process."""
    with _lock:
        client = _clients.get(uri)
        if client is None:
            client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000, tz_aware=False)
            _clients[uri] = client
    return client.get_default_database("viroscope")


def close_all() -> None:
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


#: (collection, keys, options) for every index the project's queries rely on.
INDEXES = [
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
    ("indexes", [("reference.id", 1), ("version", -1)], {}),
    ("samples", [("name", 1)], {}),
    ("analyses", [("sample.id", 1)], {}),
    ("uploads", [("type", 1)], {}),
]


def ensure_indexes(db: Database) -> None:
    for collection, keys, options in INDEXES:
        db[collection].create_index(keys, **options)
