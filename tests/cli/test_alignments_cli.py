"""``ringspot alignments create|await|get|list|plot`` against a running server (``live_server`` and an
in-thread worker), configured as a user would: ``RINGSPOT_URL`` and ``RINGSPOT_API_KEY=user:key``."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib import image as mpimg

from ringspot.cli import main
from ringspot.tasks import alignments as alignment_tasks  # noqa: F401  (binds the actor to the stub broker)

from ..analyses_data import (
    RPRSV_READS,
    insert_otus,
    insert_reference,
    insert_sample,
    load_otus,
)

RPRSV, NC_005266 = "9fe2f60d", "o6g9f7oq"


@pytest.fixture(scope="module")
def rprsv_otu():
    return next(otu for otu in load_otus() if otu["_id"] == RPRSV)


@pytest.fixture
def cli(db, settings, admin, rprsv_otu, live_server, stub_worker, monkeypatch):
    """Run ``ringspot ...`` as the administrator against the live server."""
    monkeypatch.setenv("RINGSPOT_URL", live_server)
    monkeypatch.setenv("RINGSPOT_API_KEY", f"admin:{admin.key}")

    def invoke(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def world(db, settings, rprsv_otu):
    reference = insert_reference(db)
    insert_otus(db, reference["_id"], [rprsv_otu])
    return {"reference": reference, "sample": insert_sample(db, settings.data_path, RPRSV_READS)}


def test_create_await_get_and_plot(cli, world, tmp_path):
    result = cli(
        "alignments", "create", world["sample"]["_id"], "--accession", "NC_005266", "--ref", world["reference"]["_id"]
    )
    assert result.exit_code == 0, result.output
    alignment_id = result.stdout.strip()
    assert len(alignment_id) == 8

    result = cli("alignments", "await", alignment_id)
    assert result.exit_code == 0, result.output
    assert f"alignment {alignment_id} is complete:" in result.stdout and "reads mapped to NC_005266" in result.stdout

    result = cli("alignments", "get", alignment_id, "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["$uri"] == f"/api/alignments/{alignment_id}" and document["success"] is True
    stats = document["statistics"]
    assert stats["mapped_reads"] > 3000

    result = cli("alignments", "get", alignment_id)
    assert result.exit_code == 0, result.output
    assert f"{stats['mapped_reads']:,}" in result.stdout and f"{stats['breadth']:.2%}" in result.stdout

    result = cli("alignments", "list", "--sample", world["sample"]["_id"])
    assert result.exit_code == 0 and alignment_id in result.stdout and "complete" in result.stdout

    out = tmp_path / "rprsv.png"
    result = cli("alignments", "plot", alignment_id, "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)  # only the path: `open $(ringspot alignments plot ID)`
    pixels = mpimg.imread(out)
    assert pixels.shape[:2] == (300, 1000)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)) > 1
    svg = tmp_path / "rprsv.svg"
    assert cli("alignments", "plot", alignment_id, "--out", svg).exit_code == 0
    assert "NC_005266 · breadth" in svg.read_text()


def test_await_exits_1_with_the_reason_when_the_alignment_fails(cli, db, settings, world, tmp_path):
    broken = tmp_path / "broken.fq.gz"
    broken.write_bytes(gzip.compress(b"@r1\nACGT\n+\nII\n"))
    sample = insert_sample(db, settings.data_path, [broken])
    alignment_id = cli("alignments", "create", sample["_id"], "--sequence", NC_005266).stdout.strip()
    result = cli("alignments", "await", alignment_id)
    assert result.exit_code == 1
    assert f"Error: alignment {alignment_id} failed: The alignment job failed: bowtie2" in result.output
    result = cli("alignments", "plot", alignment_id, "--out", tmp_path / "none.png")
    assert result.exit_code == 1 and "has no plot" in result.output
    assert not (tmp_path / "none.png").exists()


def test_bad_input_is_a_one_line_error(cli, world):
    result = cli(
        "alignments", "create", world["sample"]["_id"], "--accession", "NC_999999", "--ref", world["reference"]["_id"]
    )
    assert result.exit_code == 1
    assert "400 No sequence with accession NC_999999 in the reference" in result.output
    result = cli("alignments", "create", world["sample"]["_id"], "--accession", "NC_005266")
    assert result.exit_code == 2 and "--accession needs --ref" in result.output
    result = cli("alignments", "create", world["sample"]["_id"])
    assert result.exit_code == 2 and "give --sequence ID, or --accession ACC with --ref REF" in result.output
    result = cli("alignments", "get", "nothere")
    assert result.exit_code == 1 and "404 Not found" in result.output
