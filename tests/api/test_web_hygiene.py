"""Web hygiene: trusted host names, Secure cookies behind HTTPS, creators keep their references,
no shared gunicorn control socket."""

from ringspot.api import create_app
from ringspot.core import auth

from ..conftest import ROOT

PASSWORD = "hunter2hunter2"


def test_requests_for_untrusted_host_names_are_refused(settings, db):
    client = create_app(settings.with_(trusted_hosts=("ringspot.example",))).test_client()
    auth.create_user(db, "alice", PASSWORD)
    _, key = auth.create_api_key(db, db.users.find_one({"_id": "alice"}), "k", {})
    forged = client.get("/api/processes?per_page=1", auth=("alice", key), headers={"Host": "evil.example"})
    assert forged.status_code == 400
    trusted = client.get("/api/processes?per_page=1", auth=("alice", key), headers={"Host": "ringspot.example"})
    assert trusted.status_code == 200
    assert "evil.example" not in str(trusted.headers)


def test_session_cookies_are_secure_when_the_service_is_behind_https(settings, db):
    auth.create_user(db, "alice", PASSWORD)
    for secure in (False, True):
        client = create_app(settings.with_(secure_cookies=secure)).test_client()
        response = client.post("/api/account/login", json={"username": "alice", "password": PASSWORD})
        cookies = response.headers.getlist("Set-Cookie")
        assert len(cookies) == 2 and all(("; Secure" in c) is secure for c in cookies)


def test_a_reference_creator_keeps_every_right(make_user):
    creator = make_user("creator", permissions=["create_ref"])
    modifier = make_user("modifier")
    ref = creator.post("/api/refs", json={"name": "Mine", "data_type": "genome"}).json
    added = creator.post(f"/api/refs/{ref['id']}/users", json={"user_id": "modifier", "modify": True})
    assert added.status_code == 201, added.json
    stripped = modifier.patch(f"/api/refs/{ref['id']}/users/creator", json={"modify": False, "build": False})
    assert stripped.status_code == 409
    assert stripped.json["message"] == "The reference's creator keeps every right"
    assert modifier.delete(f"/api/refs/{ref['id']}/users/creator").status_code == 409
    rights = creator.get(f"/api/refs/{ref['id']}/users/creator").json
    assert all(rights[right] for right in ("build", "modify", "modify_otu", "remove"))
    # Other members' rights still change as before.
    assert modifier.patch(f"/api/refs/{ref['id']}/users/modifier", json={"build": True}).status_code == 200


def test_gunicorn_runs_without_a_control_socket_shared_between_stacks():
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    assert "--no-control-socket" in web
