"""Sample sheets: a CSV of samples and their read files, checked whole before anything is sent.

Columns: ``name, reads_1, reads_2, library_type, host, isolate, locale, labels, subtractions``
(``reads_2``, and everything after it, may be empty; ``labels`` and ``subtractions`` are
separated by ``;``). Paths are relative to the sheet.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

LIBRARY_TYPES = ("normal", "srna", "amplicon")
REQUIRED_COLUMNS = ("name", "reads_1")
KNOWN_COLUMNS = (*REQUIRED_COLUMNS, "reads_2", "library_type", "host", "isolate", "locale", "labels", "subtractions")


class SheetError(ValueError):
    """Every problem of a sheet, one per line, each with its row."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class SheetRow:
    row: int
    name: str
    reads: list[Path]
    library_type: str = "normal"
    host: str = ""
    isolate: str = ""
    locale: str = ""
    labels: list[str] = field(default_factory=list)
    subtractions: list[str] = field(default_factory=list)

    def body(self, upload_ids: list[str]) -> dict:
        """The ``POST /api/samples`` body for this row once its files are uploaded."""
        return {
            "name": self.name,
            "files": upload_ids,
            "library_type": self.library_type,
            "host": self.host,
            "isolate": self.isolate,
            "locale": self.locale,
            "labels": self.labels,
            "subtractions": self.subtractions,
        }


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


def read_sheet(path: Path) -> list[SheetRow]:
    """The sheet's rows, or :class:`SheetError` listing every problem found in it.

    Checks: required columns, empty names, duplicate names, missing read files, a second read
    file equal to the first, and library types other than normal, srna and amplicon.
    """
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [(name or "").strip().lower() for name in reader.fieldnames or []]
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise SheetError(
                [f"{path.name}: missing column(s) {', '.join(missing)}; columns: {', '.join(KNOWN_COLUMNS)}"]
            )
        raw_rows = [
            {(key or "").strip().lower(): (value or "").strip() for key, value in raw.items()} for raw in reader
        ]
    problems: list[str] = []
    rows: list[SheetRow] = []
    first_row_of: dict[str, int] = {}
    for number, raw in enumerate(raw_rows, start=2):  # row 1 is the header
        row = _read_row(number, raw, path.parent, problems)
        if row is None:
            continue
        earlier = first_row_of.setdefault(row.name.casefold(), number)
        if earlier != number:
            problems.append(f"row {number}: name {row.name!r} is already used in row {earlier}")
        rows.append(row)
    if not rows and not problems:
        problems.append(f"{path.name}: no samples listed")
    if problems:
        raise SheetError(problems)
    return rows


def _read_row(number: int, raw: dict[str, str], folder: Path, problems: list[str]) -> SheetRow | None:
    before = len(problems)
    name = raw.get("name", "")
    if not name:
        problems.append(f"row {number}: no sample name")
    library_type = raw.get("library_type") or "normal"
    if library_type not in LIBRARY_TYPES:
        problems.append(f"row {number}: library type {library_type!r} is not one of {', '.join(LIBRARY_TYPES)}")
    reads = [folder / raw[column] for column in ("reads_1", "reads_2") if raw.get(column)]
    if not reads:
        problems.append(f"row {number}: no reads_1 file")
    for path in reads:
        if not path.is_file():
            problems.append(f"row {number}: read file {path} does not exist")
    if len(reads) == 2 and reads[0].resolve() == reads[1].resolve():
        problems.append(f"row {number}: reads_1 and reads_2 are the same file")
    if len(problems) > before:
        return None
    return SheetRow(
        row=number,
        name=name,
        reads=reads,
        library_type=library_type,
        host=raw.get("host", ""),
        isolate=raw.get("isolate", ""),
        locale=raw.get("locale", ""),
        labels=_split(raw.get("labels", "")),
        subtractions=_split(raw.get("subtractions", "")),
    )
