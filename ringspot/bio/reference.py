"""The ``reference.json.gz`` format: read, validate, verify, write, and FASTA for index builds.

A reference file is gzip-compressed JSON (spec ``virtool-api.md`` section 5)::

    {"created_at", "data_type", "name", "organism",
     "otus": [{"_id", "name", "abbreviation", "schema", "taxid",
               "isolates": [{"id", "source_type", "source_name", "default",
                             "sequences": [{"_id", "accession", "definition",
                                            "host", "segment", "sequence"}]}]}]}

Joined OTU documents from the database (isolates with ``sequences`` embedded) have the same
nesting, so :func:`verify_otu`, :func:`export_reference` and the FASTA iterators take either.

Everything here is pure: no database, no HTTP. Problems in a file raise
:class:`ReferenceFileError`, a ``ValueError`` with a short ``id`` for the API and a message naming
the first problem and where it is.
"""

from __future__ import annotations

import datetime
import gzip
import json
import os
import re
import zlib
from collections.abc import Collection, Iterable, Iterator
from typing import IO, Any, cast

#: First two bytes of every gzip stream.
GZIP_MAGIC = b"\x1f\x8b"
#: Refuse to inflate more than this many bytes: uploads are size-limited compressed, and a small
#: gzip bomb would otherwise fill memory. The full plant-virus reference is about 25 MB.
MAX_UNCOMPRESSED_SIZE = 1 << 30

DATA_TYPES = ("genome", "barcode")
#: Molecule types an OTU schema segment may declare (Virtool's OTU schema; ``""`` = unknown).
MOLECULES = ("", "ssDNA", "dsDNA", "ssRNA", "ssRNA+", "ssRNA-", "dsRNA")
#: IUPAC nucleotide codes accepted in sequences, in either case.
IUPAC_NUCLEOTIDES = "ACGTURYKMSWBDHVN"

_NOT_IUPAC = re.compile(f"[^{IUPAC_NUCLEOTIDES}{IUPAC_NUCLEOTIDES.lower()}]")
_MISSING = object()
_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "true or false",
    int: "an integer",
    float: "a number",
    type(None): "null",
}
#: Issues from :func:`verify_otu` that make a file unusable, in the order they are reported.
#: ``segment_mismatch`` is left out on purpose: the official plant-virus reference v1.5.0 has 33
#: OTUs with unassigned or missing segments, and refusing it would refuse Virtool's own data.
BLOCKING_ISSUES = (
    "empty_otu",
    "empty_isolate",
    "empty_sequence",
    "isolate_inconsistency",
    "no_default_isolate",
)


class ReferenceFileError(ValueError):
    """A reference file that cannot be used.

    ``id`` says what kind of problem it is (``not_gzipped``, ``too_large``, ``invalid_json``,
    ``invalid_schema``, ``duplicates``, ``invalid_sequence``, ``verification``); the message names
    the first problem found and where it is. ``details`` holds JSON-ready extras (for
    ``verification``: the OTU id and its :func:`verify_otu` issues).
    """

    def __init__(self, id: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.id = id
        self.message = message
        self.details = details

    def to_dict(self) -> dict:
        """``{"id", "message"}`` (plus ``details`` when there are some), for process errors."""
        body: dict = {"id": self.id, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


# --------------------------------------------------------------------------------------------
# Reading


def load_reference_file(path_or_fileobj, *, max_size: int = MAX_UNCOMPRESSED_SIZE) -> dict:
    """Gunzip and parse a reference file given as a path or a binary file object.

    Only decoding is checked here; :func:`validate_reference` checks the content.

    >>> import io
    >>> load_reference_file(io.BytesIO(gzip.compress(b'{"otus": []}')))
    {'otus': []}
    >>> load_reference_file(io.BytesIO(b'{"otus": []}'))
    Traceback (most recent call last):
    ...
    ringspot.bio.reference.ReferenceFileError: Reference file is not gzip-compressed
    >>> try:
    ...     load_reference_file(io.BytesIO(gzip.compress(b'{"otus": [}')))
    ... except ReferenceFileError as error:
    ...     print(error.id, "|", error)
    invalid_json | Reference file is not valid JSON: Expecting value at line 1 column 11
    """
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        with open(path_or_fileobj, "rb") as handle:
            raw = _gunzip(handle, max_size)
    else:
        raw = _gunzip(path_or_fileobj, max_size)
    return _parse_json(raw)


def _gunzip(handle: IO[bytes], max_size: int) -> bytes:
    # Peek at the magic bytes first: GzipFile reads an empty file as empty content and reports
    # other non-gzip input with a message about headers, neither of which helps a user.
    head = handle.read(2)
    if head != GZIP_MAGIC:
        raise ReferenceFileError("not_gzipped", "Reference file is not gzip-compressed")
    try:
        with gzip.GzipFile(fileobj=cast(IO[bytes], _Prepended(head, handle)), mode="rb") as gz:
            raw = gz.read(max_size + 1)
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise ReferenceFileError("not_gzipped", f"Reference file is a truncated or corrupt gzip stream: {err}") from err
    if len(raw) > max_size:
        raise ReferenceFileError("too_large", f"Reference file inflates to more than {max_size:,} bytes")
    return raw


class _Prepended:
    """A read-only stream: ``head`` followed by the rest of ``handle``.

    Lets the peeked magic bytes go back in front of a stream that may not be seekable (an upload).
    """

    def __init__(self, head: bytes, handle: IO[bytes]):
        self._head = head
        self._handle = handle

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._handle.read(size)
        if size is not None and 0 <= size <= len(self._head):
            data, self._head = self._head[:size], self._head[size:]
            return data
        rest = self._handle.read() if size is None or size < 0 else self._handle.read(size - len(self._head))
        data, self._head = self._head + rest, b""
        return data

    def readable(self) -> bool:
        return True


def _parse_json(raw: bytes) -> dict:
    try:
        data = json.loads(raw)
    except UnicodeDecodeError as err:
        raise ReferenceFileError(
            "invalid_json", f"Reference file is not UTF-8 text: byte {err.start} cannot be decoded"
        ) from err
    except json.JSONDecodeError as err:
        raise ReferenceFileError(
            "invalid_json",
            f"Reference file is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}",
        ) from err
    if not isinstance(data, dict):
        raise ReferenceFileError(
            "invalid_schema",
            f'Reference file must hold a JSON object with an "otus" list, not {_json_type(data)}',
        )
    return data


# --------------------------------------------------------------------------------------------
# Validating


def validate_reference(data: Any, *, verify: bool = True) -> dict:
    """Check a parsed reference file and return it normalised.

    Checks, in file order, stopping at the first problem:

    - ``invalid_schema``: the shape of section 5 of the spec. Top level: ``otus`` a list of at
      least one OTU, ``data_type`` ``genome`` or ``barcode`` (default ``genome``), ``organism`` a
      string (default ``""``), optional ``name``, ``created_at`` and (barcode) ``targets``. OTU:
      ``_id`` and ``name`` non-empty strings, ``abbreviation`` a string (default ``""``),
      ``schema`` a list of ``{name, molecule, required}`` with unique names (default ``[]``),
      ``taxid`` an integer or null, ``isolates`` at least one, at most one of them default.
      Isolate: ``id`` non-empty and unique in its OTU, ``source_type``, ``source_name``
      strings, ``default`` a boolean, ``sequences`` at least one. Sequence: ``_id`` non-empty,
      ``accession``, ``definition``, ``sequence`` strings, ``host`` string or null (default
      ``""``), ``segment`` string or null (default null), optional ``target`` string.
    - ``duplicates``: OTU names (case-insensitive), non-empty abbreviations, OTU ids, and
      sequence ids across the whole file.
    - ``invalid_sequence``: a character that is not an IUPAC nucleotide code (either case).
    - ``verification`` (when ``verify``): :func:`verify_otu` issues listed in
      :data:`BLOCKING_ISSUES`. Segment mismatches do not block an import.

    The result keeps only the fields above, with defaults filled, in the key order
    :func:`export_reference` writes, so ``validate_reference(data)["otus"]`` exports back to the
    same content. Sequences are kept as given (case, ``U``), not rewritten.
    """
    where = "Reference file"
    if not isinstance(data, dict):
        raise _schema_error(f"{where} must hold a JSON object, not {_json_type(data)}")
    data_type = _field(data, "data_type", where, (str,), default="genome")
    if data_type not in DATA_TYPES:
        raise _schema_error(f'{where}: "data_type" must be "genome" or "barcode", not "{data_type}"')
    organism = _field(data, "organism", where, (str, type(None)), default="") or ""
    name = _field(data, "name", where, (str, type(None)), default=None)
    created_at = _field(data, "created_at", where, (str, type(None)), default=None)
    raw_otus = _non_empty_list(data, "otus", where, "OTU")

    seen = _Seen()
    otus = []
    for number, raw_otu in enumerate(raw_otus, 1):
        otu = _validate_otu(raw_otu, number, seen)
        if verify:
            _check_verification(otu)
        otus.append(otu)

    clean = {
        "created_at": created_at,
        "data_type": data_type,
        "name": name,
        "organism": organism,
        "otus": otus,
    }
    if "targets" in data:
        clean["targets"] = _field(data, "targets", where, (list,))
    return clean


def _validate_otu(raw: Any, number: int, seen: _Seen) -> dict:
    where = _label("OTU", raw, ("name", "_id"), number)
    _require_object(raw, where)
    otu_id = _field(raw, "_id", where, (str,), non_empty=True)
    name = _field(raw, "name", where, (str,), non_empty=True)
    abbreviation = _field(raw, "abbreviation", where, (str, type(None)), default="") or ""
    schema = _validate_schema(_field(raw, "schema", where, (list,), default=[]), where)
    taxid = _field(raw, "taxid", where, (int, type(None)), default=None)
    raw_isolates = _non_empty_list(raw, "isolates", where, "isolate")
    seen.add_otu(otu_id, name, abbreviation, where)

    isolates = [
        _validate_isolate(raw_isolate, isolate_number, where, seen)
        for isolate_number, raw_isolate in enumerate(raw_isolates, 1)
    ]
    isolate_ids: set[str] = set()
    for isolate in isolates:
        if isolate["id"] in isolate_ids:
            raise ReferenceFileError("duplicates", f'{where}: two isolates have the id "{isolate["id"]}"')
        isolate_ids.add(isolate["id"])
    defaults = [isolate["id"] for isolate in isolates if isolate["default"]]
    if len(defaults) > 1:
        # Index builds take one default isolate per OTU; two would make the choice arbitrary.
        listed = ", ".join(f'"{isolate_id}"' for isolate_id in defaults)
        raise _schema_error(f"{where}: more than one default isolate ({listed})")

    return {
        "_id": otu_id,
        "name": name,
        "abbreviation": abbreviation,
        "schema": schema,
        "taxid": taxid,
        "isolates": isolates,
    }


def _validate_schema(raw_schema: list, otu_where: str) -> list[dict]:
    schema = []
    names: set[str] = set()
    for number, raw in enumerate(raw_schema, 1):
        where = f"{otu_where} schema " + (
            f'segment "{raw["name"]}"'
            if isinstance(raw, dict) and isinstance(raw.get("name"), str) and raw["name"]
            else f"segment #{number}"
        )
        _require_object(raw, where)
        name = _field(raw, "name", where, (str,), non_empty=True)
        molecule = _field(raw, "molecule", where, (str, type(None)), default="") or ""
        if molecule not in MOLECULES:
            allowed = ", ".join(f'"{m}"' for m in MOLECULES)
            raise _schema_error(f'{where}: molecule "{molecule}" is not one of {allowed}')
        required = _field(raw, "required", where, (bool,), default=True)
        if name in names:
            raise _schema_error(f'{otu_where}: schema names segment "{name}" twice')
        names.add(name)
        schema.append({"name": name, "molecule": molecule, "required": required})
    return schema


def _validate_isolate(raw: Any, number: int, otu_where: str, seen: _Seen) -> dict:
    where = f"{otu_where} " + _label("isolate", raw, ("id",), number)
    _require_object(raw, where)
    isolate_id = _field(raw, "id", where, (str,), non_empty=True)
    source_type = _field(raw, "source_type", where, (str,))
    source_name = _field(raw, "source_name", where, (str,))
    default = _field(raw, "default", where, (bool,))
    raw_sequences = _non_empty_list(raw, "sequences", where, "sequence")
    sequences = [
        _validate_sequence(raw_sequence, sequence_number, where, seen)
        for sequence_number, raw_sequence in enumerate(raw_sequences, 1)
    ]
    return {
        "id": isolate_id,
        "source_type": source_type,
        "source_name": source_name,
        "default": default,
        "sequences": sequences,
    }


def _validate_sequence(raw: Any, number: int, isolate_where: str, seen: _Seen) -> dict:
    where = f"{isolate_where} " + _label("sequence", raw, ("accession", "_id"), number)
    _require_object(raw, where)
    sequence_id = _field(raw, "_id", where, (str,), non_empty=True)
    accession = _field(raw, "accession", where, (str,))
    definition = _field(raw, "definition", where, (str,))
    host = _field(raw, "host", where, (str, type(None)), default="")
    segment = _field(raw, "segment", where, (str, type(None)), default=None)
    sequence = _field(raw, "sequence", where, (str,))
    seen.add_sequence(sequence_id, where)

    bad = _NOT_IUPAC.search(sequence)
    if bad:
        raise ReferenceFileError(
            "invalid_sequence",
            f"{where}: {_describe_character(bad.group())} at position {bad.start() + 1} "
            "is not an IUPAC nucleotide code",
        )

    clean = {
        "_id": sequence_id,
        "accession": accession,
        "definition": definition,
        "host": host,
        "segment": segment,
        "sequence": sequence,
    }
    if "target" in raw:
        clean["target"] = _field(raw, "target", where, (str,))
    return clean


class _Seen:
    """Who first used each OTU id, name, abbreviation and sequence id, to name both duplicates."""

    def __init__(self):
        self.otu_ids: dict[str, str] = {}
        self.names: dict[str, tuple[str, str]] = {}
        self.abbreviations: dict[str, str] = {}
        self.sequence_ids: dict[str, str] = {}

    def add_otu(self, otu_id: str, name: str, abbreviation: str, where: str) -> None:
        if otu_id in self.otu_ids:
            raise _duplicate(f'OTU id "{otu_id}"', self.otu_ids[otu_id], where)
        self.otu_ids[otu_id] = where

        lower = name.lower()
        if lower in self.names:
            first_name, first_id = self.names[lower]
            raise ReferenceFileError(
                "duplicates",
                f'Duplicate OTU name: "{first_name}" (OTU id "{first_id}") and "{name}" '
                f'(OTU id "{otu_id}"); names are compared case-insensitively',
            )
        self.names[lower] = (name, otu_id)

        # Many OTUs have no abbreviation; only real ones must be unique.
        if abbreviation:
            if abbreviation in self.abbreviations:
                raise _duplicate(f'OTU abbreviation "{abbreviation}"', self.abbreviations[abbreviation], where)
            self.abbreviations[abbreviation] = where

    def add_sequence(self, sequence_id: str, where: str) -> None:
        if sequence_id in self.sequence_ids:
            raise _duplicate(f'sequence id "{sequence_id}"', self.sequence_ids[sequence_id], where)
        self.sequence_ids[sequence_id] = where


def _duplicate(what: str, first: str, second: str) -> ReferenceFileError:
    return ReferenceFileError("duplicates", f"Duplicate {what}: {first} and {second}")


def _check_verification(otu: dict) -> None:
    issues = verify_otu(otu)
    if issues and blocking_issues(issues):
        message = _describe_blocking_issue(otu, issues)
        raise ReferenceFileError("verification", message, details={"otu_id": otu["_id"], "issues": issues})


def _describe_blocking_issue(otu: dict, issues: dict) -> str:
    where = f'OTU "{otu["name"]}"'
    if issues["empty_otu"]:
        return f"{where} has no isolates"
    if issues["empty_isolate"]:
        return f'{where} isolate "{issues["empty_isolate"][0]}" has no sequences'
    if issues["empty_sequence"]:
        sequence_id = issues["empty_sequence"][0]
        isolate_id = next(
            isolate["id"]
            for isolate in otu["isolates"]
            for sequence in isolate["sequences"]
            if sequence["_id"] == sequence_id
        )
        return f'{where} isolate "{isolate_id}" sequence "{sequence_id}" is empty'
    if issues["isolate_inconsistency"]:
        counts = ", ".join(f'isolate "{isolate["id"]}": {len(isolate["sequences"])}' for isolate in otu["isolates"])
        return f"{where}: isolates have different numbers of sequences ({counts})"
    return f"{where} has no default isolate"


# Small helpers for the checks above. ``where`` is the human label of the object being checked.


def _field(
    obj: dict,
    key: str,
    where: str,
    kinds: tuple[type, ...],
    *,
    default: Any = _MISSING,
    non_empty: bool = False,
) -> Any:
    """``obj[key]`` if it has one of ``kinds``; ``default`` if absent (when given)."""
    if key not in obj:
        if default is _MISSING:
            raise _schema_error(f'{where}: field "{key}" is missing')
        return default
    value = obj[key]
    # bool is an int subclass, and true is no taxid.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        wanted = " or ".join(_JSON_TYPE_NAMES[kind] for kind in kinds)
        raise _schema_error(f'{where}: field "{key}" must be {wanted}, not {_json_type(value)}')
    if non_empty and isinstance(value, str) and not value.strip():
        raise _schema_error(f'{where}: field "{key}" must not be empty')
    return value


def _non_empty_list(obj: dict, key: str, where: str, item: str) -> list:
    value = _field(obj, key, where, (list,))
    if not value:
        raise _schema_error(f'{where}: field "{key}" must hold at least one {item}')
    return value


def _require_object(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise _schema_error(f"{where} must be an object, not {_json_type(value)}")


def _label(kind: str, raw: Any, keys: tuple[str, ...], number: int) -> str:
    """``OTU "Foo virus"``, falling back to other keys and then to ``OTU #3`` (1-based)."""
    if isinstance(raw, dict):
        for key in keys:
            value = raw.get(key)
            if isinstance(value, str) and value.strip():
                return f'{kind} "{value}"'
    return f"{kind} #{number}"


def _json_type(value: Any) -> str:
    for kind, name in _JSON_TYPE_NAMES.items():
        if type(value) is kind:
            return name
    return type(value).__name__


def _describe_character(character: str) -> str:
    quoted = json.dumps(character)  # shows "\n" or "\t" instead of a raw control character
    return f"letter {quoted}" if character.isalpha() else f"character {quoted}"


def _schema_error(message: str) -> ReferenceFileError:
    return ReferenceFileError("invalid_schema", message)


# --------------------------------------------------------------------------------------------
# Verifying


def verify_otu(otu: dict) -> dict | None:
    """Find what keeps a joined OTU (isolates with ``sequences``) from being indexed.

    Returns ``None`` when nothing is wrong, else every key below (falsy when that rule holds):

    - ``empty_otu`` (bool): the OTU has no isolates.
    - ``empty_isolate`` (list of isolate ids): isolates without sequences.
    - ``empty_sequence`` (list of sequence ``_id``s): sequences whose ``sequence`` is empty.
    - ``isolate_inconsistency`` (bool): isolates hold different numbers of sequences; not
      raised when ``empty_otu`` or ``empty_isolate`` already is (as in Virtool).
    - ``no_default_isolate`` (bool): the OTU has isolates but none has ``default: true``.
    - ``segment_mismatch`` (list): only for OTUs with a non-empty ``schema``, and only for
      isolates that have sequences. One entry ``{isolate_id, sequence_id, segment, reason}`` per
      problem, in isolate then sequence order, then missing segments in schema order:

      - ``reason: "no_segment"``: the sequence's ``segment`` is null, empty or absent;
      - ``reason: "unknown_segment"``: its ``segment`` is not a name in the schema;
      - ``reason: "missing_segment"``: no sequence of the isolate has this required segment
        (``sequence_id`` is null; ``required`` defaults to true).

    The first four keys are Virtool's ``verify()``; the last two are ringspot's own rules.

    >>> sequence = {"_id": "s1", "segment": "RNA 1", "sequence": "ACGT"}
    >>> otu = {"schema": [{"name": "RNA 1", "required": True}],
    ...        "isolates": [{"id": "i1", "default": True, "sequences": [sequence]}]}
    >>> verify_otu(otu) is None
    True
    >>> otu["isolates"].append({"id": "i2", "default": False, "sequences": []})
    >>> verify_otu(otu)["empty_isolate"]
    ['i2']
    """
    isolates = otu.get("isolates") or []
    empty_isolate = [isolate["id"] for isolate in isolates if not isolate.get("sequences")]
    empty_sequence = [
        sequence["_id"]
        for isolate in isolates
        for sequence in isolate.get("sequences") or ()
        if not sequence.get("sequence")
    ]
    sequence_counts = {len(isolate.get("sequences") or ()) for isolate in isolates}
    issues = {
        "empty_otu": not isolates,
        "empty_isolate": empty_isolate,
        "empty_sequence": empty_sequence,
        "isolate_inconsistency": len(sequence_counts) > 1 and not empty_isolate,
        "no_default_isolate": bool(isolates) and not any(isolate.get("default") is True for isolate in isolates),
        "segment_mismatch": _segment_mismatches(otu.get("schema") or [], isolates),
    }
    return issues if any(issues.values()) else None


def blocking_issues(issues: dict | None) -> list[str]:
    """The keys of :func:`verify_otu` issues that make an OTU unusable (:data:`BLOCKING_ISSUES`).

    >>> blocking_issues(None)
    []
    >>> blocking_issues({"empty_sequence": ["s1"], "no_default_isolate": True,
    ...                  "segment_mismatch": [{"reason": "no_segment"}]})
    ['empty_sequence', 'no_default_isolate']
    """
    if not issues:
        return []
    return [key for key in BLOCKING_ISSUES if issues.get(key)]


def _segment_mismatches(schema: list[dict], isolates: list[dict]) -> list[dict]:
    if not schema:
        return []
    names = [segment["name"] for segment in schema]
    required = [segment["name"] for segment in schema if segment.get("required", True)]
    mismatches = []
    for isolate in isolates:
        sequences = isolate.get("sequences") or []
        if not sequences:
            continue  # already an empty_isolate; listing every segment as missing adds nothing
        present = set()
        for sequence in sequences:
            segment = sequence.get("segment")
            present.add(segment)
            if segment not in names:
                mismatches.append(
                    {
                        "isolate_id": isolate["id"],
                        "sequence_id": sequence["_id"],
                        "segment": segment,
                        "reason": "unknown_segment" if segment else "no_segment",
                    }
                )
        mismatches.extend(
            {
                "isolate_id": isolate["id"],
                "sequence_id": None,
                "segment": name,
                "reason": "missing_segment",
            }
            for name in required
            if name not in present
        )
    return mismatches


# --------------------------------------------------------------------------------------------
# Writing


def export_reference(
    otus: Iterable[dict],
    data_type: str,
    organism: str,
    name: str | None = None,
    created_at: str | datetime.datetime | None = None,
    *,
    targets: list | None = None,
    prefer_remote_ids: bool = True,
) -> dict:
    """The ``reference.json.gz`` content for joined OTUs, in the order given.

    Accepts file-shaped OTUs or database documents; database-only fields (``version``,
    ``reference``, ``otu_id`` ...) are left out. Like Virtool's ``clean_export_list``, an OTU or
    sequence linked to a remote reference is written with its ``remote.id`` when
    ``prefer_remote_ids``, so an exported remote reference keeps the upstream ids.
    ``created_at`` may be an ISO string or a datetime (naive means UTC).

    >>> otu = {"_id": "abc", "name": "Foo virus", "version": 3, "isolates": [
    ...     {"id": "i1", "default": True, "source_type": "isolate", "source_name": "A",
    ...      "sequences": [{"_id": "s1", "accession": "NC_1", "definition": "Foo",
    ...                     "sequence": "ACGT", "otu_id": "abc"}]}]}
    >>> export = export_reference([otu], "genome", "virus")
    >>> list(export)
    ['created_at', 'data_type', 'name', 'organism', 'otus']
    >>> list(export["otus"][0])
    ['_id', 'name', 'abbreviation', 'schema', 'taxid', 'isolates']
    >>> export["otus"][0]["isolates"][0]["sequences"][0]  # doctest: +NORMALIZE_WHITESPACE
    {'_id': 's1', 'accession': 'NC_1', 'definition': 'Foo', 'host': '', 'segment': None,
     'sequence': 'ACGT'}
    """
    exported = {
        "created_at": _timestamp(created_at),
        "data_type": data_type,
        "name": name,
        "organism": organism,
        "otus": [_export_otu(otu, prefer_remote_ids) for otu in otus],
    }
    if targets is not None:
        exported["targets"] = targets
    return exported


def _export_otu(otu: dict, prefer_remote_ids: bool) -> dict:
    return {
        "_id": _export_id(otu, prefer_remote_ids),
        "name": otu["name"],
        "abbreviation": otu.get("abbreviation") or "",
        "schema": [
            {
                "name": segment["name"],
                "molecule": segment.get("molecule") or "",
                "required": segment.get("required", True),
            }
            for segment in otu.get("schema") or []
        ],
        "taxid": otu.get("taxid"),
        "isolates": [
            {
                "id": isolate["id"],
                "source_type": isolate["source_type"],
                "source_name": isolate["source_name"],
                "default": isolate["default"],
                "sequences": [_export_sequence(sequence, prefer_remote_ids) for sequence in isolate["sequences"]],
            }
            for isolate in otu["isolates"]
        ],
    }


def _export_sequence(sequence: dict, prefer_remote_ids: bool) -> dict:
    exported = {
        "_id": _export_id(sequence, prefer_remote_ids),
        "accession": sequence["accession"],
        "definition": sequence["definition"],
        "host": sequence.get("host", ""),
        "segment": sequence.get("segment"),
        "sequence": sequence["sequence"],
    }
    if "target" in sequence:
        exported["target"] = sequence["target"]
    return exported


def _export_id(document: dict, prefer_remote_ids: bool) -> str:
    remote = document.get("remote") if prefer_remote_ids else None
    if isinstance(remote, dict) and remote.get("id"):
        return remote["id"]
    return document["_id"]


def _timestamp(value: str | datetime.datetime | None) -> str | None:
    if not isinstance(value, datetime.datetime):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_reference_file(data: dict, path_or_fileobj, *, compresslevel: int = 6) -> None:
    """Write ``data`` as ``reference.json.gz``: sorted keys, gzip mtime 0, no file name.

    The same data always gives the same bytes, so exports can be compared and cached by hash.
    A path is written through a temporary file beside it and renamed into place, so a reader
    never sees half a file.

    >>> import io
    >>> first, second = io.BytesIO(), io.BytesIO()
    >>> write_reference_file({"otus": [], "data_type": "genome"}, first)
    >>> write_reference_file({"data_type": "genome", "otus": []}, second)
    >>> first.getvalue() == second.getvalue()
    True
    >>> gzip.decompress(first.getvalue())
    b'{"data_type": "genome", "otus": []}'
    """
    payload = json.dumps(data, sort_keys=True).encode()
    if not isinstance(path_or_fileobj, (str, os.PathLike)):
        _write_gzip(payload, path_or_fileobj, compresslevel)
        return
    path = os.fspath(path_or_fileobj)
    temporary = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            _write_gzip(payload, handle, compresslevel)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _write_gzip(payload: bytes, handle: IO[bytes], compresslevel: int) -> None:
    # filename="" keeps the path out of the gzip header; mtime=0 keeps the clock out.
    with gzip.GzipFile(filename="", mode="wb", fileobj=handle, compresslevel=compresslevel, mtime=0) as gz:
        gz.write(payload)


# --------------------------------------------------------------------------------------------
# FASTA for index builds


def default_isolate(otu: dict) -> dict:
    """The OTU's default isolate (the first one marked default).

    >>> default_isolate({"isolates": [{"id": "a", "default": False}, {"id": "b", "default": True}]})
    {'id': 'b', 'default': True}
    """
    for isolate in otu.get("isolates") or ():
        if isolate.get("default") is True:
            return isolate
    name = otu.get("name") or otu.get("_id")
    raise ValueError(f'OTU "{name}" has no default isolate, so it cannot be indexed')


def iter_default_isolate_fasta(otus: Iterable[dict]) -> Iterator[tuple[str, str]]:
    """``(sequence_id, sequence)`` for every sequence of each OTU's default isolate.

    What a reference index holds (Virtool's ``write_fasta`` build step). An OTU without a
    default isolate raises ``ValueError`` rather than silently vanishing from the index.

    >>> otu = {"isolates": [
    ...     {"id": "a", "default": False, "sequences": [{"_id": "s1", "sequence": "AC"}]},
    ...     {"id": "b", "default": True, "sequences": [{"_id": "s2", "sequence": "GT"}]}]}
    >>> list(iter_default_isolate_fasta([otu]))
    [('s2', 'GT')]
    """
    for otu in otus:
        for sequence in default_isolate(otu)["sequences"]:
            yield sequence["_id"], sequence["sequence"]


def iter_all_isolate_fasta(otus: Iterable[dict], otu_ids: Collection[str]) -> Iterator[tuple[str, str]]:
    """``(sequence_id, sequence)`` for all isolates of the OTUs whose ``_id`` is in ``otu_ids``.

    For Pathoscope's isolate index; order is that of ``otus``, then isolates, then sequences.
    Ids in ``otu_ids`` that match no OTU are ignored.

    >>> otus = [{"_id": "o1", "isolates": [{"sequences": [{"_id": "s1", "sequence": "AC"}]},
    ...                                    {"sequences": [{"_id": "s2", "sequence": "GT"}]}]},
    ...         {"_id": "o2", "isolates": [{"sequences": [{"_id": "s3", "sequence": "TT"}]}]}]
    >>> [sequence_id for sequence_id, _ in iter_all_isolate_fasta(otus, ["o1"])]
    ['s1', 's2']
    """
    wanted = set(otu_ids)
    for otu in otus:
        if otu["_id"] in wanted:
            for isolate in otu["isolates"]:
                for sequence in isolate["sequences"]:
                    yield sequence["_id"], sequence["sequence"]


def write_fasta(records: Iterable[tuple[str, str]], handle: IO[str]) -> int:
    """Write ``(id, sequence)`` records as unwrapped FASTA to a text handle; return the count.

    Ids become Bowtie2 reference names, which end at the first whitespace, so an id with
    whitespace (or an empty one) raises ``ValueError`` instead of silently mapping wrongly.

    >>> import io
    >>> handle = io.StringIO()
    >>> write_fasta([("s1", "ACGT"), ("s2", "GG")], handle)
    2
    >>> handle.getvalue()
    '>s1\\nACGT\\n>s2\\nGG\\n'
    """
    count = 0
    for sequence_id, sequence in records:
        if not sequence_id or any(character.isspace() for character in sequence_id):
            raise ValueError(f"FASTA record {count + 1}: id {sequence_id!r} is empty or contains whitespace")
        handle.write(f">{sequence_id}\n{sequence}\n")
        count += 1
    return count
