"""Sign-in resists guessing: throttled per user name and per address, no timing oracle, strong
passwords, enforced password resets, an administrator always left, retired user names."""

import statistics
import time

import pytest

from ringspot.api import create_app
from ringspot.core import auth
from ringspot.core.errors import Conflict

PASSWORD = "hunter2hunter2"


@pytest.fixture
def throttled(settings, redis_server, db):
    """An app whose sign-in limits are counted in a real Redis, and a user to guess at."""
    app = create_app(settings.with_(redis_url=redis_server))
    auth.create_user(db, "alice", PASSWORD)
    return app.test_client()


def sign_in(client, username, password, address="10.0.0.1"):
    return client.post(
        "/api/account/login",
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_failed_sign_ins_on_one_user_name_are_throttled_from_every_address(throttled):
    for attempt in range(10):
        assert sign_in(throttled, "alice", "wrong-password", address=f"10.0.1.{attempt}").status_code == 400
    refused = sign_in(throttled, "alice", PASSWORD, address="10.0.2.1")
    assert refused.status_code == 429
    assert refused.json == {"id": "too_many_requests", "message": "Too many sign-in attempts; try again later"}
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    # Another user is not locked out by guesses at alice.
    assert sign_in(throttled, "bob", "wrong-password", address="10.0.2.2").status_code == 400


def test_sign_ins_from_one_address_are_throttled_whatever_the_user_name(throttled):
    answers = [sign_in(throttled, f"someone{n}", "wrong-password", address="10.0.3.1").status_code for n in range(31)]
    assert answers[:30] == [400] * 30 and answers[30] == 429
    assert sign_in(throttled, "alice", PASSWORD, address="10.0.3.2").status_code == 201


def test_unknown_user_names_cost_the_same_work_as_wrong_passwords(client, db):
    auth.create_user(db, "alice", PASSWORD)

    def median_seconds(username):
        times = []
        for _ in range(5):
            started = time.perf_counter()
            assert sign_in(client, username, "wrong-password").status_code == 400
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    known, unknown = median_seconds("alice"), median_seconds("nobody-by-this-name")
    print(f"wrong password {known * 1000:.0f} ms, unknown user {unknown * 1000:.0f} ms")
    assert unknown > 0.6 * known


@pytest.mark.parametrize(
    ("password", "message"),
    [
        (" " * 12, "Password must not be blank"),
        ("short-one", "Password does not meet minimum length requirement (10)"),
        ("password123", "Password is too easy to guess; choose another"),
        ("QwertyUiop", "Password is too easy to guess; choose another"),
        ("carol-user", "Password is too easy to guess; choose another"),
    ],
)
def test_weak_passwords_are_refused(admin, password, message):
    response = admin.post("/api/users", json={"user_id": "carol-user", "password": password})
    assert response.status_code == 400
    assert response.json["message"] == message
    assert admin.get("/api/users/carol-user").status_code == 404


def test_weak_password_is_refused_on_a_password_change(plain_user):
    response = plain_user.patch("/api/account", json={"old_password": PASSWORD, "password": "1234567890"})
    assert response.status_code == 400 and "easy to guess" in response.json["message"]


def test_a_forced_reset_allows_only_the_password_change(plain_user, db):
    db.users.update_one({"_id": plain_user.id}, {"$set": {"force_reset": True}})
    auth.forget_api_keys()
    refused = plain_user.get("/api/samples")
    assert refused.status_code == 403
    assert refused.json["message"].startswith("Password change required")
    assert plain_user.post("/api/account/keys", json={"name": "another"}).status_code == 403
    assert plain_user.get("/api/account").json["force_reset"] is True

    changed = plain_user.patch("/api/account", json={"old_password": PASSWORD, "password": "a-new-long-secret"})
    assert changed.status_code == 200 and changed.json["force_reset"] is False
    assert plain_user.get("/api/samples").status_code == 200


def test_the_last_administrator_can_be_neither_demoted_nor_removed(admin, make_user, db):
    other = make_user("second-admin", administrator=True)
    assert other.patch("/api/users/admin", json={"administrator": False}).status_code == 200
    refused = other.patch("/api/users/second-admin", json={"administrator": False})
    assert refused.status_code == 409
    assert refused.json["message"] == "The last administrator cannot be demoted"
    assert db.users.find_one({"_id": "second-admin"})["administrator"]
    with pytest.raises(Conflict, match="cannot be removed"):
        auth.remove_user(db, "second-admin")
    assert db.users.find_one({"_id": "second-admin"})


def test_a_removed_user_name_cannot_be_taken_again(admin, make_user):
    make_user("dana")
    assert admin.delete("/api/users/dana").status_code == 204
    again = admin.post("/api/users", json={"user_id": "dana", "password": "a-long-secret-1"})
    assert again.status_code == 400
    assert again.json["message"] == "User name belonged to a removed user; choose another"
