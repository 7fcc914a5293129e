"""Sessions, API keys and the caller's own account."""

import base64

import pytest


def test_login_sets_session_cookie_that_authenticates(client, admin):
    response = client.post("/api/account/login", json={"username": "admin", "password": "hunter2hunter2"})
    assert response.status_code == 201
    assert response.json == {"reset": False}
    assert client.get("/api/account").json["id"] == "admin"


def test_login_with_wrong_password_is_400(client, admin):
    response = client.post("/api/account/login", json={"username": "admin", "password": "wrong-password"})
    assert response.status_code == 400
    assert response.json == {"id": "bad_request", "message": "Invalid username or password"}
    assert client.get("/api/account").status_code == 401


def test_logout_ends_the_session(client, admin):
    client.post("/api/account/login", json={"username": "admin", "password": "hunter2hunter2"})
    assert client.post("/api/account/logout").status_code == 204
    assert client.get("/api/account").status_code == 401


def test_returns_401_without_credentials(client):
    response = client.get("/api/account")
    assert response.status_code == 401
    assert response.json == {"id": "requires_authorization", "message": "Requires authorization"}


@pytest.mark.parametrize(
    "header", ["Bearer abc", "Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode()]
)
def test_malformed_authorization_header_is_400(client, header):
    response = client.get("/api/account", headers={"Authorization": header})
    assert response.status_code == 400
    assert response.json["message"] == "Malformed Authorization header"


def test_wrong_api_key_is_401(client, admin):
    response = client.get("/api/account", auth=("admin", "not-the-key"))
    assert response.status_code == 401


def test_api_key_is_shown_once_and_stored_hashed(plain_user, db):
    response = plain_user.post("/api/account/keys", json={"name": "Laptop", "permissions": {}})
    assert response.status_code == 201
    raw = response.json["key"]
    assert len(raw) == 64
    stored = db.keys.find_one({"id": response.json["id"]})
    assert raw not in str(stored)
    listed = plain_user.get("/api/account/keys").json
    assert all("key" not in k for k in listed)
    assert plain_user.client.get("/api/account", auth=("plain", raw)).status_code == 200


def test_key_permissions_are_clipped_to_the_owner(plain_user):
    response = plain_user.post("/api/account/keys", json={"name": "k", "permissions": {"create_ref": True}})
    assert response.json["permissions"]["create_ref"] is False


def test_unknown_permission_is_422(plain_user):
    response = plain_user.post("/api/account/keys", json={"name": "k", "permissions": {"fly": True}})
    assert response.status_code == 422
    assert "fly" in response.json["message"]


def test_user_cannot_change_another_users_key(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    key_id = alice.post("/api/account/keys", json={"name": "mine"}).json["id"]
    assert bob.patch(f"/api/account/keys/{key_id}", json={"permissions": {}}).status_code == 404
    assert bob.delete(f"/api/account/keys/{key_id}").status_code == 404
    assert alice.get(f"/api/account/keys/{key_id}").status_code == 200


def test_password_change_needs_old_password(plain_user):
    bad = plain_user.patch("/api/account", json={"old_password": "nope", "password": "newpassword1"})
    assert bad.status_code == 400
    assert bad.json["message"] == "Invalid old password"
    good = plain_user.patch("/api/account", json={"old_password": "hunter2hunter2", "password": "newpassword1"})
    assert good.status_code == 200
    assert "password" not in good.json


@pytest.mark.parametrize(
    "body, status, field",
    [
        (b"{not json", 400, None),
        (b'{"name": 5}', 422, "name"),
        (b'{"name": "k", "surprise": 1}', 422, "surprise"),
        (b"[1, 2]", 422, "body"),
    ],
)
def test_bad_bodies_name_the_problem_and_write_nothing(plain_user, db, body, status, field):
    response = plain_user.post("/api/account/keys", data=body, content_type="application/json")
    assert response.status_code == status
    if field:
        assert field in response.json["errors"]
    assert db.keys.count_documents({"user.id": "plain"}) == 1  # only the fixture's key
