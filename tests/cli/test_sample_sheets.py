"""`ringspot samples import SHEET.csv`: the whole sheet is checked first, then every sample is made;
a second run skips what exists."""

from __future__ import annotations

import json
import shutil

import pytest

from ringspot.cli.sheets import SheetError, read_sheet
from ringspot.tasks import samples  # noqa: F401  (binds the actor to the stub broker)

from ..conftest import DATA

GRAPEVINE = DATA / "samples" / "glrav1-grapevine-125reads.fq.gz"
PAIRED = DATA / "samples" / "example-paired-50bp"
HEADER = "name,reads_1,reads_2,library_type,host,isolate,locale,labels,subtractions\n"


@pytest.fixture
def reads_folder(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(GRAPEVINE, folder / "grapevine.fq.gz")
    return folder


def write_sheet(folder, rows: str):
    sheet = folder / "sheet.csv"
    sheet.write_text(HEADER + rows)
    return sheet


def test_every_bad_row_is_listed(reads_folder):
    sheet = write_sheet(
        reads_folder,
        "Vine A,grapevine.fq.gz,,normal,,,,,\n"
        "Vine A,grapevine.fq.gz,,normal,,,,,\n"
        "Vine B,missing.fq.gz,,normal,,,,,\n"
        "Vine C,grapevine.fq.gz,,rna-seq,,,,,\n",
    )
    with pytest.raises(SheetError) as raised:
        read_sheet(sheet)
    assert raised.value.problems == [
        "row 3: name 'Vine A' is already used in row 2",
        f"row 4: read file {reads_folder / 'missing.fq.gz'} does not exist",
        "row 5: library type 'rna-seq' is not one of normal, srna, amplicon",
    ]


def test_a_bad_sheet_uploads_nothing(cli, reads_folder, admin):
    sheet = write_sheet(reads_folder, "Vine A,grapevine.fq.gz,,normal,,,,,\nVine B,nothere.fq.gz,,normal,,,,,\n")
    result = cli("samples", "import", sheet)
    assert result.exit_code == 1
    assert "row 3: read file" in result.output and "nothing was uploaded" in result.output
    assert cli("samples", "import", write_sheet(reads_folder, "")).exit_code == 1
    uploads = admin.get("/api/uploads").get_json()
    assert uploads["found_count"] == 0


def test_a_sheet_creates_its_samples_and_resumes(cli, reads_folder):
    for name in ("reads_1.fq.gz", "reads_2.fq.gz"):
        shutil.copy(PAIRED / name, reads_folder / name)
    sheet = write_sheet(
        reads_folder,
        "Vine A,grapevine.fq.gz,,normal,Vitis vinifera,,Canada,field;2026,\n"
        "Paired,reads_1.fq.gz,reads_2.fq.gz,normal,,,,,\n",
    )
    result = cli("samples", "import", sheet)
    assert result.exit_code == 0, result.output
    created = {sample["name"]: sample["id"] for sample in json.loads(result.stdout)}
    assert set(created) == {"Vine A", "Paired"}

    vine = json.loads(cli("samples", "get", created["Vine A"], "--format", "json").stdout)
    assert vine["ready"] is True and vine["host"] == "Vitis vinifera" and vine["labels"] == ["field", "2026"]
    assert vine["quality"]["count"] == 125
    assert json.loads(cli("samples", "get", created["Paired"], "--format", "json").stdout)["paired"] is True

    again = cli("samples", "import", sheet)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == []
    assert "skipping Paired" in again.stderr and "skipping Vine A" in again.stderr
