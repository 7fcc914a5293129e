"""The browser client's pages, served in-process: who is sent to sign in, who gets a 404 page,
and that every page renders what the API holds (the browser tests drive the same pages live)."""

from __future__ import annotations

import pytest

from ringspot.core import auth

from ..analyses_data import RPRSV_READS, insert_reference, insert_sample

PASSWORD = "hunter2hunter2"


def sign_in(client, db, user_id: str, **fields):
    auth.create_user(db, user_id, PASSWORD, administrator=fields.pop("administrator", False))
    if fields:
        db.users.update_one({"_id": user_id}, {"$set": fields})
    response = client.post("/api/account/login", json={"username": user_id, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return client


@pytest.fixture
def admin_client(app, db):
    return sign_in(app.test_client(), db, "admin", administrator=True)


@pytest.mark.parametrize("path", ["/samples", "/jobs", "/refs", "/samples/abc123", "/analyses/x", "/"])
def test_a_visitor_who_has_not_signed_in_is_sent_to_sign_in_and_back(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    if path != "/":
        assert response.headers["Location"] == f"/login?next={path}"


def test_the_sign_in_page_and_its_assets_need_no_session(client):
    page = client.get("/login?next=/jobs")
    assert page.status_code == 200
    assert 'for="username"' in page.text and 'for="password"' in page.text
    assert 'data-then="/jobs"' in page.text
    assert client.get("/assets/ringspot.js").status_code == 200
    assert client.get("/assets/vendor/htmx.min.js").status_code == 200


def test_sign_in_goes_back_only_to_a_path_of_this_site(client):
    assert 'data-then="/samples"' in client.get("/login?next=//evil.example/x").text


def test_a_sample_the_user_may_not_read_is_a_404_page(app, db, settings):
    sample = insert_sample(
        db, settings.data_path, RPRSV_READS, user_id="someone_else", all_read=False, group_read=False
    )
    client = sign_in(app.test_client(), db, "reader")
    response = client.get(f"/samples/{sample['_id']}")
    assert response.status_code == 404
    assert "Not found" in response.text and "<html" in response.text
    # The same answer as for a sample that does not exist: nothing tells them apart.
    missing = client.get("/samples/nosuchid")
    assert missing.status_code == 404 and missing.text == response.text
    assert sample["name"] not in client.get("/samples").text


def test_samples_page_searches_and_filters_by_label(admin_client, db, settings):
    first = insert_sample(db, settings.data_path, RPRSV_READS[:1])
    second = insert_sample(db, settings.data_path, RPRSV_READS[:1])
    db.samples.update_one({"_id": first["_id"]}, {"$set": {"name": "Raspberry leaf 1", "labels": ["field"]}})
    db.samples.update_one({"_id": second["_id"]}, {"$set": {"name": "Grape 7"}})
    page = admin_client.get("/samples?find=raspberry").text
    assert "Raspberry leaf 1" in page and "Grape 7" not in page
    page = admin_client.get("/samples?label=field").text
    assert "Raspberry leaf 1" in page and "Grape 7" not in page
    page = admin_client.get("/samples?page=oops").text  # a bad page number falls back to the first
    assert "Grape 7" in page and 'id="create-sample"' in page


def test_a_reference_page_lists_otus_history_and_offers_a_build(admin_client, db):
    ref = insert_reference(db, "Plant viruses")
    page = admin_client.get(f"/refs/{ref['_id']}")
    assert page.status_code == 200
    assert "Plant viruses" in page.text and "Build an index" in page.text
    assert admin_client.get("/refs").text.count("Plant viruses") == 1
