"""References from the files labs hold: GenBank flat files and (multi-)FASTA of virus genomes.

:func:`read_records` reads either format (plain or gzip, recognised by content) into
:class:`GenomeRecord` rows; :func:`group_records` groups them into OTUs (by organism), isolates
(by ``/isolate`` or ``/strain``) and segments, shaped like the ``otus`` of a ``reference.json.gz``
so the same validation and import path takes them. An optional mapping (CSV: accession, otu,
isolate, segment) settles what the text cannot.

FASTA definition lines are read the way NCBI writes them::

    >JQ610675.1 Orungo virus isolate UGMP 359 segment 1, complete sequence

Problems raise :class:`RecordError`, a ``ValueError`` naming the record.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import secrets
import string
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import IO, Any, cast

from Bio import SeqIO
from Bio.Seq import UndefinedSequenceError

from .reference import GZIP_MAGIC, IUPAC_NUCLEOTIDES, ReferenceFileError, load_reference_file

#: What an upload of a reference may hold, for messages that say what is accepted.
ACCEPTED_FORMATS = "reference.json.gz, a GenBank flat file or a FASTA of genomes (plain or gzip)"

_NOT_IUPAC = re.compile(f"[^{IUPAC_NUCLEOTIDES}{IUPAC_NUCLEOTIDES.lower()}]")
#: Words after the organism name in an NCBI definition line, in the order they appear.
_QUALIFIER_WORDS = re.compile(r"\s(isolate|strain|clone|segment|genomic|genome|complete|partial)\b", re.IGNORECASE)
#: What follows the names in a definition line: ", complete genome", " partial cds" and the like.
_TRAILING_DESCRIPTION = re.compile(r"\s+(complete|partial)\b.*$", re.IGNORECASE)
_SOURCE = re.compile(r"\b(isolate|strain)\s+(.+?)(?=\s+segment\b|\s+clone\b|$)", re.IGNORECASE)
_SEGMENT = re.compile(r"\bsegment\s+(\S+)", re.IGNORECASE)
_TAXON = re.compile(r"^taxon:(\d+)$")
_ID_LETTERS = string.ascii_lowercase + string.digits


class RecordError(ValueError):
    """A record that cannot become part of a reference; the message names it."""


@dataclass(frozen=True)
class GenomeRecord:
    accession: str
    definition: str
    organism: str
    sequence: str
    source_type: str = "unknown"
    source_name: str = ""
    segment: str | None = None
    host: str = ""
    taxid: int | None = None
    molecule: str = ""


def sniff_format(head: bytes) -> str | None:
    """``"genbank"``, ``"fasta"``, ``"json"`` or None, from the first bytes of uncompressed content.

    >>> sniff_format(b"LOCUS       JQ610675  3942 bp"), sniff_format(b"\\n>a\\nACGT"), sniff_format(b'{"otus"')
    ('genbank', 'fasta', 'json')
    """
    text = head.lstrip()
    if text.startswith(b"LOCUS"):
        return "genbank"
    if text.startswith(b">"):
        return "fasta"
    if text.startswith(b"{"):
        return "json"
    return None


def open_text(handle: IO[bytes]) -> IO[str]:
    """A text stream over ``handle``, decompressing gzip when the content starts with its magic."""
    buffered = cast(io.BufferedReader, handle if hasattr(handle, "peek") else io.BufferedReader(cast(Any, handle)))
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        return io.TextIOWrapper(gzip.GzipFile(fileobj=buffered, mode="rb"), encoding="latin-1")
    return io.TextIOWrapper(buffered, encoding="latin-1")


def read_records(handle: IO[bytes], name: str = "file") -> list[GenomeRecord]:
    """Every record of a GenBank or FASTA stream (plain or gzip), checked one by one."""
    text = open_text(handle)
    head = text.read(4096)
    kind = sniff_format(head.encode("latin-1"))
    if kind not in ("genbank", "fasta"):
        raise RecordError(f"{name} is not a GenBank or FASTA file; a reference upload may be {ACCEPTED_FORMATS}")
    stream = io.StringIO(head + text.read())
    parse = _genbank_records if kind == "genbank" else _fasta_records
    records = list(parse(stream))
    if not records:
        raise RecordError(f"{name} holds no records")
    _check_records(records)
    return records


def _genbank_records(stream: IO[str]) -> Iterator[GenomeRecord]:
    _check_origins(stream.getvalue() if isinstance(stream, io.StringIO) else "")
    try:
        for entry in SeqIO.parse(stream, "genbank"):
            yield _from_genbank(entry)
    except ValueError as error:
        if isinstance(error, RecordError):
            raise
        raise RecordError(f"GenBank file cannot be read: {error}") from error


def _check_origins(text: str) -> None:
    """Name the first record without a sequence section (Biopython only says the file ended early)."""
    for chunk in re.split(r"^//\s*$", text, flags=re.MULTILINE):
        locus = re.search(r"^LOCUS\s+(\S+)", chunk, re.MULTILINE)
        if locus and not re.search(r"^(ORIGIN|CONTIG)", chunk, re.MULTILINE):
            version = re.search(r"^VERSION\s+(\S+)", chunk, re.MULTILINE)
            name = version.group(1) if version else locus.group(1)
            raise RecordError(f"Record {name} has no sequence (no ORIGIN section)")


def _from_genbank(entry) -> GenomeRecord:
    accession = entry.id
    try:
        sequence = str(entry.seq)
    except UndefinedSequenceError:
        raise RecordError(f"Record {accession} has no sequence (no ORIGIN section)") from None
    source = next((feature for feature in entry.features if feature.type == "source"), None)
    qualifiers = source.qualifiers if source is not None else {}

    def first(key: str) -> str:
        return qualifiers.get(key, [""])[0].strip()

    organism = first("organism") or entry.annotations.get("organism", "")
    source_type, source_name = ("isolate", first("isolate")) if first("isolate") else ("strain", first("strain"))
    taxids = [int(m.group(1)) for ref in qualifiers.get("db_xref", []) if (m := _TAXON.match(ref))]
    return GenomeRecord(
        accession=accession,
        definition=entry.description.rstrip("."),
        organism=organism,
        sequence=sequence,
        source_type=source_type if source_name else "unknown",
        source_name=source_name,
        segment=first("segment") or None,
        host=first("host") or first("lab_host"),
        taxid=taxids[0] if taxids else None,
        molecule=_molecule(entry.annotations.get("molecule_type", ""), entry.annotations.get("topology", "")),
    )


def _molecule(molecule_type: str, _topology: str) -> str:
    """The reference schema's molecule name for a GenBank molecule type ("" when it cannot say).

    >>> _molecule("ss-RNA", ""), _molecule("DNA", ""), _molecule("RNA", "")
    ('ssRNA', 'dsDNA', '')
    """
    kind = molecule_type.replace("-", "").replace("mRNA", "RNA")
    return {"ssRNA": "ssRNA", "dsRNA": "dsRNA", "ssDNA": "ssDNA", "dsDNA": "dsDNA", "DNA": "dsDNA"}.get(kind, "")


def _fasta_records(stream: IO[str]) -> Iterator[GenomeRecord]:
    for entry in SeqIO.parse(stream, "fasta"):
        yield parse_definition(entry.id, entry.description[len(entry.id) :].strip(), str(entry.seq))


def parse_definition(accession: str, definition: str, sequence: str = "") -> GenomeRecord:
    """A record from an NCBI-style definition line (organism, isolate or strain, segment).

    >>> r = parse_definition("JQ610675.1", "Orungo virus isolate UGMP 359 segment 1, complete sequence")
    >>> r.organism, r.source_type, r.source_name, r.segment
    ('Orungo virus', 'isolate', 'UGMP 359', '1')
    >>> r = parse_definition("MH727576.1", "Pistacia emaravirus isolate 55 segment RNA5a p5 gene, complete cds")
    >>> r.organism, r.source_name, r.segment
    ('Pistacia emaravirus', '55', 'RNA5a')
    >>> parse_definition("AY184220.1", "Human poliovirus 2 strain Sabin 2, complete genome").source_name
    'Sabin 2'
    >>> parse_definition("KJ207374.1", "Tomato mosaic virus, complete genome").organism
    'Tomato mosaic virus'

    Definitions written with underscores for spaces are read the same way:

    >>> r = parse_definition("MH356245.1", "Measles_virus_genotype_D8_strain_MVi/Calcutta.IND/17.14_complete_genome")
    >>> r.organism, r.source_type, r.source_name
    ('Measles virus genotype D8', 'strain', 'MVi/Calcutta.IND/17.14')
    """
    if " " not in definition.strip():
        definition = definition.replace("_", " ")
    head = _TRAILING_DESCRIPTION.sub("", definition.split(",", 1)[0]).strip()
    cut = _QUALIFIER_WORDS.search(" " + head)
    organism = (" " + head)[: cut.start()].strip() if cut else head
    source = _SOURCE.search(head)
    segment = _SEGMENT.search(head)
    return GenomeRecord(
        accession=accession,
        definition=definition,
        organism=organism,
        sequence=sequence,
        source_type=source.group(1).lower() if source else "unknown",
        source_name=source.group(2).strip() if source else "",
        segment=segment.group(1) if segment else None,
    )


def _check_records(records: Iterable[GenomeRecord]) -> None:
    seen: set[str] = set()
    for record in records:
        if record.accession in seen:
            raise RecordError(f"Accession {record.accession} appears twice")
        seen.add(record.accession)
        if not record.sequence:
            raise RecordError(f"Record {record.accession} has an empty sequence")
        bad = _NOT_IUPAC.search(record.sequence)
        if bad:
            raise RecordError(
                f"Record {record.accession}: {bad.group()!r} at position {bad.start() + 1} "
                "is not an IUPAC nucleotide code"
            )


def read_mapping(handle: IO[str]) -> dict[str, dict[str, str]]:
    """``accession -> {otu, isolate, segment}`` from a CSV with those columns (empty cells ignored)."""
    reader = csv.DictReader(handle)
    columns = {name.strip().lower() for name in reader.fieldnames or []}
    if "accession" not in columns:
        raise RecordError("Mapping file needs an 'accession' column (and any of otu, isolate, segment)")
    mapping = {}
    for number, row in enumerate(reader, start=2):
        clean = {(key or "").strip().lower(): (value or "").strip() for key, value in row.items()}
        if not clean.get("accession"):
            raise RecordError(f"Mapping file line {number} has no accession")
        mapping[clean["accession"]] = {k: v for k, v in clean.items() if k in ("otu", "isolate", "segment") and v}
    return mapping


def read_mapping_file(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """The mapping of a CSV file, as :func:`read_mapping` reads it (a spreadsheet's byte-order mark is fine)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return read_mapping(handle)
    except (UnicodeDecodeError, csv.Error) as error:
        raise RecordError(f"Mapping file is not a UTF-8 CSV (accession, otu, isolate, segment): {error}") from None


def apply_mapping(records: list[GenomeRecord], mapping: dict[str, dict[str, str]]) -> list[GenomeRecord]:
    """Records with the mapping's OTU, isolate and segment where it names them.

    A mapping row may name an accession with or without its version.
    """
    mapped = []
    for record in records:
        row = mapping.get(record.accession) or mapping.get(record.accession.split(".")[0]) or {}
        changes: dict = {}
        if "otu" in row:
            changes["organism"] = row["otu"]
        if "isolate" in row:
            changes.update(source_type="isolate", source_name=row["isolate"])
        if "segment" in row:
            changes["segment"] = row["segment"]
        mapped.append(replace(record, **changes))
    return mapped


def _random_id() -> str:
    return "".join(secrets.choice(_ID_LETTERS) for _ in range(8))


def group_records(records: list[GenomeRecord], new_id: Callable[[], str] = _random_id) -> list[dict]:
    """OTU documents (``reference.json`` shape) grouping ``records`` by organism, isolate and segment.

    The first isolate of each OTU is its default. Segment names become the OTU's schema when any
    record names one.
    """
    otus: dict[str, dict] = {}
    for record in records:
        if not record.organism:
            raise RecordError(
                f"Record {record.accession} names no organism; give its OTU in a mapping file "
                "(CSV: accession, otu, isolate, segment)"
            )
        otu = otus.get(record.organism.casefold())
        if otu is None:
            otu = otus[record.organism.casefold()] = {
                "_id": new_id(),
                "name": record.organism,
                "abbreviation": "",
                "schema": [],
                "taxid": record.taxid,
                "isolates": [],
            }
        isolate = _isolate_for(otu, record, new_id)
        _check_segment_free(isolate, record)
        isolate["sequences"].append(
            {
                "_id": new_id(),
                "accession": record.accession,
                "definition": record.definition,
                "host": record.host,
                "segment": record.segment,
                "sequence": record.sequence,
            }
        )
        if record.segment and record.segment not in {segment["name"] for segment in otu["schema"]}:
            otu["schema"].append({"name": record.segment, "molecule": record.molecule, "required": True})
    return list(otus.values())


def _isolate_for(otu: dict, record: GenomeRecord, new_id: Callable[[], str]) -> dict:
    for isolate in otu["isolates"]:
        if (isolate["source_type"], isolate["source_name"]) == (record.source_type, record.source_name):
            return isolate
    isolate = {
        "id": new_id(),
        "source_type": record.source_type,
        "source_name": record.source_name,
        "default": not otu["isolates"],
        "sequences": [],
    }
    otu["isolates"].append(isolate)
    return isolate


def _check_segment_free(isolate: dict, record: GenomeRecord) -> None:
    taken = next((s for s in isolate["sequences"] if s["segment"] == record.segment), None)
    if taken is None:
        return
    what = f'segment "{record.segment}"' if record.segment else "the genome (no segment named)"
    raise RecordError(
        f"Records {taken['accession']} and {record.accession} are both {what} of one isolate "
        f'("{isolate["source_name"] or "unnamed"}"); name their isolates or segments in a mapping file'
    )


def reference_from_records(records: list[GenomeRecord], name: str | None = None) -> dict:
    """A ``reference.json``-shaped document holding ``records`` grouped into OTUs."""
    return {
        "data_type": "genome",
        "organism": "virus",
        "name": name,
        "created_at": None,
        "otus": group_records(records),
    }


def load_any_reference(
    path: str | os.PathLike, name: str | None = None, mapping: dict[str, dict[str, str]] | None = None
) -> dict:
    """A reference document from ``reference.json.gz``, a GenBank flat file or a FASTA (plain or
    gzip), recognised by content; problems raise ``ReferenceFileError`` saying what is accepted.

    ``mapping`` (from :func:`read_mapping`) settles the OTU, isolate and segment of GenBank or FASTA records.
    """
    try:
        with open(path, "rb") as handle:
            kind = sniff_format(open_text(handle).read(4096).encode("latin-1"))
    except (EOFError, gzip.BadGzipFile, zlib.error):
        kind = "json"  # a broken gzip stream: the reference file reader says what is wrong with it
    if kind == "json":
        if mapping:
            raise ReferenceFileError("invalid_format", "A mapping file applies to GenBank or FASTA records only")
        return load_reference_file(path)
    if kind is None:
        raise ReferenceFileError("invalid_format", f"The file is not one of: {ACCEPTED_FORMATS}")
    try:
        with open(path, "rb") as handle:
            records = read_records(handle, name or os.path.basename(path))
        return reference_from_records(apply_mapping(records, mapping or {}), name)
    except RecordError as error:
        raise ReferenceFileError("invalid_records", str(error)) from error
