"""`ringspot samples upload --library-type srna` and `samples quality` on the real citrus lane: the kit's
adapter is named and what trimming left is printed."""

from __future__ import annotations

import gzip
import re

import pytest
from click.testing import CliRunner

from ringspot.cli import main
from ringspot.tasks import samples  # noqa: F401  (binds the actor to the stub broker)

from ..conftest import DATA

LANE = DATA / "samples" / "ctv-srna-qiaseq-lane1" / "reads.fastq.gz"


@pytest.fixture
def cli(admin, live_server, stub_worker, monkeypatch, tmp_path):
    monkeypatch.setenv("RINGSPOT_URL", live_server)
    monkeypatch.setenv("RINGSPOT_API_KEY", f"admin:{admin.key}")
    monkeypatch.setenv("RINGSPOT_CONFIG", str(tmp_path / "none.json"))
    return lambda *args: CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_small_rna_quality_shows_the_adapter_and_what_trimming_left(cli, tmp_path):
    reads = tmp_path / "lane.fq.gz"
    with gzip.open(LANE, "rt") as source, gzip.open(reads, "wt") as target:
        target.write("".join(source.readline() for _ in range(4 * 3000)))
    uploaded = cli("samples", "upload", reads, "--name", "citrus", "--library-type", "srna")
    assert uploaded.exit_code == 0, uploaded.output
    sample_id = re.search(r'"id": "([a-z0-9]{8})"', uploaded.output).group(1)
    shown = cli("samples", "quality", sample_id)
    assert shown.exit_code == 0, shown.output
    assert "adapter: AACTGTAGGCACCATCAAT (QIAseq miRNA); reads in 3000" in shown.output
    assert re.search(r"commonest lengths after trimming: (21|24) nt", shown.output)
    assert "warning:" not in shown.output


def test_an_adapter_that_is_not_dna_is_refused(cli, tmp_path):
    reads = tmp_path / "lane.fq.gz"
    with gzip.open(LANE, "rt") as source, gzip.open(reads, "wt") as target:
        target.write("".join(source.readline() for _ in range(40)))
    refused = cli("samples", "upload", reads, "--name", "x", "--library-type", "srna", "--adapter", "TGGAAUUC")
    assert refused.exit_code != 0
    assert "adapter" in refused.output and "A, C, G, T and N" in refused.output
