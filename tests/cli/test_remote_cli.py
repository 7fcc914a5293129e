"""The newcomer's path with the CLI alone, against a running server: import a reference, build
it, upload a sample (with a progress bar), run and await a Pathoscope analysis, read the table."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ringspot.cli import main
from ringspot.tasks import analyses, indexes, references, samples  # noqa: F401  (bind actors to the stub broker)

from ..conftest import DATA

SMALL_REFERENCE = DATA / "reference" / "example-20otus.reference.json.gz"
GRAPEVINE_READS = DATA / "samples" / "glrav1-grapevine-125reads.fq.gz"


@pytest.fixture
def cli(admin, live_server, stub_worker, monkeypatch, tmp_path):
    monkeypatch.setenv("RINGSPOT_URL", live_server)
    monkeypatch.setenv("RINGSPOT_API_KEY", f"admin:{admin.key}")
    monkeypatch.setenv("RINGSPOT_CONFIG", str(tmp_path / "none.json"))

    def invoke(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


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


def test_api_errors_are_one_line_and_exit_1(cli):
    result = cli("analyses", "get", "nothere")
    assert result.exit_code == 1
    assert "404" in result.output and "Traceback" not in result.output


def test_missing_key_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("RINGSPOT_API_KEY", raising=False)
    monkeypatch.setenv("RINGSPOT_CONFIG", str(tmp_path / "none.json"))
    result = CliRunner().invoke(main, ["processes", "list"])
    assert result.exit_code == 1 and "no API key" in result.output
