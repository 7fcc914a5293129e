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
from click.testing import CliRunner
from matplotlib.image import imread
from openpyxl import load_workbook

from ringspot.cli import main
from ringspot.tasks import analyses, indexes, samples  # noqa: F401  (bind actors to the stub broker)

from ..conftest import DATA

MEASLES = DATA / "samples" / "mev-d8-srr7517490"


@pytest.fixture
def cli(admin, live_server, stub_worker, monkeypatch, tmp_path):
    monkeypatch.setenv("RINGSPOT_URL", live_server)
    monkeypatch.setenv("RINGSPOT_API_KEY", f"admin:{admin.key}")
    monkeypatch.setenv("RINGSPOT_CONFIG", str(tmp_path / "none.json"))

    def invoke(*args):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    return invoke


def test_from_files_to_report(cli, tmp_path):
    ref = json.loads(cli("refs", "create", "--name", "Lab viruses").stdout)
    cli("refs", "otus", "add", ref["id"], MEASLES / "MH356245.1.reference.fasta")
    cli("refs", "otus", "add", ref["id"], DATA / "genbank" / "orungo_10segments.gb")
    assert json.loads(cli("refs", "build", ref["id"]).stdout)["ready"] is True

    run = tmp_path / "run"
    run.mkdir()
    for path in (*MEASLES.glob("SRR*.fastq.gz"), DATA / "samples" / "glrav1-grapevine-125reads.fq.gz"):
        shutil.copy(path, run / path.name)
    (run / "sheet.csv").write_text(
        "name,reads_1,reads_2,library_type,labels\n"
        "Patient D8,SRR7517490_R1.fastq.gz,SRR7517490_R2.fastq.gz,normal,plate-7\n"
        "Grapevine,glrav1-grapevine-125reads.fq.gz,,normal,plate-7\n"
    )
    made = {s["name"]: s["id"] for s in json.loads(cli("samples", "import", run / "sheet.csv").stdout)}

    analysis_ids = cli("analyses", "create", "--label", "plate-7", "--ref", ref["id"]).stdout.split()
    assert len(analysis_ids) == 2
    cli("analyses", "await", *analysis_ids)
    by_sample = {}
    for analysis_id in analysis_ids:
        analysis = json.loads(cli("analyses", "get", analysis_id, "--format", "json").stdout)
        by_sample[analysis["sample"]["id"]] = analysis_id

    patient = by_sample[made["Patient D8"]]
    csv_path = tmp_path / "patient.csv"
    cli("analyses", "export", patient, "--what", "csv", "--out", csv_path)
    lines = csv_path.read_text().splitlines()
    assert lines[0] == f"# sample: Patient D8 ({made['Patient D8']})"
    table = list(csv.DictReader(io.StringIO("\n".join(line for line in lines if not line.startswith("#")))))
    assert table[0]["virus"] == "Measles virus genotype D8" and table[0]["call"] == "detected"
    # Both mates count: the data README's plain bowtie2 run aligns 34,106 of the 40,540 reads.
    assert 30_000 < int(table[0]["reads"]) <= 40_540

    xlsx_path = tmp_path / "plate.xlsx"
    cli("analyses", "report", "--label", "plate-7", "--ref", ref["id"], "--format", "xlsx", "--out", xlsx_path)
    sheet = load_workbook(xlsx_path).active
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    header = next(row for row in rows if row and row[0] == "virus")
    measles = next(row for row in rows if row and row[0] == "Measles virus genotype D8")
    calls = dict(zip(header, measles, strict=False))
    assert calls["Patient D8 call"] == "detected"
    assert calls["Grapevine call"] == "not_detected" and calls["Grapevine reads"] == 0

    png = tmp_path / "plate.png"
    cli("analyses", "report", "--label", "plate-7", "--ref", ref["id"], "--format", "png", "--out", png)
    pixels = imread(png)
    assert pixels.shape[0] >= 150 and pixels.shape[1] >= 400
    assert np.std(pixels[..., :3]) > 0.05  # not a blank image
    svg = tmp_path / "plate.svg"
    cli("analyses", "report", "--label", "plate-7", "--ref", ref["id"], "--format", "svg", "--out", svg)
    assert b"<svg" in svg.read_bytes()[:500] and b"Patient D8" in svg.read_bytes()
