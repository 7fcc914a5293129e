"""From a lab's own files to a report, with the command line alone: a reference from FASTA and
GenBank records, a sheet of samples, batch Pathoscope, then the diagnosis as CSV and XLSX and a
heatmap of every sample (README, "From your files to a report")."""

from __future__ import annotations

import csv
import io
import json
import shutil

import numpy as np
import pytest
from matplotlib.image import imread
from openpyxl import load_workbook

from ringspot.tasks import analyses, indexes, samples  # noqa: F401  (bind actors to the stub broker)

from ..conftest import DATA
from .conftest import ok

MEASLES = DATA / "samples" / "mev-d8-srr7517490"


@pytest.fixture
def succeed(cli):
    """Run a command that must succeed."""
    return lambda *args: ok(cli(*args))


def test_from_files_to_report(succeed, tmp_path):
    ref = json.loads(succeed("refs", "create", "--name", "Lab viruses").stdout)
    succeed("refs", "otus", "add", ref["id"], MEASLES / "MH356245.1.reference.fasta")
    succeed("refs", "otus", "add", ref["id"], DATA / "genbank" / "orungo_10segments.gb")
    assert json.loads(succeed("refs", "build", ref["id"]).stdout)["ready"] is True

    run = tmp_path / "run"
    run.mkdir()
    for path in (*MEASLES.glob("SRR*.fastq.gz"), DATA / "samples" / "glrav1-grapevine-125reads.fq.gz"):
        shutil.copy(path, run / path.name)
    (run / "sheet.csv").write_text(
        "name,reads_1,reads_2,library_type,labels\n"
        "Patient D8,SRR7517490_R1.fastq.gz,SRR7517490_R2.fastq.gz,normal,plate-7\n"
        "Grapevine,glrav1-grapevine-125reads.fq.gz,,normal,plate-7\n"
    )
    made = {s["name"]: s["id"] for s in json.loads(succeed("samples", "import", run / "sheet.csv").stdout)}

    analysis_ids = succeed("analyses", "create", "--label", "plate-7", "--ref", ref["id"]).stdout.split()
    assert len(analysis_ids) == 2
    succeed("analyses", "await", *analysis_ids)
    by_sample = {}
    for analysis_id in analysis_ids:
        analysis = json.loads(succeed("analyses", "get", analysis_id, "--format", "json").stdout)
        by_sample[analysis["sample"]["id"]] = analysis_id

    patient = by_sample[made["Patient D8"]]
    csv_path = tmp_path / "patient.csv"
    succeed("analyses", "export", patient, "--what", "csv", "--out", csv_path)
    lines = csv_path.read_text().splitlines()
    assert lines[0] == f"# sample: Patient D8 ({made['Patient D8']})"
    table = list(csv.DictReader(io.StringIO("\n".join(line for line in lines if not line.startswith("#")))))
    assert table[0]["virus"] == "Measles virus genotype D8" and table[0]["call"] == "detected"
    # Both mates count: the data README's plain bowtie2 run aligns 34,106 of the 40,540 reads.
    assert 30_000 < int(table[0]["reads"]) <= 40_540

    xlsx_path = tmp_path / "plate.xlsx"
    succeed("analyses", "report", "--label", "plate-7", "--ref", ref["id"], "--format", "xlsx", "--out", xlsx_path)
    sheet = load_workbook(xlsx_path).active
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    header = next(row for row in rows if row and row[0] == "virus")
    measles = next(row for row in rows if row and row[0] == "Measles virus genotype D8")
    calls = dict(zip(header, measles, strict=False))
    assert calls["Patient D8 call"] == "detected"
    assert calls["Grapevine call"] == "not_detected" and calls["Grapevine reads"] == 0

    png = tmp_path / "plate.png"
    succeed("analyses", "report", "--label", "plate-7", "--ref", ref["id"], "--format", "png", "--out", png)
    pixels = imread(png)
    assert pixels.shape[0] >= 150 and pixels.shape[1] >= 400
    assert np.std(pixels[..., :3]) > 0.05  # not a blank image
    svg = tmp_path / "plate.svg"
    succeed("analyses", "report", "--label", "plate-7", "--ref", ref["id"], "--format", "svg", "--out", svg)
    assert b"<svg" in svg.read_bytes()[:500] and b"Patient D8" in svg.read_bytes()
