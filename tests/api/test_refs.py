"""``/api/refs``: seed 003 requests give its statuses and fields; rights both ways; bad input."""

from __future__ import annotations

import gzip
import json

import pytest

from ringspot.bio.reference import validate_reference
from ringspot.core import auth
from ringspot.core.utils import now
from tests.common import upload, wait_finished
from tests.reference_helpers import (
    CHANGE_FIELDS,
    EXAMPLE,
    REF_FIELDS,
    add_otu,
    content_of,
    create_ref,
    import_ref,
    read_example,
)

RIGHTS = ("build", "modify", "modify_otu", "remove")


@pytest.fixture
def creator(make_user):
    return make_user("creator", permissions=["create_ref", "upload_file"])


@pytest.fixture
def ref(admin):
    return create_ref(admin, name="Plant Viruses", organism="viruses")


def member(make_user, admin, ref_id: str, *, granted=(), user_id=None, groups=()):
    """A user listed on the reference with exactly the rights in ``granted``."""
    user = make_user(user_id, groups=groups)
    body = {"user_id": user.id, **{right: right in granted for right in RIGHTS}}
    assert admin.post(f"/api/refs/{ref_id}/users", json=body).status_code == 201
    return user


# ---------------------------------------------------------------- create


def test_create_empty_reference_returns_seed_fields(admin):
    response = admin.post("/api/refs", json={"name": "Plant Viruses", "organism": "viruses", "data_type": "genome"})
    assert response.status_code == 201
    doc = response.json
    assert response.headers["Location"] == f"/api/refs/{doc['id']}"
    assert set(doc) >= REF_FIELDS
    assert doc["name"] == "Plant Viruses" and doc["organism"] == "viruses" and doc["data_type"] == "genome"
    assert doc["description"] == "" and doc["public"] is False
    assert doc["user"] == {"id": "admin"}
    assert doc["users"] == [
        {
            "id": "admin",
            "created_at": doc["users"][0]["created_at"],
            "build": True,
            "modify": True,
            "modify_otu": True,
            "remove": True,
        }
    ]
    assert doc["contributors"] == [] and doc["internal_control"] is None and doc["latest_build"] is None
    assert doc["otu_count"] == 0 and doc["unbuilt_change_count"] == 0
    assert doc["source_types"] == ["isolate", "strain"] and doc["restrict_source_types"] is False
    assert doc["created_at"].endswith("Z") and len(doc["id"]) == 8
    assert "process" not in doc


def test_create_needs_create_ref_permission(plain_user, creator):
    response = plain_user.post("/api/refs", json={"name": "Mine"})
    assert response.status_code == 403
    assert response.json == {"id": "not_permitted", "message": "Not permitted"}
    assert creator.post("/api/refs", json={"name": "Mine"}).status_code == 201


def test_create_defaults_data_type_to_genome(admin):
    assert admin.post("/api/refs", json={"name": "Defaults"}).json["data_type"] == "genome"


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "X", "public": "yes"}, "public"),
        ({"name": "X", "data_type": "protein"}, "data_type"),
        ({"name": 5}, "name"),
        ({"name": "X", "colour": "red"}, "colour"),
        ({"name": "X", "remote_from": "not a slug"}, "remote_from"),
        ({"name": "X", "clone_from": "a", "import_from": "b"}, "body"),
    ],
)
def test_create_rejects_bad_bodies_with_422(admin, body, field):
    response = admin.post("/api/refs", json=body)
    assert response.status_code == 422
    assert response.json["id"] == "invalid_input"
    assert field in response.json["errors"]


def test_create_rejects_malformed_json_with_400(admin):
    response = admin.post("/api/refs", data="{name: ", content_type="application/json")
    assert response.status_code == 400
    assert response.json["id"] == "invalid_json"


def test_clone_from_unknown_reference_is_400(admin):
    response = admin.post("/api/refs", json={"name": "Clone", "clone_from": "nothere"})
    assert response.status_code == 400
    assert response.json == {"id": "bad_request", "message": "Source reference does not exist"}


def test_clone_from_a_reference_the_caller_cannot_read_answers_as_a_missing_one(admin, creator):
    private = create_ref(admin, name="Private")
    response = creator.post("/api/refs", json={"name": "Clone", "clone_from": private["id"]})
    assert (response.status_code, response.json) == (
        400,
        {"id": "bad_request", "message": "Source reference does not exist"},
    )


def test_import_from_unknown_file_is_400(admin, db):
    response = admin.post("/api/refs", json={"name": "Imported", "import_from": "nothere-reference.json.gz"})
    assert response.status_code == 400
    assert response.json == {"id": "bad_request", "message": "File does not exist"}
    assert db.refs.count_documents({}) == 0


def test_import_from_a_reads_upload_is_400(admin):
    response = admin.post(
        "/api/uploads?name=reads.fq&type=reads", data=b"@r\nACGT\n+\nIIII\n", content_type="application/octet-stream"
    )
    response = admin.post("/api/refs", json={"name": "Imported", "import_from": response.json["id"]})
    assert response.status_code == 400
    assert response.json["message"] == "File is not a reference file"


def test_import_returns_seed_fields_and_a_process(admin, db, stub_worker):
    upload_id = upload(admin, "reference.json.gz", EXAMPLE, "reference")
    response = admin.post(
        "/api/refs", json={"name": "Test 1", "organism": "viruses", "data_type": "genome", "import_from": upload_id}
    )
    assert response.status_code == 201
    doc = response.json
    assert set(doc) >= REF_FIELDS
    assert doc["data_type"] is None and doc["organism"] is None
    assert doc["imported_from"] == {"id": upload_id, "name": "reference.json.gz", "user": {"id": "admin"}}
    assert response.headers["Content-Location"] == f"/api/processes/{doc['process']['id']}"
    process = wait_finished(db, doc["process"]["id"])
    assert process["state"] == "complete" and process["type"] == "import_reference"
    assert process["step_count"] == 5 and process["progress"] == 1
    loaded = admin.get(f"/api/refs/{doc['id']}").json
    assert loaded["data_type"] == "genome" and loaded["organism"] == "virus"
    assert loaded["otu_count"] == 20 and loaded["unbuilt_change_count"] == 20
    assert loaded["contributors"] == [{"id": "admin", "count": 20}]
    assert not db.uploads.find_one({"_id": upload_id})["reserved"]


def test_clone_returns_seed_fields_and_copies_the_otus(admin, db, stub_worker):
    source, _ = import_ref(admin, db, EXAMPLE.read_bytes(), name="Source")
    response = admin.post(
        "/api/refs", json={"name": "Test 1", "organism": "viruses", "data_type": "genome", "clone_from": source["id"]}
    )
    assert response.status_code == 201
    doc = response.json
    assert set(doc) >= REF_FIELDS
    assert doc["cloned_from"] == {"id": source["id"], "name": "Source"}
    assert doc["organism"] == "virus" and doc["data_type"] == "genome"  # taken from the source
    process = wait_finished(db, doc["process"]["id"])
    assert process["state"] == "complete", process["error"]
    assert process["type"] == "clone_reference" and process["step_count"] == 2
    clone = admin.get(f"/api/refs/{doc['id']}").json
    assert clone["otu_count"] == 20 and clone["unbuilt_change_count"] == 20
    changes = admin.get(f"/api/refs/{doc['id']}/history?per_page=100").json["documents"]
    assert {c["method_name"] for c in changes} == {"clone"}
    source_ids = {o["_id"] for o in db.otus.find({"reference.id": source["id"]})}
    clone_ids = {o["_id"] for o in db.otus.find({"reference.id": doc["id"]})}
    assert len(clone_ids) == 20 and not source_ids & clone_ids


# ---------------------------------------------------------------- find and get


def test_find_returns_the_seed_envelope(admin, ref):
    create_ref(admin, name="Another")
    response = admin.get("/api/refs?per_page=1")
    assert response.status_code == 200
    body = response.json
    assert {k: body[k] for k in ("total_count", "found_count", "page_count", "per_page", "page")} == {
        "total_count": 2,
        "found_count": 2,
        "page_count": 2,
        "per_page": 1,
        "page": 1,
    }
    assert set(body["documents"][0]) >= REF_FIELDS
    assert 'rel="next"' in response.headers["Link"]


def test_find_matches_names(admin, ref):
    create_ref(admin, name="Fungi")
    body = admin.get("/api/refs?find=plant").json
    assert [d["name"] for d in body["documents"]] == ["Plant Viruses"]
    assert body["found_count"] == 1 and body["total_count"] == 2


def test_find_lists_only_visible_references(admin, make_user, ref):
    admin.post("/api/groups", json={"group_id": "lab"})
    public = create_ref(admin, name="Public", public=True)
    by_group = create_ref(admin, name="By group")
    admin.post(f"/api/refs/{by_group['id']}/groups", json={"group_id": "lab"})
    listed = create_ref(admin, name="Listed")
    user = make_user("viewer", groups=["lab"])
    admin.post(f"/api/refs/{listed['id']}/users", json={"user_id": "viewer"})
    names = {d["name"] for d in user.get("/api/refs").json["documents"]}
    assert names == {public["name"], by_group["name"], listed["name"]}
    assert len(admin.get("/api/refs").json["documents"]) == 4


def test_find_rejects_bad_paging_with_422(admin):
    assert admin.get("/api/refs?per_page=0").status_code == 422
    assert admin.get("/api/refs?page=x").status_code == 422


def test_get_returns_computed_fields(admin, ref):
    otu = add_otu(admin, ref["id"])
    admin.patch(f"/api/refs/{ref['id']}", json={"internal_control": otu["id"]})
    doc = admin.get(f"/api/refs/{ref['id']}").json
    assert doc["internal_control"] == {"id": otu["id"], "name": "Foo virus"}
    assert doc["otu_count"] == 1 and doc["unbuilt_change_count"] == 3
    assert doc["contributors"] == [{"id": "admin", "count": 3}]


def test_get_unknown_reference_is_404(admin):
    response = admin.get("/api/refs/nothere")
    assert response.status_code == 404
    assert response.json == {"id": "not_found", "message": "Not found"}


def test_get_needs_read_access(admin, plain_user, ref):
    response = plain_user.get(f"/api/refs/{ref['id']}")
    assert response.status_code == 403
    assert response.json == {"id": "insufficient_rights", "message": "Insufficient rights"}
    admin.patch(f"/api/refs/{ref['id']}", json={"public": True})
    assert plain_user.get(f"/api/refs/{ref['id']}").status_code == 200


def test_unauthenticated_requests_are_401(client, ref):
    assert client.get("/api/refs").status_code == 401
    assert client.post("/api/refs", json={"name": "X"}).status_code == 401


def test_latest_build_is_the_newest_ready_index(admin, db, ref):
    for version, ready in ((0, True), (1, True), (2, False)):
        db.indexes.insert_one(
            {
                "_id": f"index{version}",
                "version": version,
                "ready": ready,
                "created_at": now(),
                "reference": {"id": ref["id"]},
                "user": {"id": "admin"},
                "manifest": {},
            }
        )
    latest = admin.get(f"/api/refs/{ref['id']}").json["latest_build"]
    assert latest == {"id": "index1", "version": 1, "created_at": latest["created_at"], "user": {"id": "admin"}}


# ---------------------------------------------------------------- edit


def test_edit_returns_the_edited_reference(admin, ref):
    otu = add_otu(admin, ref["id"], name="Thingy")
    response = admin.patch(
        f"/api/refs/{ref['id']}",
        json={"name": "Regulated Pests", "organism": "phytoplasma", "internal_control": otu["id"]},
    )
    assert response.status_code == 200
    doc = response.json
    assert doc["name"] == "Regulated Pests" and doc["organism"] == "phytoplasma"
    assert doc["internal_control"] == {"id": otu["id"], "name": "Thingy"}
    assert {"created_at", "data_type", "public", "user", "id"} <= set(doc)


def test_edit_also_accepts_post(admin, ref):
    response = admin.post(f"/api/refs/{ref['id']}", json={"description": "Longer"})
    assert response.status_code == 200 and response.json["description"] == "Longer"


def test_edit_clears_the_internal_control(admin, ref):
    otu = add_otu(admin, ref["id"])
    admin.patch(f"/api/refs/{ref['id']}", json={"internal_control": otu["id"]})
    assert admin.patch(f"/api/refs/{ref['id']}", json={"internal_control": ""}).json["internal_control"] is None
    admin.patch(f"/api/refs/{ref['id']}", json={"internal_control": otu["id"]})
    assert admin.patch(f"/api/refs/{ref['id']}", json={"internal_control": None}).json["internal_control"] is None


def test_edit_rejects_an_internal_control_from_elsewhere(admin, ref):
    other = create_ref(admin, name="Other")
    otu = add_otu(admin, other["id"])
    response = admin.patch(f"/api/refs/{ref['id']}", json={"internal_control": otu["id"]})
    assert response.status_code == 400
    assert response.json["message"] == "Internal control does not exist"


def test_edit_source_types(admin, ref):
    doc = admin.patch(
        f"/api/refs/{ref['id']}", json={"restrict_source_types": True, "source_types": ["Isolate", "clone", "isolate"]}
    ).json
    assert doc["restrict_source_types"] is True and doc["source_types"] == ["isolate", "clone"]


def test_renaming_updates_analyses(admin, db, ref):
    db.analyses.insert_one({"_id": "a1", "reference": {"id": ref["id"], "name": ref["name"]}})
    admin.patch(f"/api/refs/{ref['id']}", json={"name": "Renamed"})
    assert db.analyses.find_one({"_id": "a1"})["reference"]["name"] == "Renamed"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": ""}, "name"),
        ({"public": 1}, "public"),
        ({"source_types": "isolate"}, "source_types"),
        ({"data_type": "x"}, "data_type"),
        ({"otus": []}, "otus"),
    ],
)
def test_edit_rejects_bad_bodies_with_422(admin, ref, body, field):
    response = admin.patch(f"/api/refs/{ref['id']}", json=body)
    assert response.status_code == 422 and field in response.json["errors"]


def test_edit_unknown_reference_is_404(admin):
    assert admin.patch("/api/refs/nothere", json={"name": "X"}).status_code == 404


# ---------------------------------------------------------------- remove


def test_remove_returns_202_with_the_process(admin, db, ref, stub_worker):
    add_otu(admin, ref["id"])
    response = admin.delete(f"/api/refs/{ref['id']}")
    assert response.status_code == 202
    doc = response.json
    assert response.headers["Content-Location"] == f"/api/processes/{doc['id']}"
    assert {"created_at", "progress", "step", "step_count", "type", "id"} <= set(doc)
    assert doc["type"] == "delete_reference" and doc["step"] == "delete_indexes"
    assert doc["step_count"] == 2 and doc["progress"] == 0
    assert admin.get(f"/api/refs/{ref['id']}").status_code == 404
    assert wait_finished(db, doc["id"])["state"] == "complete"
    for collection in ("otus", "sequences", "history"):
        assert db[collection].count_documents({"reference.id": ref["id"]}) == 0


def test_remove_keeps_what_analyses_used(admin, db, ref, stub_worker):
    used = add_otu(admin, ref["id"], name="Used virus", abbreviation="UV")
    unused = add_otu(admin, ref["id"], name="Unused virus", abbreviation="NV")
    db.indexes.insert_one(
        {
            "_id": "idx1",
            "version": 0,
            "ready": True,
            "reference": {"id": ref["id"]},
            "manifest": {used["id"]: used["version"]},
            "created_at": now(),
        }
    )
    db.indexes.insert_one(
        {
            "_id": "idx2",
            "version": 1,
            "ready": True,
            "reference": {"id": ref["id"]},
            "manifest": {},
            "created_at": now(),
        }
    )
    db.analyses.insert_one({"_id": "an1", "index": {"id": "idx1"}, "reference": {"id": ref["id"]}})
    process = admin.delete(f"/api/refs/{ref['id']}").json
    assert wait_finished(db, process["id"])["state"] == "complete"
    assert db.indexes.find_one({"_id": "idx1"})["deleted"]
    assert db.indexes.find_one({"_id": "idx2"}) is None
    assert db.otus.count_documents({"reference.id": ref["id"]}) == 0
    assert db.history.count_documents({"otu.id": unused["id"]}) == 0
    from ringspot.core.otus import patch_otu_to_version

    rebuilt = patch_otu_to_version(db, used["id"], used["version"])
    assert rebuilt["name"] == "Used virus"
    assert rebuilt["isolates"][0]["sequences"][0]["sequence"] == "ACGTACGTAC"


def test_remove_unknown_reference_is_404(admin):
    assert admin.delete("/api/refs/nothere").status_code == 404


# ---------------------------------------------------------------- history and indexes


def test_find_history_returns_the_seed_envelope(admin, db, stub_worker):
    ref, _ = import_ref(admin, db, EXAMPLE.read_bytes())
    response = admin.get(f"/api/refs/{ref['id']}/history?per_page=2")
    assert response.status_code == 200
    body = response.json
    assert {k: body[k] for k in ("total_count", "found_count", "page_count", "per_page", "page")} == {
        "total_count": 20,
        "found_count": 20,
        "page_count": 10,
        "per_page": 2,
        "page": 1,
    }
    change = body["documents"][0]
    assert set(change) == CHANGE_FIELDS
    assert change["method_name"] == "import" and change["description"].startswith("Imported ")
    assert change["index"] == {"id": "unbuilt", "version": "unbuilt"}
    assert change["reference"] == {"id": ref["id"]} and change["user"] == {"id": "admin"}
    assert change["id"] == f"{change['otu']['id']}.0" and change["otu"]["version"] == 0


def test_find_history_filters_unbuilt(admin, db, ref):
    otu = add_otu(admin, ref["id"])
    db.history.update_one({"_id": f"{otu['id']}.0"}, {"$set": {"index": {"id": "idx", "version": 0}}})
    unbuilt = admin.get(f"/api/refs/{ref['id']}/history?unbuilt=true").json
    built = admin.get(f"/api/refs/{ref['id']}/history?unbuilt=false").json
    every = admin.get(f"/api/refs/{ref['id']}/history").json
    assert unbuilt["found_count"] == 2 and built["found_count"] == 1 and every["found_count"] == 3
    assert [d["id"] for d in built["documents"]] == [f"{otu['id']}.0"]
    assert admin.get(f"/api/refs/{ref['id']}/history?unbuilt=maybe").status_code == 422


def test_find_history_newest_first(admin, ref):
    otu = add_otu(admin, ref["id"])
    versions = [d["otu"]["version"] for d in admin.get(f"/api/refs/{ref['id']}/history").json["documents"]]
    assert versions == [2, 1, 0]
    assert admin.get(f"/api/refs/{ref['id']}/history").json["documents"][0]["otu"]["id"] == otu["id"]


def test_find_history_needs_read_access(plain_user, ref):
    assert plain_user.get(f"/api/refs/{ref['id']}/history").status_code == 403
    assert plain_user.get("/api/refs/nothere/history").status_code == 404


def test_find_indexes_returns_the_seed_envelope(admin, db, ref):
    otu = add_otu(admin, ref["id"])
    db.indexes.insert_one(
        {
            "_id": "v2fuqat2",
            "version": 0,
            "created_at": now(),
            "ready": True,
            "has_files": True,
            "job": {"id": "egox4ch6"},
            "reference": {"id": ref["id"]},
            "user": {"id": "admin"},
            "manifest": {otu["id"]: 2},
        }
    )
    db.history.update_many({"reference.id": ref["id"]}, {"$set": {"index": {"id": "v2fuqat2", "version": 0}}})
    response = admin.get(f"/api/refs/{ref['id']}/indexes")
    assert response.status_code == 200
    body = response.json
    assert body["total_count"] == 1 and body["per_page"] == 15 and body["page"] == 1
    index = body["documents"][0]
    assert {
        "version",
        "created_at",
        "ready",
        "has_files",
        "job",
        "ref",
        "user",
        "id",
        "change_count",
        "modified_otu_count",
    } <= set(index)
    assert index["ref"] == {"id": ref["id"]} and index["change_count"] == 3 and index["modified_otu_count"] == 1
    assert "manifest" not in index


def test_find_indexes_of_unknown_reference_is_404(admin):
    assert admin.get("/api/refs/nothere/indexes").status_code == 404


# ---------------------------------------------------------------- users and groups


def test_add_user_returns_201_with_location(admin, make_user, ref):
    make_user("baz")
    response = admin.post(f"/api/refs/{ref['id']}/users", json={"user_id": "baz", "modify_otu": True})
    assert response.status_code == 201
    assert response.headers["Location"] == f"/api/refs/{ref['id']}/users/baz"
    assert response.json == {
        "id": "baz",
        "created_at": response.json["created_at"],
        "build": False,
        "modify": False,
        "modify_otu": True,
        "remove": False,
    }


def test_add_user_twice_or_unknown_is_400(admin, make_user, ref):
    make_user("baz")
    admin.post(f"/api/refs/{ref['id']}/users", json={"user_id": "baz"})
    response = admin.post(f"/api/refs/{ref['id']}/users", json={"user_id": "baz"})
    assert response.status_code == 400 and response.json["message"] == "User already exists"
    response = admin.post(f"/api/refs/{ref['id']}/users", json={"user_id": "nobody"})
    assert response.status_code == 400 and response.json["message"] == "User does not exist"


def test_edit_and_remove_user(admin, make_user, ref):
    make_user("baz")
    admin.post(f"/api/refs/{ref['id']}/users", json={"user_id": "baz", "modify_otu": True})
    response = admin.patch(f"/api/refs/{ref['id']}/users/baz", json={"build": True, "modify": True})
    assert response.status_code == 200
    assert {k: response.json[k] for k in RIGHTS} == {"build": True, "modify": True, "modify_otu": True, "remove": False}
    assert admin.get(f"/api/refs/{ref['id']}/users/baz").json["modify"] is True
    assert admin.delete(f"/api/refs/{ref['id']}/users/baz").status_code == 204
    assert admin.delete(f"/api/refs/{ref['id']}/users/baz").status_code == 404
    assert admin.patch(f"/api/refs/{ref['id']}/users/baz", json={"build": True}).status_code == 404
    assert [u["id"] for u in admin.get(f"/api/refs/{ref['id']}/users").json] == ["admin"]


def test_groups_add_edit_remove(admin, db, ref):
    auth.create_group(db, "baz")
    response = admin.post(f"/api/refs/{ref['id']}/groups", json={"group_id": "baz", "modify_otu": True})
    assert response.status_code == 201
    assert response.headers["Location"] == f"/api/refs/{ref['id']}/groups/baz"
    assert set(response.json) == {"id", "created_at", *RIGHTS}
    again = admin.post(f"/api/refs/{ref['id']}/groups", json={"group_id": "baz"})
    assert again.status_code == 400 and again.json["message"] == "Group already exists"
    unknown = admin.post(f"/api/refs/{ref['id']}/groups", json={"group_id": "nope"})
    assert unknown.status_code == 400 and unknown.json["message"] == "Group does not exist"
    edited = admin.patch(f"/api/refs/{ref['id']}/groups/baz", json={"build": True, "modify": True}).json
    assert (edited["build"], edited["modify"], edited["modify_otu"], edited["remove"]) == (True, True, True, False)
    assert admin.get(f"/api/refs/{ref['id']}/groups").json[0]["id"] == "baz"
    assert admin.delete(f"/api/refs/{ref['id']}/groups/baz").status_code == 204
    assert admin.get(f"/api/refs/{ref['id']}/groups/baz").status_code == 404


@pytest.mark.parametrize("body", [{}, {"user_id": "baz", "build": "yes"}, {"user_id": "baz", "admin": True}])
def test_add_user_rejects_bad_bodies_with_422(admin, ref, body):
    assert admin.post(f"/api/refs/{ref['id']}/users", json=body).status_code == 422


def test_group_rights_apply_to_members(admin, make_user, db, ref):
    auth.create_group(db, "lab")
    admin.post(f"/api/refs/{ref['id']}/groups", json={"group_id": "lab", "modify": True})
    user = make_user("labber", groups=["lab"])
    assert user.patch(f"/api/refs/{ref['id']}", json={"name": "By group"}).status_code == 200
    assert user.delete(f"/api/refs/{ref['id']}").status_code == 403


# ---------------------------------------------------------------- rights matrix


REFERENCE_WRITES = [
    ("patch", "/api/refs/{ref}", {"name": "Renamed"}, "modify"),
    ("post", "/api/refs/{ref}", {"description": "x"}, "modify"),
    ("delete", "/api/refs/{ref}", None, "remove"),
    ("post", "/api/refs/{ref}/users", {"user_id": "extra"}, "modify"),
    ("patch", "/api/refs/{ref}/users/admin", {"build": True}, "modify"),
    ("delete", "/api/refs/{ref}/users/extra2", None, "modify"),
    ("post", "/api/refs/{ref}/groups", {"group_id": "lab"}, "modify"),
    ("post", "/api/refs/{ref}/otus", {"name": "New virus"}, "modify_otu"),
    ("post", "/api/refs/{ref}/release", None, "modify"),
    ("post", "/api/refs/{ref}/updates", None, "modify"),
]


@pytest.fixture
def rights_setup(admin, make_user, db, ref):
    make_user("extra")
    make_user("extra2")
    admin.post(f"/api/refs/{ref['id']}/users", json={"user_id": "extra2"})
    auth.create_group(db, "lab")
    return ref


@pytest.mark.parametrize("method, path, body, right", REFERENCE_WRITES)
def test_reference_writes_are_403_without_the_right(admin, make_user, rights_setup, method, path, body, right):
    user = member(make_user, admin, rights_setup["id"], granted=[r for r in RIGHTS if r != right])
    response = getattr(user, method)(path.format(ref=rights_setup["id"]), json=body)
    assert response.status_code == 403
    assert response.json == {"id": "insufficient_rights", "message": "Insufficient rights"}


@pytest.mark.parametrize("method, path, body, right", REFERENCE_WRITES)
def test_reference_writes_pass_with_the_right(admin, make_user, rights_setup, stub_worker, method, path, body, right):
    user = member(make_user, admin, rights_setup["id"], granted=[right])
    response = getattr(user, method)(path.format(ref=rights_setup["id"]), json=body)
    assert response.status_code != 403, response.json
    # The updates and release endpoints only serve remote references.
    assert response.status_code < 300 or response.json["message"] == "Not a remote reference"


@pytest.mark.parametrize(
    "path",
    [
        "/api/refs/{ref}",
        "/api/refs/{ref}/history",
        "/api/refs/{ref}/indexes",
        "/api/refs/{ref}/otus",
        "/api/refs/{ref}/users",
        "/api/refs/{ref}/export",
    ],
)
def test_reads_need_read_access(admin, make_user, ref, path):
    outsider = make_user("outsider")
    assert outsider.get(path.format(ref=ref["id"])).status_code == 403
    reader = member(make_user, admin, ref["id"], user_id="reader")
    assert reader.get(path.format(ref=ref["id"])).status_code == 200


# ---------------------------------------------------------------- export


def test_export_returns_a_gzip_reference_file(admin, ref):
    add_otu(
        admin,
        ref["id"],
        name="Foo virus",
        abbreviation="FV",
        schema=[{"name": "RNA 1", "molecule": "ssRNA+", "required": True}],
    )
    response = admin.get(f"/api/refs/{ref['id']}/export")
    assert response.status_code == 200
    assert response.mimetype == "application/gzip"
    assert "reference.json.gz" in response.headers["Content-Disposition"]
    data = json.loads(gzip.decompress(response.data))
    assert data["data_type"] == "genome" and data["organism"] == "viruses" and data["name"] == "Plant Viruses"
    otu = data["otus"][0]
    assert otu["name"] == "Foo virus" and otu["schema"][0]["name"] == "RNA 1"
    assert otu["isolates"][0]["sequences"][0]["sequence"] == "ACGTACGTAC"


def test_export_reimports_to_the_same_content(admin, db, stub_worker):
    ref, _ = import_ref(admin, db, EXAMPLE.read_bytes())
    first = admin.get(f"/api/refs/{ref['id']}/export").data
    # The file as validate_reference normalises it (absent segments become null).
    assert content_of(json.loads(gzip.decompress(first))) == content_of(validate_reference(read_example()))
    again, process = import_ref(admin, db, first, name="Again")
    assert process["state"] == "complete"
    second = admin.get(f"/api/refs/{again['id']}/export").data
    assert content_of(json.loads(gzip.decompress(second))) == content_of(json.loads(gzip.decompress(first)))


def test_export_built_scope_uses_the_index_manifest(admin, db, ref):
    otu = add_otu(admin, ref["id"])
    db.indexes.insert_one(
        {
            "_id": "idx",
            "version": 0,
            "ready": True,
            "reference": {"id": ref["id"]},
            "manifest": {otu["id"]: otu["version"]},
            "created_at": now(),
        }
    )
    admin.patch(f"/api/otus/{otu['id']}", json={"name": "Renamed virus"})
    add_otu(admin, ref["id"], name="Later virus", abbreviation="LV")
    built = json.loads(gzip.decompress(admin.get(f"/api/refs/{ref['id']}/export?scope=built").data))
    assert [o["name"] for o in built["otus"]] == ["Foo virus"]
    by_version = json.loads(gzip.decompress(admin.get(f"/api/refs/{ref['id']}/export?index_version=0").data))
    assert by_version == {**built, "created_at": by_version["created_at"]}
    current = json.loads(gzip.decompress(admin.get(f"/api/refs/{ref['id']}/export?scope=current").data))
    assert sorted(o["name"] for o in current["otus"]) == ["Later virus", "Renamed virus"]
    assert admin.get(f"/api/refs/{ref['id']}/export?index_version=4").status_code == 404


def test_export_unbuilt_scope_takes_the_last_verified_versions(admin, ref):
    otu = add_otu(admin, ref["id"])
    isolate = otu["isolates"][0]
    sequence = isolate["sequences"][0]
    admin.delete(f"/api/otus/{otu['id']}/isolates/{isolate['id']}/sequences/{sequence['id']}")
    assert admin.get(f"/api/otus/{otu['id']}").json["verified"] is False
    unbuilt = json.loads(gzip.decompress(admin.get(f"/api/refs/{ref['id']}/export?scope=unbuilt").data))
    assert unbuilt["otus"][0]["isolates"][0]["sequences"][0]["sequence"] == "ACGTACGTAC"
    response = admin.get(f"/api/refs/{ref['id']}/export?scope=built")
    assert response.status_code == 400 and response.json["message"] == "Reference has no built index"
    assert admin.get(f"/api/refs/{ref['id']}/export?scope=everything").status_code == 422
