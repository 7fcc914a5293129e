"""Webhooks: registered by administrators, delivered signed, retried, recorded."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ringspot.core import events, processes

from ..conftest import wait_for


class Receiver:
    """A local HTTP server that records what it receives and answers with scripted statuses."""

    def __init__(self, statuses=(200,)):
        self.received, self.statuses = [], list(statuses)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture(autouse=True)
def local_receivers_allowed(monkeypatch):
    """These receivers listen on loopback, which deliveries refuse unless the setting allows it."""
    monkeypatch.setenv("RINGSPOT_WEBHOOKS_ALLOW_PRIVATE", "1")


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_delivery_is_signed_with_the_secret(admin, receiver, stub_worker, db):
    hook = admin.post("/api/webhooks", json={"url": receiver.url, "events": ["process.complete"]}).json
    assert hook["secret"] and admin.get(f"/api/webhooks/{hook['id']}").json.get("secret") is None
    doc, _ = processes.create_process(db, "delete_reference", user_id="admin")
    processes.finish(db, doc["_id"], "complete")
    wait_for(lambda: receiver.received, message="a delivery")
    headers, body = receiver.received[0]
    expected = "sha256=" + hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Ringspot-Signature"] == expected
    assert headers["X-Ringspot-Event"] == "process.complete"
    payload = json.loads(body)
    assert payload["data"]["process"]["id"] == doc["_id"] and payload["data"]["process"]["state"] == "complete"
    deliveries = wait_for(
        lambda: (
            (d := admin.get(f"/api/webhooks/{hook['id']}/deliveries").json)["documents"][0]["state"] == "delivered"
            and d
        )
    )
    assert deliveries["documents"][0]["last_status"] == 200


def test_unsubscribed_events_are_not_sent(admin, receiver, db):
    admin.post("/api/webhooks", json={"url": receiver.url, "events": ["index.ready"]})
    assert events.emit(db, "process.complete", {"x": 1}) == []


def test_failing_receiver_is_retried_then_delivered(admin, stub_worker, db, monkeypatch):

    receiver = Receiver(statuses=[500, 500, 200])
    try:
        hook = admin.post("/api/webhooks", json={"url": receiver.url, "events": ["process.error"]}).json
        doc, _ = processes.create_process(db, "delete_reference", user_id="admin")
        processes.finish(db, doc["_id"], "error", "boom")
        delivery = wait_for(
            lambda: (d := db.webhook_deliveries.find_one({"webhook_id": hook["id"]}))["state"] == "delivered" and d,
            timeout=30,
        )
        assert delivery["attempts"] == 3 and len(receiver.received) == 3
    finally:
        receiver.close()


@pytest.mark.parametrize("url", ["ftp://example.org/x", "not a url", "javascript:alert(1)"])
def test_non_http_urls_are_422(admin, url):
    response = admin.post("/api/webhooks", json={"url": url, "events": ["process.complete"]})
    assert response.status_code == 422
    assert "url" in response.json["errors"]


def test_unknown_event_is_422(admin, receiver):
    assert admin.post("/api/webhooks", json={"url": receiver.url, "events": ["moon.landing"]}).status_code == 422


def test_returns_403_for_non_administrators(plain_user, receiver):
    assert (
        plain_user.post("/api/webhooks", json={"url": receiver.url, "events": ["process.complete"]}).status_code == 403
    )
    assert plain_user.get("/api/webhooks").status_code == 403
