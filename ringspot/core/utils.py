"""Ids and timestamps."""

from __future__ import annotations

import datetime
import secrets
import string
from typing import overload

_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_id(length: int = 8) -> str:
    """A random id of lowercase letters and digits, like every resource id in the API.

    >>> len(new_id()), new_id().isalnum()
    (8, True)
    """
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _utcnow() -> datetime.datetime:
    t = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def now() -> str:
    """The current UTC time as the ISO string every document stores.

    Timestamps are stored as fixed-width ISO strings, not BSON dates: nx-27017 turns a
    date written by ``$set`` into a differently formatted string, which would then
    compare wrongly; strings of one format sort and compare the same on every server.

    >>> len(now()), now().endswith("Z")
    (27, True)
    """
    return iso(_utcnow())


def ago(seconds: float) -> str:
    """The ISO time ``seconds`` before now, for "older than" queries."""
    return iso(_utcnow() - datetime.timedelta(seconds=seconds))


def later(seconds: float) -> str:
    """The ISO time ``seconds`` after now, for expiry times."""
    return iso(_utcnow() + datetime.timedelta(seconds=seconds))


def seconds_since(timestamp: str) -> float:
    """Seconds from a stored ISO timestamp to now.

    >>> 0 <= seconds_since(now()) < 1
    True
    """
    then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    return (_utcnow() - then).total_seconds()


@overload
def iso(value: datetime.datetime) -> str: ...
@overload
def iso(value: None) -> None: ...
def iso(value: datetime.datetime | None) -> str | None:
    """ISO 8601 UTC with microseconds and ``Z``.

    >>> iso(datetime.datetime(2018, 5, 17, 19, 2, 23, 949000))
    '2018-05-17T19:02:23.949000Z'
    """
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: Fields that hold booleans. nx-27017 stores a boolean written by ``$set`` on a
#: scalar path as 0/1, so responses turn these names back into booleans.
BOOLEAN_FIELDS = frozenset(
    {
        "administrator",
        "all_read",
        "all_write",
        "build",
        "cancel_requested",
        "complete",
        "default",
        "force_reset",
        "group_read",
        "group_write",
        "has_files",
        "has_json",
        "hidden",
        "imported",
        "modify",
        "modify_otu",
        "newer",
        "paired",
        "public",
        "ready",
        "remove",
        "removed",
        "required",
        "reserved",
        "restrict_source_types",
        "success",
        "updating",
        "verified",
    }
)


def to_json(value):
    """Turn a stored document into JSON-ready data: ``_id`` -> ``id``, datetimes -> ISO strings.

    >>> to_json({"_id": "a", "ready": 1, "count": 1, "_rev": 3})
    {'id': 'a', 'ready': True, 'count': 1}
    """
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "_rev":  # internal concurrency counter of ``db.update_array``
                continue
            if key in BOOLEAN_FIELDS and type(item) is int:
                item = bool(item)
            out["id" if key == "_id" else key] = to_json(item)
        return out
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, datetime.datetime):
        return iso(value)
    return value
