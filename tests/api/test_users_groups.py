"""Administrators manage users and groups; group permissions flow to members."""

import pytest


def test_first_administrator_comes_from_settings(settings, monkeypatch, db):
    from ringspot.api import create_app

    create_app(settings.with_(admin_user="boss", admin_password="correct-horse"))
    user = db.users.find_one({"_id": "boss"})
    assert user["administrator"] is True
    assert user["password"].startswith("scrypt$")
    # A second start does not create or change anything.
    create_app(settings.with_(admin_user="other", admin_password="correct-horse"))
    assert db.users.count_documents({}) == 1


def test_admin_creates_user(admin):
    response = admin.post("/api/users", json={"user_id": "carol", "password": "longenough", "force_reset": False})
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/users/carol"
    assert "password" not in response.json
    assert (
        admin.post("/api/users", json={"user_id": "carol", "password": "longenough"}).json["message"]
        == "User already exists"
    )


def test_short_password_is_rejected(admin):
    response = admin.post("/api/users", json={"user_id": "dave", "password": "short"})
    assert response.status_code == 400
    assert "minimum length" in response.json["message"]


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/users"),
        ("post", "/api/users"),
        ("patch", "/api/users/admin"),
        ("post", "/api/groups"),
        ("patch", "/api/groups/x"),
        ("delete", "/api/groups/x"),
    ],
)
def test_returns_403_without_administrator(plain_user, method, path):
    response = getattr(plain_user, method)(path, json={})
    assert response.status_code == 403
    assert response.json["id"] == "not_permitted"


def test_group_permissions_reach_members(admin, make_user, client):
    make_user("erin")
    assert admin.post("/api/groups", json={"group_id": "techs"}).status_code == 201
    assert admin.post("/api/groups", json={"group_id": "techs"}).json["message"] == "Group already exists"
    response = admin.patch("/api/groups/techs", json={"permissions": {"create_sample": True}})
    assert response.json["permissions"]["create_sample"] is True
    assert admin.patch("/api/users/erin", json={"groups": ["techs"]}).json["permissions"]["create_sample"] is True
    admin.patch("/api/groups/techs", json={"permissions": {"create_sample": False}})
    assert admin.get("/api/users/erin").json["permissions"]["create_sample"] is False
    assert admin.delete("/api/groups/techs").status_code == 204
    assert admin.get("/api/users/erin").json["groups"] == []


def test_user_in_unknown_group_is_400(admin, make_user):
    make_user("frank")
    response = admin.patch("/api/users/frank", json={"groups": ["ghosts"]})
    assert response.status_code == 400
    assert "ghosts" in response.json["message"]


def test_unknown_user_is_404(admin):
    assert admin.get("/api/users/nobody").json == {"id": "not_found", "message": "Not found"}
