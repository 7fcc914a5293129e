"""OTUs, isolates and sequences: every write is a new version with a history entry; rights both ways."""

from __future__ import annotations

import pytest

from tests.reference_helpers import add_otu, create_ref

RIGHTS = ("build", "modify", "modify_otu", "remove")
OTU_FIELDS = {
    "id",
    "name",
    "abbreviation",
    "reference",
    "version",
    "last_indexed_version",
    "verified",
    "issues",
    "imported",
    "schema",
    "isolates",
    "created_at",
    "user",
    "most_recent_change",
}
SCHEMA = [
    {"name": "RNA 1", "molecule": "ssRNA+", "required": True},
    {"name": "RNA 2", "molecule": "ssRNA+", "required": False},
]


@pytest.fixture
def ref(admin):
    return create_ref(admin, name="Plant Viruses", organism="viruses")


@pytest.fixture
def otu(admin, ref):
    return add_otu(admin, ref["id"], schema=SCHEMA)


def otu_url(otu, *parts):
    return "/".join([f"/api/otus/{otu['id']}", *parts])


def changes_of(admin, otu_id):
    return admin.get(f"/api/otus/{otu_id}/history").json


# ---------------------------------------------------------------- OTUs


def test_create_otu_returns_201_with_the_joined_otu(admin, ref):
    response = admin.post(
        f"/api/refs/{ref['id']}/otus", json={"name": "Tobacco mosaic virus", "abbreviation": "TMV", "schema": SCHEMA}
    )
    assert response.status_code == 201
    doc = response.json
    assert response.headers["Location"] == f"/api/otus/{doc['id']}"
    assert set(doc) == OTU_FIELDS
    assert doc["version"] == 0 and doc["isolates"] == [] and doc["verified"] is False
    assert doc["issues"]["empty_otu"] is True
    assert doc["schema"] == SCHEMA and doc["reference"] == {"id": ref["id"]} and doc["user"] == {"id": "admin"}
    assert doc["last_indexed_version"] is None and doc["imported"] is False
    assert doc["most_recent_change"]["method_name"] == "create"
    assert doc["most_recent_change"]["description"] == "Created Tobacco mosaic virus (TMV)"


def test_create_defaults(admin, ref):
    doc = admin.post(f"/api/refs/{ref['id']}/otus", json={"name": "  Bare virus  "}).json
    assert doc["name"] == "Bare virus" and doc["abbreviation"] == "" and doc["schema"] == []
    assert doc["most_recent_change"]["description"] == "Created Bare virus"


@pytest.mark.parametrize(
    "body, message",
    [
        ({"name": "foo VIRUS"}, "Name already exists"),
        ({"name": "Other virus", "abbreviation": "FV"}, "Abbreviation already exists"),
        ({"name": "Foo virus", "abbreviation": "FV"}, "Name and abbreviation already exist"),
    ],
)
def test_create_refuses_names_taken_in_the_reference(admin, ref, otu, body, message):
    response = admin.post(f"/api/refs/{ref['id']}/otus", json=body)
    assert response.status_code == 400
    assert response.json == {"id": "bad_request", "message": message}


def test_the_same_name_may_be_used_in_another_reference(admin, otu):
    other = create_ref(admin, name="Other")
    assert (
        admin.post(f"/api/refs/{other['id']}/otus", json={"name": "Foo virus", "abbreviation": "FV"}).status_code == 201
    )


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "X", "abbreviation": 3}, "abbreviation"),
        ({"name": "X", "schema": "RNA"}, "schema"),
        ({"name": "X", "schema": [{"name": "A"}, {"name": "A"}]}, "body"),
        ({"name": "X", "schema": [{"name": "A", "molecule": "protein"}]}, "schema.0.molecule"),
        ({"name": "X", "schema": [{"name": "A", "size": 4}]}, "schema.0.size"),
        ({"name": "X", "isolates": []}, "isolates"),
    ],
)
def test_create_rejects_bad_bodies_with_422(admin, ref, body, field):
    response = admin.post(f"/api/refs/{ref['id']}/otus", json=body)
    assert response.status_code == 422, response.json
    assert field in response.json["errors"]


def test_create_in_unknown_reference_is_404(admin):
    assert admin.post("/api/refs/nothere/otus", json={"name": "X"}).status_code == 404


def test_get_otu(admin, otu):
    response = admin.get(otu_url(otu))
    assert response.status_code == 200
    doc = response.json
    assert set(doc) == OTU_FIELDS
    assert doc["version"] == 2 and doc["verified"] is True
    sequence = doc["isolates"][0]["sequences"][0]
    assert set(sequence) == {"id", "isolate_id", "accession", "definition", "host", "segment", "sequence", "reference"}
    assert doc["most_recent_change"]["method_name"] == "create_sequence"
    assert admin.get("/api/otus/nothere").status_code == 404


def test_edit_otu_writes_a_new_version(admin, otu):
    response = admin.patch(otu_url(otu), json={"name": "Bar virus", "abbreviation": "BV"})
    assert response.status_code == 200
    assert response.json["name"] == "Bar virus" and response.json["version"] == otu["version"] + 1
    assert (
        response.json["most_recent_change"]["description"] == "Changed name to Bar virus and changed abbreviation to BV"
    )


@pytest.mark.parametrize(
    "body, description",
    [
        ({"abbreviation": ""}, "Removed abbreviation FV"),
        ({"name": "Baz virus"}, "Changed name to Baz virus"),
        ({"schema": [{"name": "RNA 1"}]}, "Modified schema"),
    ],
)
def test_edit_descriptions(admin, otu, body, description):
    assert admin.patch(otu_url(otu), json=body).json["most_recent_change"]["description"] == description


def test_edit_adding_an_abbreviation(admin, ref):
    doc = admin.post(f"/api/refs/{ref['id']}/otus", json={"name": "Plain virus"}).json
    assert (
        admin.patch(otu_url(doc), json={"abbreviation": "PV"}).json["most_recent_change"]["description"]
        == "Added abbreviation PV"
    )


def test_edit_without_change_writes_nothing(admin, otu):
    response = admin.patch(otu_url(otu), json={"name": "Foo virus", "abbreviation": "FV"})
    assert response.status_code == 200 and response.json["version"] == otu["version"]
    assert len(changes_of(admin, otu["id"])) == 3


def test_edit_refuses_a_taken_name(admin, ref, otu):
    add_otu(admin, ref["id"], name="Other virus", abbreviation="OV")
    response = admin.patch(otu_url(otu), json={"name": "other virus"})
    assert response.status_code == 400 and response.json["message"] == "Name already exists"


@pytest.mark.parametrize(
    "body", [{"name": ""}, {"schema": [{"required": True}]}, {"version": 4}, {"name": None, "x": 1}]
)
def test_edit_rejects_bad_bodies_with_422(admin, otu, body):
    assert admin.patch(otu_url(otu), json=body).status_code == 422


def test_edit_rejects_malformed_json_with_400(admin, otu):
    response = admin.patch(otu_url(otu), data="{", content_type="application/json")
    assert response.status_code == 400 and response.json["id"] == "invalid_json"


def test_remove_otu(admin, db, ref, otu):
    admin.patch(f"/api/refs/{ref['id']}", json={"internal_control": otu["id"]})
    assert admin.delete(otu_url(otu)).status_code == 204
    assert admin.get(otu_url(otu)).status_code == 404
    assert db.sequences.count_documents({"otu_id": otu["id"]}) == 0
    change = admin.get(f"/api/history/{otu['id']}.removed").json
    assert change["method_name"] == "remove" and change["description"] == "Removed Foo virus (FV)"
    assert change["otu"] == {"id": otu["id"], "name": "Foo virus", "version": "removed"}
    assert change["diff"]["isolates"][0]["sequences"][0]["sequence"] == "ACGTACGTAC"
    assert admin.get(f"/api/refs/{ref['id']}").json["internal_control"] is None
    assert admin.delete(otu_url(otu)).status_code == 404


# ---------------------------------------------------------------- isolates


def test_first_isolate_is_the_default(admin, ref):
    doc = admin.post(f"/api/refs/{ref['id']}/otus", json={"name": "New virus"}).json
    response = admin.post(otu_url(doc, "isolates"), json={"source_type": "Isolate", "source_name": "B1"})
    assert response.status_code == 201
    isolate = response.json
    assert response.headers["Location"] == f"/api/otus/{doc['id']}/isolates/{isolate['id']}"
    assert isolate == {
        "id": isolate["id"],
        "source_type": "isolate",
        "source_name": "B1",
        "default": True,
        "sequences": [],
    }
    assert changes_of(admin, doc["id"])[0]["description"] == "Added Isolate B1 as default"


def test_a_new_default_isolate_unsets_the_others(admin, otu):
    first = otu["isolates"][0]
    second = admin.post(otu_url(otu, "isolates"), json={"source_type": "strain", "source_name": "S"}).json
    assert second["default"] is False
    third = admin.post(
        otu_url(otu, "isolates"), json={"source_type": "strain", "source_name": "T", "default": True}
    ).json
    assert third["default"] is True
    defaults = {i["id"]: i["default"] for i in admin.get(otu_url(otu, "isolates")).json}
    assert defaults == {first["id"]: False, second["id"]: False, third["id"]: True}


def test_unnamed_isolates(admin, otu):
    admin.post(otu_url(otu, "isolates"), json={})
    assert changes_of(admin, otu["id"])[0]["description"] == "Added Unnamed Isolate"


def test_restricted_source_types(admin, ref, otu):
    admin.patch(f"/api/refs/{ref['id']}", json={"restrict_source_types": True, "source_types": ["isolate"]})
    response = admin.post(otu_url(otu, "isolates"), json={"source_type": "clone", "source_name": "C"})
    assert response.status_code == 400 and response.json["message"] == "Source type is not allowed"
    assert admin.post(otu_url(otu, "isolates"), json={"source_type": "isolate", "source_name": "C"}).status_code == 201
    isolate_id = otu["isolates"][0]["id"]
    assert admin.patch(otu_url(otu, "isolates", isolate_id), json={"source_type": "clone"}).status_code == 400


def test_edit_isolate(admin, otu):
    isolate_id = otu["isolates"][0]["id"]
    response = admin.patch(otu_url(otu, "isolates", isolate_id), json={"source_type": "strain", "source_name": "B"})
    assert response.status_code == 200
    assert response.json["source_type"] == "strain" and response.json["source_name"] == "B"
    assert len(response.json["sequences"]) == 1
    assert changes_of(admin, otu["id"])[0]["description"] == "Renamed Isolate A to Strain B"


def test_get_isolate_and_its_sequences(admin, otu):
    isolate = otu["isolates"][0]
    assert admin.get(otu_url(otu, "isolates", isolate["id"])).json == isolate
    assert admin.get(otu_url(otu, "isolates", isolate["id"], "sequences")).json == isolate["sequences"]
    assert admin.get(otu_url(otu, "isolates", "nothere")).status_code == 404
    assert admin.get(otu_url(otu, "isolates", "nothere", "sequences")).status_code == 404


def test_set_default_isolate(admin, otu):
    second = admin.post(otu_url(otu, "isolates"), json={"source_type": "strain", "source_name": "S"}).json
    response = admin.put(otu_url(otu, "isolates", second["id"], "default"))
    assert response.status_code == 200 and response.json["default"] is True
    doc = admin.get(otu_url(otu)).json
    assert [i["default"] for i in doc["isolates"]] == [False, True]
    assert doc["most_recent_change"]["description"] == "Set Strain S as default"
    again = admin.put(otu_url(otu, "isolates", second["id"], "default"))
    assert again.status_code == 200 and admin.get(otu_url(otu)).json["version"] == doc["version"]
    assert admin.put(otu_url(otu, "isolates", "nothere", "default")).status_code == 404


def test_removing_the_default_isolate_makes_the_next_one_default(admin, db, otu):
    first = otu["isolates"][0]
    second = admin.post(otu_url(otu, "isolates"), json={"source_type": "strain", "source_name": "S"}).json
    assert admin.delete(otu_url(otu, "isolates", first["id"])).status_code == 204
    doc = admin.get(otu_url(otu)).json
    assert [(i["id"], i["default"]) for i in doc["isolates"]] == [(second["id"], True)]
    assert doc["most_recent_change"]["description"] == "Removed Isolate A and set Strain S as default"
    assert db.sequences.count_documents({"isolate_id": first["id"]}) == 0
    assert admin.delete(otu_url(otu, "isolates", first["id"])).status_code == 404


@pytest.mark.parametrize("body", [{"default": "yes"}, {"source_name": 4}, {"sequences": []}])
def test_add_isolate_rejects_bad_bodies_with_422(admin, otu, body):
    assert admin.post(otu_url(otu, "isolates"), json=body).status_code == 422


# ---------------------------------------------------------------- sequences


def test_create_sequence_returns_201(admin, otu):
    isolate_id = otu["isolates"][0]["id"]
    response = admin.post(
        otu_url(otu, "isolates", isolate_id, "sequences"),
        json={
            "accession": "NC_2",
            "definition": "Foo virus RNA 2",
            "host": "Tobacco",
            "segment": "RNA 2",
            "sequence": "acgt\nACGT nn ",
        },
    )
    assert response.status_code == 201
    sequence = response.json
    assert response.headers["Location"] == f"/api/otus/{otu['id']}/isolates/{isolate_id}/sequences/{sequence['id']}"
    assert sequence["sequence"] == "ACGTACGTNN" and sequence["segment"] == "RNA 2" and sequence["host"] == "Tobacco"
    assert sequence["isolate_id"] == isolate_id and sequence["reference"] == {"id": otu["reference"]["id"]}
    assert admin.get(otu_url(otu, "isolates", isolate_id, "sequences", sequence["id"])).json == sequence
    assert changes_of(admin, otu["id"])[0]["description"] == "Created new sequence NC_2 in Isolate A"


def test_create_sequence_needs_a_segment_of_the_schema(admin, otu):
    isolate_id = otu["isolates"][0]["id"]
    response = admin.post(
        otu_url(otu, "isolates", isolate_id, "sequences"),
        json={"accession": "X", "definition": "X", "sequence": "ACGT", "segment": "RNA 9"},
    )
    assert response.status_code == 400 and response.json["message"] == "Segment does not exist"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"accession": "X", "definition": "X"}, "sequence"),
        ({"accession": "X", "definition": "X", "sequence": "ACGTZ"}, "sequence"),
        ({"accession": "X", "definition": "X", "sequence": "   "}, "sequence"),
        ({"accession": "", "definition": "X", "sequence": "ACGT"}, "accession"),
        ({"accession": "X", "definition": "X", "sequence": "ACGT", "host": 1}, "host"),
        ({"accession": "X", "definition": "X", "sequence": "ACGT", "otu_id": "o"}, "otu_id"),
    ],
)
def test_create_sequence_rejects_bad_bodies_with_422(admin, otu, body, field):
    response = admin.post(otu_url(otu, "isolates", otu["isolates"][0]["id"], "sequences"), json=body)
    assert response.status_code == 422 and field in response.json["errors"]


def test_edit_sequence(admin, otu):
    isolate_id = otu["isolates"][0]["id"]
    sequence = otu["isolates"][0]["sequences"][0]
    url = otu_url(otu, "isolates", isolate_id, "sequences", sequence["id"])
    response = admin.patch(url, json={"definition": "Edited", "sequence": "GGGG"})
    assert response.status_code == 200
    assert response.json["definition"] == "Edited" and response.json["sequence"] == "GGGG"
    assert changes_of(admin, otu["id"])[0]["description"] == f"Edited sequence {sequence['accession']} in Isolate A"
    unknown = admin.patch(url, json={"segment": "RNA 9"})
    assert unknown.status_code == 404 and unknown.json["message"] == "Segment does not exist"
    assert (
        admin.patch(otu_url(otu, "isolates", isolate_id, "sequences", "nothere"), json={"host": "x"}).status_code == 404
    )


def test_remove_sequence_makes_the_otu_unverified(admin, otu):
    isolate_id = otu["isolates"][0]["id"]
    sequence = otu["isolates"][0]["sequences"][0]
    assert admin.delete(otu_url(otu, "isolates", isolate_id, "sequences", sequence["id"])).status_code == 204
    doc = admin.get(otu_url(otu)).json
    assert doc["verified"] is False and doc["issues"]["empty_isolate"] == [isolate_id]
    assert doc["most_recent_change"]["description"] == f"Removed sequence {sequence['accession']} from Isolate A"


# ---------------------------------------------------------------- verification and versions


def test_verification_follows_the_rules(admin, ref):
    doc = admin.post(f"/api/refs/{ref['id']}/otus", json={"name": "Rule virus", "schema": SCHEMA}).json
    assert doc["verified"] is False and doc["issues"]["empty_otu"]
    isolate = admin.post(otu_url(doc, "isolates"), json={"source_type": "isolate", "source_name": "A"}).json
    assert admin.get(otu_url(doc)).json["issues"]["empty_isolate"] == [isolate["id"]]
    admin.post(
        otu_url(doc, "isolates", isolate["id"], "sequences"),
        json={"accession": "A1", "definition": "RNA 2 only", "sequence": "ACGT", "segment": "RNA 2"},
    )
    checked = admin.get(otu_url(doc)).json
    # A missing required segment is reported but does not block a build.
    assert checked["verified"] is True
    assert checked["issues"]["segment_mismatch"][0]["reason"] == "missing_segment"
    # A sequence whose segment left the schema does block it.
    admin.patch(otu_url(doc), json={"schema": [SCHEMA[0]]})
    checked = admin.get(otu_url(doc)).json
    assert checked["verified"] is False
    assert "unknown_segment" in {m["reason"] for m in checked["issues"]["segment_mismatch"]}


def test_every_change_is_a_version_in_history(admin, otu):
    changes = changes_of(admin, otu["id"])
    assert [c["id"] for c in changes] == [f"{otu['id']}.{v}" for v in (2, 1, 0)]
    assert [c["method_name"] for c in changes] == ["create_sequence", "add_isolate", "create"]
    assert all("diff" not in c for c in changes)
    assert admin.get("/api/otus/nothere/history").status_code == 404


# ---------------------------------------------------------------- listing


def test_find_otus_in_a_reference(admin, ref, otu):
    add_otu(admin, ref["id"], name="Abaca bunchy top virus", abbreviation="ABTV")
    admin.post(f"/api/refs/{ref['id']}/otus", json={"name": "Empty virus"})
    body = admin.get(f"/api/refs/{ref['id']}/otus").json
    assert [d["name"] for d in body["documents"]] == ["Abaca bunchy top virus", "Empty virus", "Foo virus"]
    assert set(body["documents"][0]) == {"id", "name", "abbreviation", "reference", "verified", "version"}
    assert body["total_count"] == 3 and body["found_count"] == 3 and body["modified_count"] == 3
    assert [d["name"] for d in admin.get(f"/api/refs/{ref['id']}/otus?find=abtv").json["documents"]] == [
        "Abaca bunchy top virus"
    ]
    assert [d["name"] for d in admin.get(f"/api/refs/{ref['id']}/otus?verified=false").json["documents"]] == [
        "Empty virus"
    ]
    paged = admin.get(f"/api/refs/{ref['id']}/otus?per_page=2&page=2").json
    assert [d["name"] for d in paged["documents"]] == ["Foo virus"] and paged["page_count"] == 2


def test_find_otu_names(admin, ref, otu):
    names = admin.get(f"/api/refs/{ref['id']}/otus?names=true").json
    assert names == [{"id": otu["id"], "name": "Foo virus"}]


def test_find_treats_the_term_literally(admin, ref, otu):
    assert admin.get(f"/api/refs/{ref['id']}/otus?find=.*").json["found_count"] == 0
    assert admin.get(f"/api/refs/{ref['id']}/otus?verified=perhaps").status_code == 422


def test_find_all_otus_lists_visible_references_only(admin, make_user, ref, otu):
    public = create_ref(admin, name="Public", public=True)
    add_otu(admin, public["id"], name="Public virus", abbreviation="PUV")
    user = make_user("reader")
    assert [d["name"] for d in user.get("/api/otus").json["documents"]] == ["Public virus"]
    assert admin.get("/api/otus").json["found_count"] == 2


# ---------------------------------------------------------------- FASTA


def test_fasta_downloads(admin, otu):
    isolate = otu["isolates"][0]
    sequence = isolate["sequences"][0]
    expected = f">Foo virus|Isolate A|{sequence['id']}|10\nACGTACGTAC\n"
    for url in (
        f"/download/otus/{otu['id']}",
        f"/download/otus/{otu['id']}/isolates/{isolate['id']}",
        f"/download/sequences/{sequence['id']}",
    ):
        response = admin.get(url)
        assert response.status_code == 200 and response.data.decode() == expected
        assert ".fa" in response.headers["Content-Disposition"]
    assert admin.get("/download/sequences/nothere").status_code == 404


# ---------------------------------------------------------------- rights


OTU_WRITES = [
    ("patch", "{otu}", {"name": "Renamed virus"}),
    ("delete", "{otu}", None),
    ("post", "{otu}/isolates", {"source_type": "isolate", "source_name": "B"}),
    ("patch", "{otu}/isolates/{isolate}", {"source_name": "C"}),
    ("put", "{otu}/isolates/{isolate}/default", None),
    ("delete", "{otu}/isolates/{isolate}", None),
    ("post", "{otu}/isolates/{isolate}/sequences", {"accession": "X", "definition": "X", "sequence": "ACGT"}),
    ("patch", "{otu}/isolates/{isolate}/sequences/{sequence}", {"host": "Wheat"}),
    ("delete", "{otu}/isolates/{isolate}/sequences/{sequence}", None),
]


def user_with(make_user, admin, ref_id, granted):
    user = make_user()
    admin.post(f"/api/refs/{ref_id}/users", json={"user_id": user.id, **{r: r in granted for r in RIGHTS}})
    return user


def write_url(path, otu):
    isolate = otu["isolates"][0]
    return "/api/otus/" + path.format(otu=otu["id"], isolate=isolate["id"], sequence=isolate["sequences"][0]["id"])


@pytest.mark.parametrize("method, path, body", OTU_WRITES)
def test_otu_writes_are_403_without_modify_otu(admin, make_user, ref, otu, method, path, body):
    user = user_with(make_user, admin, ref["id"], [r for r in RIGHTS if r != "modify_otu"])
    response = getattr(user, method)(write_url(path, otu), json=body)
    assert response.status_code == 403
    assert response.json == {"id": "insufficient_rights", "message": "Insufficient rights"}
    assert admin.get(otu_url(otu)).json["version"] == otu["version"]


@pytest.mark.parametrize("method, path, body", OTU_WRITES)
def test_otu_writes_pass_with_modify_otu(admin, make_user, ref, otu, method, path, body):
    user = user_with(make_user, admin, ref["id"], ["modify_otu"])
    response = getattr(user, method)(write_url(path, otu), json=body)
    assert response.status_code in (200, 201, 204), response.json
    # Making the default isolate the default again changes nothing; every other write is a change.
    if method != "put" and not (method == "delete" and path == "{otu}"):
        assert admin.get(otu_url(otu)).json["most_recent_change"]["user"] == {"id": user.id}


@pytest.mark.parametrize(
    "path",
    ["{otu}", "{otu}/isolates", "{otu}/isolates/{isolate}", "{otu}/isolates/{isolate}/sequences", "{otu}/history"],
)
def test_otu_reads_need_read_access(admin, make_user, ref, otu, path):
    outsider = make_user()
    assert outsider.get(write_url(path, otu)).status_code == 403
    reader = user_with(make_user, admin, ref["id"], [])
    assert reader.get(write_url(path, otu)).status_code == 200


def test_create_otu_needs_modify_otu(admin, make_user, ref):
    user = user_with(make_user, admin, ref["id"], ["modify", "build", "remove"])
    assert user.post(f"/api/refs/{ref['id']}/otus", json={"name": "X"}).status_code == 403
