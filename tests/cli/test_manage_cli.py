"""Every resource from the command line, against a running server: references from GenBank and
FASTA records, subtractions, HMM profiles, jobs, users and keys."""

from __future__ import annotations

import gzip
import json

import pytest
from click.testing import CliRunner

from ringspot.cli import main
from ringspot.tasks import hmms, references, subtractions  # noqa: F401  (bind actors to the stub broker)

from ..conftest import DATA
from .conftest import ok

GENBANK = DATA / "genbank"


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("ringspot, version ")


def test_a_reference_from_genbank_and_fasta_records(cli, tmp_path):
    ref = json.loads(ok(cli("refs", "create", "--name", "Segmented")).stdout)

    added = json.loads(ok(cli("refs", "otus", "add", ref["id"], GENBANK / "orungo_10segments.gb")).stdout)
    assert len(added) == 10 and {row["otu"] for row in added} == {"Orungo virus"}
    added = json.loads(ok(cli("refs", "otus", "add", ref["id"], GENBANK / "plant_PiVB_8segments.fasta")).stdout)
    assert {row["isolate"] for row in added} == {"55"}
    # A second isolate of a virus already there joins its OTU.
    ok(cli("refs", "otus", "add", ref["id"], GENBANK / "plant_SCYLV_KF680098.1.gb"))
    ok(cli("refs", "otus", "add", ref["id"], GENBANK / "plant_SCYLV_MH058008.1.gb"))

    otus = json.loads(ok(cli("refs", "otus", "list", ref["id"], "--format", "json")).stdout)
    assert sorted(otu["name"] for otu in otus) == ["Orungo virus", "Pistacia emaravirus", "Sugarcane yellow leaf virus"]

    out = tmp_path / "segmented.json.gz"
    ok(cli("refs", "export", ref["id"], "--out", out))
    exported = {otu["name"]: otu for otu in json.loads(gzip.decompress(out.read_bytes()))["otus"]}
    orungo = exported["Orungo virus"]
    assert [segment["name"] for segment in orungo["schema"]] == [str(n) for n in range(1, 11)]
    assert len(orungo["isolates"][0]["sequences"]) == 10
    scylv = exported["Sugarcane yellow leaf virus"]["isolates"]
    assert sorted(isolate["source_name"] for isolate in scylv) == ["CBLK97154", "FL86"]


@pytest.mark.parametrize("name", ["orungo_10segments.gb", "orungo_10segments.fasta"])
def test_refs_import_takes_genbank_and_fasta(cli, name):
    ref = json.loads(ok(cli("refs", "import", GENBANK / name, "--name", "Orungo")).stdout)
    assert ref["otu_count"] == 1
    otus = json.loads(ok(cli("refs", "otus", "list", ref["id"], "--format", "json")).stdout)
    assert [otu["name"] for otu in otus] == ["Orungo virus"]


def test_a_record_without_sequence_is_named(cli, tmp_path):
    ref = json.loads(ok(cli("refs", "create", "--name", "Bad")).stdout)
    text = (GENBANK / "plant_YMV_U42596.1.gb").read_text()
    broken = tmp_path / "broken.gb"
    broken.write_text(text[: text.index("ORIGIN")] + "//\n")
    result = cli("refs", "otus", "add", ref["id"], broken)
    assert result.exit_code == 1 and "U42596.1 has no sequence" in result.output
    assert json.loads(ok(cli("refs", "otus", "list", ref["id"], "--format", "json")).stdout) == []


def test_subtractions(cli):
    created = json.loads(ok(cli("subtractions", "create", DATA / "subtraction" / "host.fa", "--name", "Host")).stdout)
    assert created["ready"] is True
    listed = json.loads(ok(cli("subtractions", "list", "--format", "json")).stdout)
    assert [s["id"] for s in listed] == [created["id"]]
    assert "Host" in ok(cli("subtractions", "get", created["id"])).stdout
    ok(cli("subtractions", "remove", created["id"]))
    assert cli("subtractions", "get", created["id"]).exit_code == 1


def test_hmm_profiles(cli):
    folder = DATA / "hmm" / "hmm3"
    status = json.loads(ok(cli("hmms", "install", folder / "profiles.hmm.gz", folder / "annotations.json.gz")).stdout)
    assert status["installed"]
    assert "installed" in ok(cli("hmms", "status")).stdout


def test_jobs_users_and_keys(cli):
    ok(cli("subtractions", "create", DATA / "subtraction" / "host.fa", "--name", "Host"))
    jobs = json.loads(ok(cli("jobs", "list", "--format", "json")).stdout)
    assert [job["workflow"] for job in jobs] == ["create_subtraction"] and jobs[0]["state"] == "complete"
    shown = ok(cli("jobs", "get", jobs[0]["id"])).stdout
    assert "create_subtraction" in shown and "bowtie_build" in shown and "Build the Bowtie2 index" in shown

    ok(cli("users", "create", "lab-tech", input="a long passphrase 42\na long passphrase 42\n"))
    assert "lab-tech" in ok(cli("users", "list")).stdout
    ok(cli("users", "remove", "lab-tech"))
    assert "lab-tech" not in ok(cli("users", "list")).stdout

    secret = ok(cli("keys", "create", "scripts")).stdout.strip()
    assert len(secret) >= 16
    keys = json.loads(ok(cli("keys", "list", "--format", "json")).stdout)
    key = next(k for k in keys if k["name"] == "scripts")
    assert secret not in json.dumps(keys)
    ok(cli("keys", "remove", key["id"]))
    assert "scripts" not in ok(cli("keys", "list")).stdout
