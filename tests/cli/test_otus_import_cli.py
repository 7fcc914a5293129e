"""``ringspot refs import --mapping`` and ``ringspot refs otus import``: server-side imports of
GenBank and FASTA records, followed to their end."""

from __future__ import annotations

import json

from ringspot.tasks import references  # noqa: F401  (binds the reference actors to the stub broker)

from .conftest import ok
from .test_manage_cli import GENBANK


def otu_names(cli, ref_id: str) -> list[str]:
    return sorted(otu["name"] for otu in json.loads(ok(cli("refs", "otus", "list", ref_id, "--format", "json")).stdout))


def test_refs_import_with_a_mapping_then_otus_import(cli, tmp_path):
    mapping = tmp_path / "mapping.csv"
    mapping.write_text("accession,otu\nKF680098.1,SCYLV\n")
    ref = json.loads(ok(cli("refs", "import", GENBANK / "plant_SCYLV_KF680098.1.gb", "--mapping", mapping)).stdout)
    assert otu_names(cli, ref["id"]) == ["SCYLV"]

    mapping.write_text("accession,otu\nMH058008.1,scylv\n")
    result = ok(cli("refs", "otus", "import", ref["id"], GENBANK / "plant_SCYLV_MH058008.1.gb", "--mapping", mapping))
    process = json.loads(result.stdout)
    assert process["state"] == "complete" and process["type"] == "import_records"
    ok(cli("refs", "otus", "import", ref["id"], GENBANK / "plant_YMV_U42596.1.gb"))
    assert otu_names(cli, ref["id"]) == ["SCYLV", "Yam mosaic virus"]

    # A record the reference holds already: exit 1 naming it.
    result = cli("refs", "otus", "import", ref["id"], GENBANK / "plant_YMV_U42596.1.gb")
    assert result.exit_code == 1 and "Accession U42596.1 is already in the reference" in result.output
