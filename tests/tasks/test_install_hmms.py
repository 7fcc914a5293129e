"""install_hmms through a real worker on the real vFam sets: a good set is pressed once and
installed with its annotations; a corrupt profile file or annotations of another set end the
install in error, and the profiles installed before stay in use."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ringspot.core import hmms
from tests.common import upload, wait_finished
from tests.conftest import DATA

HMM7, HMM3 = DATA / "hmm" / "hmm7", DATA / "hmm" / "hmm3"
HMM7_CLUSTERS = [2, 3, 4, 5, 8, 9, 10]


def install(user, db, profiles: bytes, annotations: bytes, names=("profiles.hmm.gz", "annotations.json.gz")) -> dict:
    body = {
        "upload_id": upload(user, names[0], profiles, "hmm"),
        "annotations_upload_id": upload(user, names[1], annotations, "hmm"),
    }
    response = user.post("/api/hmms/status/updates", json=body)
    assert response.status_code == 202, response.json
    assert response.headers["Content-Location"] == f"/api/processes/{response.json['id']}"
    return wait_finished(db, response.json["id"])


def install_hmm7(user, db) -> dict:
    return install(user, db, (HMM7 / "profiles.hmm.gz").read_bytes(), (HMM7 / "annotations.json.gz").read_bytes())


@pytest.fixture
def worker(stub_worker):
    return stub_worker


def test_hmm7_installs_with_its_annotations_and_pressed_profiles(admin, db, settings, worker):
    assert not hmms.profiles_installed(db)
    process = install_hmm7(admin, db)
    assert process["state"] == "complete", process["error"]
    assert (process["type"], process["step"], process["progress"]) == ("install_hmms", "switch_profiles", 1)

    assert hmms.profiles_installed(db)
    status = admin.get("/api/hmms/status").json
    installed = status["installed"]
    assert status["updating"] is False and status["errors"] == []
    assert (installed["version"], installed["count"]) == (1, 7)
    assert installed["profiles"]["name"] == "profiles.hmm.gz"

    listed = admin.get("/api/hmms?per_page=100").json
    assert [doc["cluster"] for doc in listed["documents"]] == HMM7_CLUSTERS
    assert listed["found_count"] == 7 and listed["status"]["installed"]["id"] == installed["id"]
    rep = listed["documents"][0]
    assert rep["names"] == ["replication-associated protein", "replication associated protein", "Rep"]
    assert rep["hidden"] is False and "Begomovirus" in rep["genera"]

    folder = Path(settings.data_path) / "hmms" / installed["id"]
    for suffix in (".h3m", ".h3i", ".h3f", ".h3p"):  # pressed on the server, once
        assert (folder / f"profiles.hmm{suffix}").stat().st_size > 0
    with gzip.open(folder / "annotations.json.gz", "rt") as handle:
        assert {a["cluster"]: a["id"] for a in json.load(handle)} == {
            d["cluster"]: d["id"] for d in listed["documents"]
        }
    # The uploads were only lent to the install.
    assert db.uploads.count_documents({"type": "hmm", "reserved": True}) == 0


def test_plain_uploads_install_too(admin, db, worker):
    profiles = gzip.decompress((HMM3 / "profiles.hmm.gz").read_bytes())
    annotations = gzip.decompress((HMM3 / "annotations.json.gz").read_bytes())
    process = install(admin, db, profiles, annotations, names=("profiles.hmm", "annotations.json"))
    assert process["state"] == "complete", process["error"]
    assert [d["cluster"] for d in admin.get("/api/hmms").json["documents"]] == [10, 100, 1000]


def test_corrupt_profiles_fail_and_the_previous_set_stays_installed(admin, db, settings, worker):
    assert install_hmm7(admin, db)["state"] == "complete"
    before = admin.get("/api/hmms/status").json["installed"]

    text = gzip.decompress((HMM3 / "profiles.hmm.gz").read_bytes())
    truncated = text[: len(text) // 2]  # the second model never reaches its '//'
    process = install(admin, db, truncated, (HMM3 / "annotations.json.gz").read_bytes(), names=("p.hmm", "a.json.gz"))
    assert process["state"] == "error"
    assert process["step"] == "check_profiles"
    assert "does not end with '//'" in process["error"]

    status = admin.get("/api/hmms/status").json
    assert status["installed"] == before and status["updating"] is False
    assert "does not end with '//'" in status["errors"][0]
    assert [d["cluster"] for d in admin.get("/api/hmms?per_page=50").json["documents"]] == HMM7_CLUSTERS
    assert db.hmm.count_documents({}) == 7  # nothing of the failed set was left
    assert sorted(p.name for p in (Path(settings.data_path) / "hmms").iterdir()) == [before["id"]]


def test_profiles_that_are_not_hmmer_at_all_fail(admin, db, worker):
    process = install(admin, db, b"not a profile\n", (HMM7 / "annotations.json.gz").read_bytes(), names=("x", "y"))
    assert process["state"] == "error" and "HMMER3/" in process["error"]
    assert not hmms.profiles_installed(db)


def test_hmm3_annotations_with_hmm7_profiles_fail(admin, db, worker):
    process = install(admin, db, (HMM7 / "profiles.hmm.gz").read_bytes(), (HMM3 / "annotations.json.gz").read_bytes())
    assert process["state"] == "error"
    assert process["step"] == "check_annotations"
    assert process["error"] == "annotation for cluster 100 has no profile vFam_100"
    assert not hmms.profiles_installed(db)
    assert db.hmm.count_documents({}) == 0
    assert admin.get("/api/hmms/status").json["errors"] == [process["error"]]


def test_annotations_that_are_not_json_fail(admin, db, worker):
    process = install(admin, db, (HMM7 / "profiles.hmm.gz").read_bytes(), b"cluster,names\n2,Rep\n")
    assert process["state"] == "error" and "annotations are not readable JSON" in process["error"]


def test_a_second_install_replaces_the_first_and_keeps_its_annotations_hidden(admin, db, worker):
    assert install_hmm7(admin, db)["state"] == "complete"
    first = admin.get("/api/hmms?per_page=50").json["documents"]
    process = install(admin, db, (HMM3 / "profiles.hmm.gz").read_bytes(), (HMM3 / "annotations.json.gz").read_bytes())
    assert process["state"] == "complete", process["error"]

    status = admin.get("/api/hmms/status").json
    assert status["installed"]["version"] == 2
    assert [u["version"] for u in admin.get("/api/hmms/status/updates").json] == [1, 2]
    assert [d["cluster"] for d in admin.get("/api/hmms").json["documents"]] == [10, 100, 1000]
    # Finished analyses point at the old set's ids: those stay readable, hidden.
    old = admin.get(f"/api/hmms/{first[0]['id']}").json
    assert old["cluster"] == 2 and old["hidden"] is True
