"""Careless and hostile input ends in a 4xx that names the problem, never a 5xx and never half a write.

Huge page numbers and versions, oversized and deeply nested JSON (before sign-in too), bodies
that are not declared as JSON, user ids and names that would break credentials or logs, and a
field larger than a database document may be.
"""

import json

import pytest

from ringspot.api.validation import MAX_JSON_DEPTH, PageQuery
from ringspot.core.pagination import MAX_PAGE

from ..common import post_upload
from ..reference_helpers import add_otu, create_ref

HUGE = "99999999999999999999"


def list_routes(app) -> list[str]:
    """Every route whose view takes a page of a list, with any ids filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        model = getattr(app.view_functions[rule.endpoint], "openapi", {}).get("query")
        if rule.rule.startswith("/api") and model is not None and issubclass(model, PageQuery):
            found.append(rule.rule.replace("<", "").replace(">", ""))
    return sorted(found)


def test_every_list_route_bounds_page_and_per_page(app, admin):
    routes = list_routes(app)
    assert len(routes) >= 17
    for route in routes:
        for parameter in ("page", "per_page"):
            response = admin.get(f"{route}?{parameter}={HUGE}")
            assert response.status_code == 422, (route, parameter, response.status_code)
            assert parameter in response.json["errors"], route
    assert admin.get(f"/api/refs?page={MAX_PAGE}").status_code == 200
    assert admin.get(f"/api/refs?page={MAX_PAGE + 1}").status_code == 422


def test_index_version_of_an_export_is_bounded(admin):
    ref = create_ref(admin)
    response = admin.get(f"/api/refs/{ref['id']}/export?index_version={HUGE}")
    assert response.status_code == 422 and "index_version" in response.json["errors"]


def test_json_bodies_over_the_limit_are_413_before_sign_in_too(client, admin):
    big = {"username": "admin", "password": "x" * (1024**2)}
    response = client.post("/api/account/login", json=big)
    assert (response.status_code, response.json["id"]) == (413, "payload_too_large")
    assert str(1024**2) in response.json["message"]
    response = admin.post("/api/refs", json={"name": "n" * (1024**2)})
    assert response.status_code == 413
    # Files are not JSON: they keep the upload limit.
    assert post_upload(admin, "big.fa", b">a\n" + b"A" * (2 * 1024**2), "subtraction").status_code == 201


def test_the_json_limit_is_a_setting(app, client, admin, settings):
    app.extensions["ringspot.settings"] = settings.with_(max_json_bytes=2000)
    assert admin.post("/api/refs", json={"name": "n" * 3000}).status_code == 413
    assert admin.post("/api/refs", json={"name": "n" * 1000}).status_code == 201


@pytest.mark.parametrize("depth", [50_000, MAX_JSON_DEPTH + 1])
def test_deeply_nested_json_is_400_before_sign_in_too(client, admin, depth):
    nested = "[" * depth + "]" * depth
    for call in (
        lambda: client.post("/api/account/login", data=nested, content_type="application/json"),
        lambda: admin.post("/api/refs", data=nested, content_type="application/json"),
    ):
        response = call()
        assert (response.status_code, response.json["id"]) == (400, "invalid_json")
        assert f"nested deeper than {MAX_JSON_DEPTH} levels" in response.json["message"]


def test_nesting_within_the_limit_reaches_validation(admin):
    nested = {"name": "x", "description": json.loads("[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1))}
    response = admin.post("/api/refs", json=nested)
    assert (response.status_code, response.json["id"]) == (422, "invalid_input")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
)
def test_json_bodies_must_say_they_are_json(client, admin, content_type):
    """A browser posts these types across sites without asking first; they are never read as JSON."""
    body = json.dumps({"name": "Cross-site"})
    headers = {"Content-Type": content_type} if content_type else {}
    response = admin.post("/api/refs", data=body, headers=headers)
    assert (response.status_code, response.json["id"]) == (415, "unsupported_media_type"), content_type
    login = client.post("/api/account/login", data=json.dumps({"username": "admin", "password": "x"}), headers=headers)
    assert login.status_code == 415
    assert admin.get("/api/refs").json["found_count"] == 0
    assert admin.post("/api/refs", json={"name": "Same site"}).status_code == 201


BAD_IDS = ["", "a\nb", "a:b", "job-x", " bob", "bob ", "a/b", "x" * 65, "é"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_user_and_group_ids_and_key_names_share_one_pattern(admin, db, bad):
    for path, field in (("/api/users", "user_id"), ("/api/groups", "group_id"), ("/api/account/keys", "name")):
        body = {field: bad, "password": "a-long-password-1"} if field == "user_id" else {field: bad}
        response = admin.post(path, json=body)
        assert response.status_code == 422, (path, bad, response.status_code)
        assert field in response.json["errors"], (path, bad)
    assert db.users.count_documents({}) == 1 and db.groups.count_documents({}) == 0
    assert db.keys.count_documents({"name": bad}) == 0


def test_good_ids_pass_the_pattern(admin):
    assert admin.post("/api/users", json={"user_id": "lab.tech-1", "password": "a-long-password-1"}).status_code == 201
    assert admin.post("/api/groups", json={"group_id": "Lab_2"}).status_code == 201
    assert admin.post("/api/account/keys", json={"name": "laptop"}).status_code == 201


def test_a_field_too_large_to_store_changes_no_version(app, admin, db, settings):
    """Past the body limit a 17 MB sequence is a 413; with the limit raised, the store refuses it and
    the OTU keeps its version, its sequences and its history."""
    ref = create_ref(admin)
    otu = add_otu(admin, ref["id"])
    isolate = admin.post(f"/api/otus/{otu['id']}/isolates", json={"source_type": "isolate", "source_name": "A"}).json
    path = f"/api/otus/{otu['id']}/isolates/{isolate['id']}/sequences"
    body = {"accession": "X1", "definition": "huge", "sequence": "A" * (17 * 1024**2)}

    def state():
        version = admin.get(f"/api/otus/{otu['id']}").json["version"]
        return version, db.history.count_documents({}), db.sequences.count_documents({"otu_id": otu["id"]})

    before = state()

    assert admin.post(path, json=body).status_code == 413
    app.extensions["ringspot.settings"] = settings.with_(max_json_bytes=64 * 1024**2)
    response = admin.post(path, json=body)
    assert (response.status_code, response.json["id"]) == (413, "payload_too_large")

    assert state() == before
    assert admin.post(path, json={**body, "sequence": "ACGT"}).status_code == 201
