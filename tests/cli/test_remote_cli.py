"""The newcomer's path with the CLI alone, against a running server: import a reference, build
it, upload a sample (with a progress bar), run and await a Pathoscope analysis, read the table."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ringspot.cli import main
from ringspot.tasks import analyses, indexes, references, samples  # noqa: F401  (bind actors to the stub broker)

from ..conftest import DATA

SMALL_REFERENCE = DATA / "reference" / "example-20otus.reference.json.gz"
GRAPEVINE_READS = DATA / "samples" / "glrav1-grapevine-125reads.fq.gz"


def test_reference_sample_and_analysis_with_the_cli(cli):
    result = cli("refs", "import", SMALL_REFERENCE, "--name", "Example")
    assert result.exit_code == 0, result.output
    ref = json.loads(result.stdout)
    assert ref["otu_count"] == 20

    result = cli("refs", "build", ref["id"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ready"] is True

    result = cli("samples", "upload", GRAPEVINE_READS, "--name", "Grapevine")
    assert result.exit_code == 0, result.output
    sample = json.loads(result.stdout)
    assert sample["ready"] is True and sample["reads"] == 125 and sample["paired"] is False

    result = cli("analyses", "create", sample["id"], "--ref", ref["id"])
    assert result.exit_code == 0, result.output
    analysis_id = result.stdout.strip()
    result = cli("analyses", "await", analysis_id)
    assert result.exit_code == 0, result.output
    result = cli("analyses", "get", analysis_id, "--format", "json")
    assert json.loads(result.stdout)["ready"] is True
    table = cli("analyses", "get", analysis_id).stdout
    assert "Pathoscope" in table

    listed = cli("processes", "list").stdout
    for process_type in ("import_reference", "build_index", "create_sample", "pathoscope_bowtie"):
        assert process_type in listed


def test_processes_show_prints_the_steps_with_what_each_does(cli):
    ref = json.loads(cli("refs", "import", SMALL_REFERENCE, "--name", "Steps").stdout)
    result = cli("processes", "show", ref["process"]["id"])
    assert result.exit_code == 0, result.output
    assert "import_reference  complete  100%  step create_history" in result.stdout
    rows = [line for line in result.stdout.splitlines() if "done" in line]
    names = [row.replace("│", " ").split()[2] for row in rows]
    assert names == ["load_file", "validate", "set_metadata", "import_otus", "create_history"]
    assert "Check the file's schema" in result.stdout


def test_api_errors_are_one_line_and_exit_1(cli):
    result = cli("analyses", "get", "nothere")
    assert result.exit_code == 1
    assert "404" in result.output and "Traceback" not in result.output


def test_missing_key_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("RINGSPOT_API_KEY", raising=False)
    monkeypatch.setenv("RINGSPOT_CONFIG", str(tmp_path / "none.json"))
    result = CliRunner().invoke(main, ["processes", "list"])
    assert result.exit_code == 1 and "no API key" in result.output


def diagnosed_analysis(db, settings) -> str:
    """A finalized Pathoscope analysis of a real sample document, with a three-row diagnosis."""
    from ringspot.core.utils import new_id, now

    from ..analyses_data import GLRAV1_READS, insert_sample

    sample = insert_sample(db, settings.data_path, GLRAV1_READS)
    rows = [
        {
            "id": otu_id,
            "name": name,
            "abbreviation": abbreviation,
            "call": call,
            "reasons": reasons,
            "pi": pi,
            "reads": reads,
            "breadth": breadth,
            "evenness": 0.9,
            "mean_depth": 1.25,
            "median_depth": 1.0,
            "segments": {"covered": 1, "total": 1},
            "isolate": {"id": "i1", "source_name": "Tn"},
        }
        for otu_id, name, abbreviation, call, reasons, pi, reads, breadth in (
            ("o1", "Citrus tristeza virus", "CTV", "detected", ["reads 323 >= 50"], 0.8, 323, 0.117),
            ("o2", "Citrus vein enation virus", "CVEV", "possible", ["reads 36 < 50"], 0.1, 36, 0.099),
            ("o3", "Jasmine virus T", "", "not_detected", ["reads 0 < 2"], 0.0, 0, 0.0),
        )
    ]
    analysis_id = new_id()
    db.analyses.insert_one(
        {
            "_id": analysis_id,
            "workflow": "pathoscope_bowtie",
            "algorithm": "pathoscope_bowtie",
            "ready": True,
            "created_at": now(),
            "job": {"id": new_id()},
            "sample": {"id": sample["_id"], "name": sample["name"]},
            "index": {"id": "x", "version": 0},
            "reference": {"id": "r", "name": "Plant viruses"},
            "subtractions": [],
            "user": {"id": "admin"},
            "results": {"read_count": 405, "subtracted_count": 0, "hits": []},
            "diagnosis": rows,
            "files": [],
        }
    )
    return analysis_id


def test_analysis_table_is_the_diagnosis_and_hides_otus_without_reads(cli, db, settings, monkeypatch):
    from ringspot.cli import remote

    monkeypatch.setattr(remote.console, "width", 250)  # a wide terminal: one table row per line
    analysis_id = diagnosed_analysis(db, settings)
    lines = cli("analyses", "get", analysis_id).stdout.splitlines()
    ctv = next(line for line in lines if "Citrus tristeza virus" in line)
    assert "detected" in ctv and "323" in ctv and "11.7 %" in ctv and "reads 323 >= 50" in ctv
    cvev = next(line for line in lines if "Citrus vein enation" in line)
    assert "possible" in cvev and "9.9 %" in cvev
    assert lines.index(ctv) < lines.index(cvev)
    assert not any("Jasmine virus T" in line for line in lines)
    everything = cli("analyses", "get", analysis_id, "--all-otus").stdout
    assert "Jasmine virus T" in everything and "not_detected" in everything
