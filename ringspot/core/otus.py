"""OTUs, their isolates and sequences: every change is a new version with a history entry.

An OTU document embeds its isolates; sequences live in their own collection. The *joined*
OTU (each isolate with its ``sequences``, ordered by ``_id``) is what the API returns, what
history diffs are taken between, and what :func:`patch_otu_to_version` rebuilds for index
builds and reverts.

Verification: ``issues`` holds everything :func:`..bio.reference.verify_otu` reports (``None``
when nothing); ``verified`` is false when an issue stops an index build -- no isolates, an empty
isolate or sequence, isolates of unequal size, no default isolate, or a sequence naming a
segment that is not in the schema. Missing or unassigned segments stay warnings in ``issues``:
30 OTUs of the official plant-virus reference have them, and that reference must stay buildable.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator

from pymongo.database import Database

from ..bio.reference import blocking_issues, verify_otu
from . import history
from .diff import patch_back
from .errors import BadRequest, Conflict, NotFound
from .pagination import paginate
from .utils import new_id, now

#: Fields of the OTU list (no isolates).
LIST_PROJECTION = {"_id": 1, "name": 1, "abbreviation": 1, "reference": 1, "verified": 1, "version": 1}


# ---------------------------------------------------------------- loading and joining


def get_otu_or_404(db: Database, otu_id: str) -> dict:
    otu = db.otus.find_one({"_id": otu_id})
    if otu is None:
        raise NotFound()
    return otu


def merge_sequences(otu: dict, sequences: Iterable[dict]) -> dict:
    """The joined OTU: a copy of ``otu`` whose isolates carry their ``sequences`` (by ``_id``)."""
    by_isolate: dict[str, list[dict]] = {}
    for sequence in sorted(sequences, key=lambda s: s["_id"]):
        sequence = {k: v for k, v in sequence.items() if k != "otu_id"}
        by_isolate.setdefault(sequence["isolate_id"], []).append(sequence)
    joined = {k: v for k, v in otu.items() if k != "isolates"}
    joined["isolates"] = [{**isolate, "sequences": by_isolate.get(isolate["id"], [])} for isolate in otu["isolates"]]
    return joined


def join_otu(db: Database, otu: dict) -> dict:
    """``otu`` with each isolate's sequences embedded."""
    return merge_sequences(otu, db.sequences.find({"otu_id": otu["_id"]}))


def get_joined_otu(db: Database, otu_id: str) -> dict | None:
    otu = db.otus.find_one({"_id": otu_id})
    return join_otu(db, otu) if otu else None


def get_joined_otu_or_404(db: Database, otu_id: str) -> dict:
    return join_otu(db, get_otu_or_404(db, otu_id))


def iter_joined_otus(db: Database, ref_id: str) -> Iterator[dict]:
    """Every OTU of a reference, joined, by name: two queries however many OTUs there are."""
    sequences: dict[str, list[dict]] = {}
    for sequence in db.sequences.find({"reference.id": ref_id}):
        sequences.setdefault(sequence["otu_id"], []).append(sequence)
    otus = sorted(db.otus.find({"reference.id": ref_id}), key=lambda o: (o.get("lower_name", ""), o["_id"]))
    for otu in otus:
        yield merge_sequences(otu, sequences.get(otu["_id"], ()))


def split_otu(joined: dict) -> tuple[dict, list[dict]]:
    """A joined OTU back into its OTU document and sequence documents."""
    otu = {k: v for k, v in joined.items() if k != "isolates"}
    otu["isolates"] = []
    sequences = []
    for isolate in joined["isolates"]:
        otu["isolates"].append({k: v for k, v in isolate.items() if k != "sequences"})
        for sequence in isolate["sequences"]:
            sequences.append({**sequence, "otu_id": joined["_id"], "isolate_id": isolate["id"]})
    return otu, sequences


def complete_otu(db: Database, otu: dict) -> dict:
    """The joined OTU with its ``most_recent_change``, as the API returns it."""
    return {**join_otu(db, otu), "most_recent_change": history.most_recent_change(db, otu["_id"])}


def get_sequence_doc_or_404(db: Database, sequence_id: str) -> dict:
    sequence = db.sequences.find_one({"_id": sequence_id})
    if sequence is None:
        raise NotFound()
    return sequence


def get_isolate_or_404(joined: dict, isolate_id: str) -> dict:
    for isolate in joined["isolates"]:
        if isolate["id"] == isolate_id:
            return isolate
    raise NotFound()


def get_sequence_or_404(joined: dict, isolate_id: str, sequence_id: str) -> dict:
    for sequence in get_isolate_or_404(joined, isolate_id)["sequences"]:
        if sequence["_id"] == sequence_id:
            return sequence
    raise NotFound()


def verify(joined: dict) -> tuple[dict | None, bool]:
    """``(issues, verified)`` for a joined OTU (see the module docstring)."""
    issues = verify_otu(joined)
    if issues is None:
        return None, True
    unknown_segment = any(m["reason"] == "unknown_segment" for m in issues.get("segment_mismatch", []))
    return issues, not blocking_issues(issues) and not unknown_segment


def format_isolate_name(isolate: dict) -> str:
    """``"Isolate A"``, or ``"Unnamed Isolate"`` without a source type or name."""
    if not isolate.get("source_type") or not isolate.get("source_name"):
        return "Unnamed Isolate"
    return f"{isolate['source_type'].capitalize()} {isolate['source_name']}"


# ---------------------------------------------------------------- finding


def _otu_query(ref_id: str | dict, term: str | None, verified: bool | None) -> dict:
    query: dict = {"reference.id": ref_id}
    if term:
        pattern = _escape(term)
        query["$or"] = [
            {"name": {"$regex": pattern, "$options": "i"}},
            {"abbreviation": {"$regex": pattern, "$options": "i"}},
        ]
    if verified is not None:
        query["verified"] = verified
    return query


def _escape(term: str) -> str:
    return "".join(f"\\{c}" if c in r".^$*+?{}[]\|()" else c for c in term)


def find_otus(
    db: Database, ref_id: str | dict, *, term: str | None, verified: bool | None, page: int, per_page: int
) -> dict:
    """One page of a reference's OTUs by name, plus ``modified_count`` (OTUs with unbuilt changes)."""
    envelope = paginate(
        db.otus,
        _otu_query(ref_id, term, verified),
        page=page,
        per_page=per_page,
        sort={"lower_name": 1},
        projection=LIST_PROJECTION,
    )
    if isinstance(ref_id, str):
        envelope["modified_count"] = history.modified_otu_count(db, ref_id)
    return envelope


def otu_names(db: Database, ref_id: str, *, term: str | None, verified: bool | None) -> list[dict]:
    """``[{_id, name}]`` of every matching OTU, for pickers."""
    docs = db.otus.find(_otu_query(ref_id, term, verified), {"_id": 1, "name": 1, "lower_name": 1})
    return [{"_id": d["_id"], "name": d["name"]} for d in sorted(docs, key=lambda d: d.get("lower_name", ""))]


def find_otu_by_name(db: Database, ref_id: str, name: str) -> dict | None:
    """The reference's OTU called ``name`` (case-insensitive), if there is one."""
    return db.otus.find_one({"reference.id": ref_id, "lower_name": name.lower()})


def reference_accessions(db: Database, ref_id: str) -> set[str]:
    """Every accession the reference's sequences carry."""
    return {doc["accession"] for doc in db.sequences.find({"reference.id": ref_id}, {"accession": 1})}


# ---------------------------------------------------------------- versioned changes


def _commit(
    db: Database,
    old: dict,
    method_name: str,
    description: str,
    user_id: str,
    *,
    otu_set: dict | None = None,
    sequences=None,
) -> dict:
    """Apply one change as version ``old.version + 1``, re-verify, and record it in history.

    The version bump is conditional on the version read, so two concurrent edits cannot both
    claim the same history id. ``sequences`` is a callable making the sequence writes. The OTU
    is written whole with ``replace_one``: nx-27017 stores booleans set by ``$set`` as 0/1.
    A version never changes without its history entry: if any write after the bump fails (a
    document over the server's size limit, say), the OTU and its sequences are put back.
    """
    version = old["version"] + 1
    stored = db.otus.find_one({"_id": old["_id"], "version": old["version"]})
    stored_sequences = list(db.sequences.find({"otu_id": old["_id"]})) if sequences is not None else None
    if (
        stored is None
        or not db.otus.update_one(
            {"_id": old["_id"], "version": old["version"]}, {"$set": {"version": version}}
        ).modified_count
    ):
        raise Conflict("The OTU was changed by another request; reload it and try again")
    try:
        return _write_version(db, old, version, method_name, description, user_id, otu_set, sequences)
    except Exception:
        _put_back(db, stored, stored_sequences)
        raise


def _put_back(db: Database, stored: dict, stored_sequences: list[dict] | None) -> None:
    """Undo a failed change: the OTU as it was and, if the change wrote sequences, those as they were."""
    if stored_sequences is not None:
        db.sequences.delete_many({"otu_id": stored["_id"]})
        if stored_sequences:
            db.sequences.insert_many(stored_sequences)
    db.otus.replace_one({"_id": stored["_id"]}, stored)


def _write_version(
    db: Database,
    old: dict,
    version: int,
    method_name: str,
    description: str,
    user_id: str,
    otu_set: dict | None,
    sequences,
) -> dict:
    """The writes of one change after its version is claimed: sequences, the OTU, then its history entry."""
    if sequences is not None:
        sequences()
    otu = {
        **{k: v for k, v in old.items() if k != "isolates"},
        "isolates": _isolates_without_sequences(old),
        **(otu_set or {}),
        "version": version,
    }
    new = merge_sequences(otu, db.sequences.find({"otu_id": old["_id"]}))
    otu["issues"], otu["verified"] = verify(new)
    new.update(issues=otu["issues"], verified=otu["verified"])
    db.otus.replace_one({"_id": old["_id"], "version": version}, otu)
    history.add(db, method_name, description, old, new, user_id)
    return new


def _check_unique_names(
    db: Database, ref_id: str, name: str | None, abbreviation: str | None, otu_id: str | None = None
) -> None:
    others: dict = {"reference.id": ref_id}
    if otu_id:
        others["_id"] = {"$ne": otu_id}
    name_taken = bool(name) and db.otus.find_one({**others, "lower_name": (name or "").lower()}, {"_id": 1}) is not None
    abbreviation_taken = (
        bool(abbreviation) and db.otus.find_one({**others, "abbreviation": abbreviation}, {"_id": 1}) is not None
    )
    if name_taken and abbreviation_taken:
        raise BadRequest("Name and abbreviation already exist")
    if name_taken:
        raise BadRequest("Name already exists")
    if abbreviation_taken:
        raise BadRequest("Abbreviation already exists")


def create_otu(
    db: Database,
    ref: dict,
    *,
    name: str,
    abbreviation: str,
    schema: list[dict],
    user_id: str,
    taxid: int | None = None,
) -> dict:
    """A new OTU without isolates (so unverified), version 0, history ``create``."""
    _check_unique_names(db, ref["_id"], name, abbreviation)
    otu = {
        "_id": new_id(),
        "name": name,
        "lower_name": name.lower(),
        "abbreviation": abbreviation,
        "reference": {"id": ref["_id"]},
        "version": 0,
        "last_indexed_version": None,
        "verified": False,
        "issues": None,
        "imported": False,
        "schema": schema,
        "isolates": [],
        "created_at": now(),
        "user": {"id": user_id},
    }
    if taxid is not None:
        otu["taxid"] = taxid
    otu["issues"], otu["verified"] = verify(merge_sequences(otu, []))
    db.otus.insert_one(otu)
    joined = merge_sequences(otu, [])
    description = f"Created {name}" + (f" ({abbreviation})" if abbreviation else "")
    history.add(db, "create", description, None, joined, user_id)
    return joined


def edit_otu(db: Database, otu: dict, changes: dict, user_id: str) -> dict:
    """Change ``name``, ``abbreviation`` and/or ``schema``; no real change writes nothing."""
    changes = {k: v for k, v in changes.items() if otu.get(k) != v}
    old = join_otu(db, otu)
    if not changes:
        return old
    _check_unique_names(db, otu["reference"]["id"], changes.get("name"), changes.get("abbreviation"), otu["_id"])
    otu_set = dict(changes)
    if "name" in changes:
        otu_set["lower_name"] = changes["name"].lower()
    description = _edit_description(changes, otu.get("abbreviation", ""))
    return _commit(db, old, "edit", description, user_id, otu_set=otu_set)


def _edit_description(changes: dict, old_abbreviation: str) -> str:
    description = f"Changed name to {changes['name']}" if "name" in changes else ""
    if "abbreviation" in changes:
        abbreviation = changes["abbreviation"]
        if not old_abbreviation:
            phrase = f"added abbreviation {abbreviation}"
        elif not abbreviation:
            phrase = f"removed abbreviation {old_abbreviation}"
        else:
            phrase = f"changed abbreviation to {abbreviation}"
        description = f"{description} and {phrase}" if description else phrase[0].upper() + phrase[1:]
    if "schema" in changes:
        description = f"{description} and modified schema" if description else "Modified schema"
    return description


def remove_otu(db: Database, otu: dict, user_id: str) -> None:
    """Delete the OTU and its sequences; history keeps the whole old OTU as ``<id>.removed``."""
    old = join_otu(db, otu)
    if not db.otus.delete_one({"_id": otu["_id"], "version": otu["version"]}).deleted_count:
        raise Conflict("The OTU was changed by another request; reload it and try again")
    db.sequences.delete_many({"otu_id": otu["_id"]})
    description = f"Removed {otu['name']}" + (f" ({otu['abbreviation']})" if otu.get("abbreviation") else "")
    history.add(db, "remove", description, old, None, user_id)
    db.refs.update_one(
        {"_id": otu["reference"]["id"], "internal_control.id": otu["_id"]}, {"$set": {"internal_control": None}}
    )


# ---------------------------------------------------------------- isolates


def check_source_type(ref: dict, source_type: str) -> None:
    if source_type and ref.get("restrict_source_types") and source_type not in ref.get("source_types", []):
        raise BadRequest("Source type is not allowed")


def _isolates_without_sequences(joined: dict) -> list[dict]:
    return [{k: v for k, v in i.items() if k != "sequences"} for i in joined["isolates"]]


def add_isolate(
    db: Database, ref: dict, otu: dict, *, source_type: str, source_name: str, default: bool, user_id: str
) -> dict:
    """Add an isolate; the first one is always the default, and a new default unsets the others."""
    check_source_type(ref, source_type)
    old = join_otu(db, otu)
    isolates = _isolates_without_sequences(old)
    taken = {i["id"] for i in isolates}
    isolate_id = new_id()
    while isolate_id in taken:
        isolate_id = new_id()
    default = default or not isolates
    if default:
        for isolate in isolates:
            isolate["default"] = False
    isolate = {"id": isolate_id, "source_type": source_type, "source_name": source_name, "default": default}
    isolates.append(isolate)
    description = f"Added {format_isolate_name(isolate)}" + (" as default" if default else "")
    new = _commit(db, old, "add_isolate", description, user_id, otu_set={"isolates": isolates})
    return get_isolate_or_404(new, isolate_id)


def add_isolate_with_sequences(
    db: Database, ref: dict, otu: dict, *, source_type: str, source_name: str, sequences: list[dict], user_id: str
) -> dict:
    """Add an isolate holding ``sequences`` (each ``accession, definition, sequence, host, segment``)
    as one change: one version, one history entry. The first isolate is the default."""
    check_source_type(ref, source_type)
    for data in sequences:
        _check_segment(otu, data.get("segment"))
    old = join_otu(db, otu)
    isolates = _isolates_without_sequences(old)
    taken = {i["id"] for i in isolates}
    isolate_id = new_id()
    while isolate_id in taken:
        isolate_id = new_id()
    isolate = {"id": isolate_id, "source_type": source_type, "source_name": source_name, "default": not isolates}
    documents = [_new_sequence(otu, isolate_id, data) for data in sequences]
    accessions = [d["accession"] for d in documents]
    held = ", ".join(accessions) if len(accessions) <= 3 else f"{len(accessions)} sequences"
    description = f"Added {format_isolate_name(isolate)}" + (" as default" if isolate["default"] else "")
    new = _commit(
        db,
        old,
        "add_isolate",
        f"{description} with {held}",
        user_id,
        otu_set={"isolates": [*isolates, isolate]},
        sequences=lambda: db.sequences.insert_many(documents),
    )
    return get_isolate_or_404(new, isolate_id)


def edit_isolate(db: Database, ref: dict, otu: dict, isolate_id: str, changes: dict, user_id: str) -> dict:
    """Change ``source_type`` and/or ``source_name``."""
    old = join_otu(db, otu)
    current = get_isolate_or_404(old, isolate_id)
    changes = {k: v for k, v in changes.items() if current.get(k) != v}
    if not changes:
        return current
    if "source_type" in changes:
        check_source_type(ref, changes["source_type"])
    isolates = _isolates_without_sequences(old)
    for isolate in isolates:
        if isolate["id"] == isolate_id:
            isolate.update(changes)
            edited = isolate
    description = f"Renamed {format_isolate_name(current)} to {format_isolate_name(edited)}"
    new = _commit(db, old, "edit_isolate", description, user_id, otu_set={"isolates": isolates})
    return get_isolate_or_404(new, isolate_id)


def set_default_isolate(db: Database, otu: dict, isolate_id: str, user_id: str) -> dict:
    old = join_otu(db, otu)
    current = get_isolate_or_404(old, isolate_id)
    if current["default"]:
        return current
    isolates = _isolates_without_sequences(old)
    for isolate in isolates:
        isolate["default"] = isolate["id"] == isolate_id
    description = f"Set {format_isolate_name(current)} as default"
    new = _commit(db, old, "set_as_default", description, user_id, otu_set={"isolates": isolates})
    return get_isolate_or_404(new, isolate_id)


def remove_isolate(db: Database, otu: dict, isolate_id: str, user_id: str) -> None:
    """Remove an isolate and its sequences; if it was the default, the first one left becomes it."""
    old = join_otu(db, otu)
    removed = get_isolate_or_404(old, isolate_id)
    isolates = [i for i in _isolates_without_sequences(old) if i["id"] != isolate_id]
    description = f"Removed {format_isolate_name(removed)}"
    if removed["default"] and isolates:
        isolates[0]["default"] = True
        description += f" and set {format_isolate_name(isolates[0])} as default"
    _commit(
        db,
        old,
        "remove_isolate",
        description,
        user_id,
        otu_set={"isolates": isolates},
        sequences=lambda: db.sequences.delete_many({"otu_id": otu["_id"], "isolate_id": isolate_id}),
    )


# ---------------------------------------------------------------- sequences


def _check_segment(otu: dict, segment: str | None, error=BadRequest) -> None:
    if segment and segment not in {s["name"] for s in otu.get("schema") or []}:
        raise error("Segment does not exist")


def _new_sequence(otu: dict, isolate_id: str, data: dict) -> dict:
    """The sequence document of ``data`` (``accession, definition, sequence, host, segment, target``) in an isolate."""
    sequence = {
        "_id": new_id(),
        "otu_id": otu["_id"],
        "isolate_id": isolate_id,
        "accession": data["accession"],
        "definition": data["definition"],
        "host": data.get("host") or "",
        "segment": data.get("segment"),
        "sequence": data["sequence"],
        "reference": {"id": otu["reference"]["id"]},
    }
    if data.get("target") is not None:
        sequence["target"] = data["target"]
    return sequence


def create_sequence(db: Database, otu: dict, isolate_id: str, data: dict, user_id: str) -> dict:
    """Add a sequence (``accession, definition, sequence, host, segment``) to an isolate."""
    old = join_otu(db, otu)
    isolate = get_isolate_or_404(old, isolate_id)
    _check_segment(otu, data.get("segment"))
    sequence = _new_sequence(otu, isolate_id, data)
    description = f"Created new sequence {sequence['accession']} in {format_isolate_name(isolate)}"
    new = _commit(db, old, "create_sequence", description, user_id, sequences=lambda: db.sequences.insert_one(sequence))
    return get_sequence_or_404(new, isolate_id, sequence["_id"])


def edit_sequence(db: Database, otu: dict, isolate_id: str, sequence_id: str, changes: dict, user_id: str) -> dict:
    old = join_otu(db, otu)
    isolate = get_isolate_or_404(old, isolate_id)
    current = get_sequence_or_404(old, isolate_id, sequence_id)
    if "segment" in changes:
        _check_segment(otu, changes["segment"], NotFound)
    changes = {k: v for k, v in changes.items() if current.get(k) != v}
    if not changes:
        return current
    accession = changes.get("accession", current["accession"])
    description = f"Edited sequence {accession} in {format_isolate_name(isolate)}"
    new = _commit(
        db,
        old,
        "edit_sequence",
        description,
        user_id,
        sequences=lambda: db.sequences.update_one({"_id": sequence_id}, {"$set": changes}),
    )
    return get_sequence_or_404(new, isolate_id, sequence_id)


def remove_sequence(db: Database, otu: dict, isolate_id: str, sequence_id: str, user_id: str) -> None:
    old = join_otu(db, otu)
    isolate = get_isolate_or_404(old, isolate_id)
    sequence = get_sequence_or_404(old, isolate_id, sequence_id)
    description = f"Removed sequence {sequence['accession']} from {format_isolate_name(isolate)}"
    _commit(
        db,
        old,
        "remove_sequence",
        description,
        user_id,
        sequences=lambda: db.sequences.delete_one({"_id": sequence_id}),
    )


# ---------------------------------------------------------------- older versions and revert


def _version_key(change: dict) -> float:
    version = change["otu"]["version"]
    return math.inf if version == "removed" else version


def patch_with_history(db: Database, otu_id: str, version: int) -> tuple[dict | None, dict | None, list[str]]:
    """Virtool's ``patch_to_version``: ``(current, patched, reverted history ids)``.

    Undoes the OTU's changes newer than ``version``, newest first: a removal gives back the
    removed OTU, a creation gives ``None``, any other change is patched back with its diff.
    Works for removed OTUs too (their history starts with the ``removed`` entry).
    """
    current = get_joined_otu(db, otu_id)
    if current is not None and current["version"] == version:
        return current, copy.deepcopy(current), []
    patched = copy.deepcopy(current)
    reverted = []
    for change in sorted(db.history.find({"otu.id": otu_id}), key=_version_key, reverse=True):
        if change["otu"]["version"] != "removed" and change["otu"]["version"] <= version:
            break
        reverted.append(change["_id"])
        if change["method_name"] == "remove":
            patched = change["diff"]
        elif change["method_name"] in history.CREATION_METHODS:
            patched = None
        else:
            assert patched is not None, "an edit follows the OTU's creation or its removal entry"
            patched = patch_back(patched, [change["diff"]])
    return current, patched, reverted


def patch_otu_to_version(db: Database, otu_id: str, version: int) -> dict | None:
    """The joined OTU as it was at ``version`` (None if it did not exist then)."""
    return patch_with_history(db, otu_id, version)[1]


def revert_change(db: Database, change: dict) -> None:
    """Undo an unbuilt change and every later change of its OTU (history ``DELETE``)."""
    if change["index"]["id"] != "unbuilt":
        raise Conflict("Change is already built")
    otu_id = change["otu"]["id"]
    target = change["diff"]["version"] if change["otu"]["version"] == "removed" else change["otu"]["version"] - 1
    _, patched, reverted = patch_with_history(db, otu_id, target)
    built = db.history.find_one({"_id": {"$in": reverted}, "index.id": {"$ne": "unbuilt"}}, {"_id": 1})
    if built:
        raise Conflict("Change is already built")
    db.sequences.delete_many({"otu_id": otu_id})
    if patched is None:
        db.otus.delete_one({"_id": otu_id})
    else:
        otu, sequences = split_otu(patched)
        db.otus.replace_one({"_id": otu_id}, otu, upsert=True)
        if sequences:
            db.sequences.insert_many(sequences)
    db.history.delete_many({"_id": {"$in": reverted}})


# ---------------------------------------------------------------- FASTA


def fasta_records(otu: dict, isolates: Iterable[dict]) -> Iterator[str]:
    """Virtool's download format: ``>otu|isolate|sequence_id|length`` then the sequence."""
    for isolate in isolates:
        for sequence in isolate["sequences"]:
            header = f"{otu['name']}|{format_isolate_name(isolate)}|{sequence['_id']}|{len(sequence['sequence'])}"
            yield f">{header}\n{sequence['sequence']}\n"


def fasta_file_name(*parts: str) -> str:
    return ".".join("".join(c if c.isalnum() or c in "-_" else "_" for c in p.lower()) for p in parts) + ".fa"
