"""History: changes with diffs, older versions rebuilt from them, and reverting unbuilt changes."""

from __future__ import annotations

import pytest

from ringspot.core.otus import get_joined_otu, patch_otu_to_version, patch_with_history
from ringspot.core.utils import to_json
from tests.reference_helpers import CHANGE_FIELDS, add_otu, create_ref

RIGHTS = ("build", "modify", "modify_otu", "remove")


@pytest.fixture
def ref(admin):
    return create_ref(admin, name="Plant Viruses")


@pytest.fixture
def otu(admin, ref):
    return add_otu(admin, ref["id"])


def build(db, ref_id, index_id="idx", version=0):
    """What an index build does to history: tag every unbuilt change of the reference."""
    db.history.update_many(
        {"reference.id": ref_id, "index.id": "unbuilt"}, {"$set": {"index": {"id": index_id, "version": version}}}
    )


def test_get_change_includes_the_diff(admin, otu):
    response = admin.get(f"/api/history/{otu['id']}.1")
    assert response.status_code == 200
    change = response.json
    assert set(change) == CHANGE_FIELDS | {"diff"}
    assert change["method_name"] == "add_isolate" and change["otu"]["version"] == 1
    assert ["change", "version", [0, 1]] in change["diff"]
    created = admin.get(f"/api/history/{otu['id']}.0").json
    assert created["method_name"] == "create" and created["diff"]["name"] == "Foo virus"
    assert admin.get("/api/history/nothere.0").status_code == 404


def test_find_all_history_newest_first_and_visible_only(admin, make_user, ref, otu):
    public = create_ref(admin, name="Public", public=True)
    other = add_otu(admin, public["id"], name="Public virus", abbreviation="PV")
    body = admin.get("/api/history").json
    assert body["total_count"] == 6
    assert body["documents"][0]["otu"]["id"] == other["id"]
    assert "diff" not in body["documents"][0]
    seen = {d["reference"]["id"] for d in make_user("reader").get("/api/history").json["documents"]}
    assert seen == {public["id"]}


def test_read_access_is_needed(make_user, otu):
    outsider = make_user("outsider")
    assert outsider.get(f"/api/history/{otu['id']}.0").status_code == 403


def test_patch_to_version_rebuilds_every_version(admin, db, otu):
    snapshots = {otu["version"]: get_joined_otu(db, otu["id"])}
    isolate = otu["isolates"][0]
    admin.patch(f"/api/otus/{otu['id']}", json={"name": "Bar virus", "abbreviation": ""})
    snapshots[3] = get_joined_otu(db, otu["id"])
    second = admin.post(
        f"/api/otus/{otu['id']}/isolates", json={"source_type": "strain", "source_name": "B", "default": True}
    ).json
    snapshots[4] = get_joined_otu(db, otu["id"])
    admin.post(
        f"/api/otus/{otu['id']}/isolates/{second['id']}/sequences",
        json={"accession": "B1", "definition": "B", "sequence": "GGGGCCCC"},
    )
    snapshots[5] = get_joined_otu(db, otu["id"])
    admin.delete(f"/api/otus/{otu['id']}/isolates/{isolate['id']}")
    snapshots[6] = get_joined_otu(db, otu["id"])
    for version, snapshot in snapshots.items():
        assert patch_otu_to_version(db, otu["id"], version) == snapshot, version
    assert patch_otu_to_version(db, otu["id"], -1) is None
    _, _, reverted = patch_with_history(db, otu["id"], 3)
    assert reverted == [f"{otu['id']}.{v}" for v in (6, 5, 4)]


def test_patch_to_version_rebuilds_removed_otus(admin, db, otu):
    before = get_joined_otu(db, otu["id"])
    admin.delete(f"/api/otus/{otu['id']}")
    assert patch_otu_to_version(db, otu["id"], before["version"]) == before


def test_revert_the_last_change(admin, db, otu):
    before = admin.get(f"/api/otus/{otu['id']}").json
    admin.patch(f"/api/otus/{otu['id']}", json={"name": "Bar virus"})
    response = admin.delete(f"/api/history/{otu['id']}.3")
    assert response.status_code == 204
    after = admin.get(f"/api/otus/{otu['id']}").json
    assert {k: v for k, v in after.items() if k != "most_recent_change"} == {
        k: v for k, v in before.items() if k != "most_recent_change"
    }
    assert admin.get(f"/api/history/{otu['id']}.3").status_code == 404


def test_revert_also_reverts_later_changes(admin, db, otu):
    admin.patch(f"/api/otus/{otu['id']}", json={"name": "Bar virus"})
    admin.patch(f"/api/otus/{otu['id']}", json={"abbreviation": "BV"})
    assert admin.delete(f"/api/history/{otu['id']}.2").status_code == 204
    doc = admin.get(f"/api/otus/{otu['id']}").json
    assert doc["version"] == 1 and doc["name"] == "Foo virus" and doc["abbreviation"] == "FV"
    assert doc["isolates"][0]["sequences"] == [] and doc["verified"] is False
    assert db.sequences.count_documents({"otu_id": otu["id"]}) == 0
    assert [c["otu"]["version"] for c in admin.get(f"/api/otus/{otu['id']}/history").json] == [1, 0]


def test_reverting_the_creation_removes_the_otu(admin, db, ref, otu):
    assert admin.delete(f"/api/history/{otu['id']}.0").status_code == 204
    assert admin.get(f"/api/otus/{otu['id']}").status_code == 404
    assert db.history.count_documents({"otu.id": otu["id"]}) == 0
    assert admin.get(f"/api/refs/{ref['id']}").json["unbuilt_change_count"] == 0


def test_reverting_a_removal_restores_the_otu(admin, db, otu):
    before = admin.get(f"/api/otus/{otu['id']}").json
    admin.delete(f"/api/otus/{otu['id']}")
    assert admin.delete(f"/api/history/{otu['id']}.removed").status_code == 204
    after = admin.get(f"/api/otus/{otu['id']}").json
    assert after["isolates"] == before["isolates"] and after["version"] == before["version"]
    assert db.sequences.count_documents({"otu_id": otu["id"]}) == 1


def test_built_changes_cannot_be_reverted(admin, db, ref, otu):
    build(db, ref["id"])
    response = admin.delete(f"/api/history/{otu['id']}.2")
    assert response.status_code == 409
    assert response.json == {"id": "conflict", "message": "Change is already built"}
    admin.patch(f"/api/otus/{otu['id']}", json={"name": "Bar virus"})
    assert admin.delete(f"/api/history/{otu['id']}.3").status_code == 204
    assert admin.get(f"/api/otus/{otu['id']}").json["name"] == "Foo virus"


def test_unbuilt_counts_follow_builds(admin, db, ref, otu):
    assert admin.get(f"/api/refs/{ref['id']}").json["unbuilt_change_count"] == 3
    build(db, ref["id"])
    assert admin.get(f"/api/refs/{ref['id']}").json["unbuilt_change_count"] == 0
    assert admin.get(f"/api/refs/{ref['id']}/otus").json["modified_count"] == 0
    assert admin.get(f"/api/refs/{ref['id']}/history?unbuilt=false").json["found_count"] == 3


def test_revert_unknown_change_is_404(admin):
    assert admin.delete("/api/history/nothere.1").status_code == 404


@pytest.mark.parametrize("granted, status", [(("build", "modify", "remove"), 403), (("modify_otu",), 204)])
def test_revert_needs_modify_otu(admin, make_user, ref, otu, granted, status):
    user = make_user()
    admin.post(f"/api/refs/{ref['id']}/users", json={"user_id": user.id, **{r: r in granted for r in RIGHTS}})
    response = user.delete(f"/api/history/{otu['id']}.2")
    assert response.status_code == status
    if status == 403:
        assert response.json["message"] == "Insufficient rights"


def test_diffs_serialise_to_json(admin, db, otu):
    change = db.history.find_one({"_id": f"{otu['id']}.0"})
    assert to_json(change)["diff"]["created_at"].endswith("Z")
