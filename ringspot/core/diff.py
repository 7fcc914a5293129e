"""History diffs between two versions of a joined OTU, and patching back to older versions.

A history document stores ``dictdiffer.diff(old, new)`` (spec ``virtool-api.md`` section 4, e.g.
``[["change", "abbreviation", ["ABTV", ""]], ["change", "version", [0, 1]]]``). Older versions
are rebuilt from the current document by undoing diffs newest first: Virtool's
``patch_to_version``: swap each diff, then ``dictdiffer.patch`` it (our :func:`_swap` is
``dictdiffer.swap`` with one ordering fix). Diffs are stored as plain lists because MongoDB (and
JSON) have no tuples; ``dictdiffer.patch`` accepts the lists just as well, and old Virtool diffs
(dotted string paths, list pairs) patch back the same way.

``create`` and ``remove`` history entries store a whole OTU (or nothing) instead of a diff; the
caller handles those before or after :func:`patch_back`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import dictdiffer


def diff_otus(old: dict, new: dict) -> list:
    """The changes turning ``old`` into ``new``, as JSON-ready nested lists.

    >>> diff_otus({"abbreviation": "ABTV", "version": 0}, {"abbreviation": "", "version": 1})
    [['change', 'abbreviation', ['ABTV', '']], ['change', 'version', [0, 1]]]
    >>> diff_otus({"isolates": [{"id": "a"}]}, {"isolates": [{"id": "a"}, {"id": "b"}]})
    [['add', 'isolates', [[1, {'id': 'b'}]]]]
    """
    return _to_lists(list(dictdiffer.diff(old, new)))


def patch_back(current: dict, diffs_newest_first: Iterable[list]) -> dict:
    """Undo ``diffs_newest_first`` on a copy of ``current``; ``current`` is left as it was.

    Pass the diffs of every change after the wanted version, newest first, exactly as
    :func:`diff_otus` made them (or as they came back from the database).

    >>> v0 = {"name": "Foo virus", "abbreviation": "FV", "version": 0}
    >>> v1 = {"name": "Foo virus", "abbreviation": "", "version": 1}
    >>> v2 = {"name": "Bar virus", "abbreviation": "", "version": 2}
    >>> patch_back(v2, [diff_otus(v1, v2), diff_otus(v0, v1)]) == v0
    True
    """
    # Patching inserts values taken from the diffs; copying both up front keeps later steps
    # (which patch in place) from editing the caller's diffs or ``current`` through them.
    patched = copy.deepcopy(current)
    diffs = copy.deepcopy(list(diffs_newest_first))
    for position, diff in enumerate(diffs):
        if not isinstance(diff, list):
            raise ValueError(
                f"diff {position} (newest first) is {type(diff).__name__}, not a list of changes; "
                "create and remove entries hold whole OTUs and must be handled by the caller"
            )
        patched = dictdiffer.patch(_swap(diff), patched, in_place=True)
    return patched


def _swap(diff: list) -> list:
    """The diff that undoes ``diff``: adds become removes, removes adds, change pairs flip.

    Unlike ``dictdiffer.swap``, removals are reversed too. dictdiffer lists removed list items
    by descending index, and re-inserting three or more trailing items in that order scrambles
    them (``[]`` back to ``[a, b, c]`` gives ``[a, c, b]``); ascending order restores the list.
    """
    undo = []
    for action, node, changes in diff:
        if action == "add":
            undo.append(["remove", node, list(reversed(changes))])
        elif action == "remove":
            undo.append(["add", node, list(reversed(changes))])
        elif action == "change":
            undo.append(["change", node, [changes[1], changes[0]]])
        else:
            raise ValueError(f"unknown diff action {action!r} at {node!r}")
    return undo


def _to_lists(value: Any) -> Any:
    # dictdiffer yields tuples (action, path, changes) with tuple pairs inside; values are
    # already deep copies, so rebuilding containers here is the only copying needed.
    if isinstance(value, (list, tuple)):
        return [_to_lists(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_lists(item) for key, item in value.items()}
    return value
