"""Webhook deliveries reach only public receivers and never follow a redirect."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ringspot.core import processes, webhooks

from ..conftest import wait_for
from .test_webhooks import Receiver


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/x", "http://[::1]/x", "http://169.254.169.254/latest", "http://10.1.2.3/x"]
)
def test_internal_addresses_are_refused(url):
    with pytest.raises(webhooks.ReceiverRefused, match="not public"):
        webhooks.check_receiver(url, allow_private=False)
    webhooks.check_receiver(url, allow_private=True)


def test_a_public_address_is_accepted():
    webhooks.check_receiver("https://8.8.8.8/hook", allow_private=False)


def finish_a_process(db) -> None:
    doc, _ = processes.create_process(db, "delete_reference", user_id="admin")
    processes.finish(db, doc["_id"], "complete")


def test_a_delivery_to_loopback_fails_at_once_and_sends_nothing(admin, stub_worker, db):
    receiver = Receiver()
    try:
        hook = admin.post("/api/webhooks", json={"url": receiver.url, "events": ["process.complete"]}).json
        finish_a_process(db)
        delivery = wait_for(lambda: db.webhook_deliveries.find_one({"webhook_id": hook["id"], "state": "failed"}))
        assert delivery["attempts"] == 1 and "not public" in delivery["last_error"]
        assert receiver.received == []
    finally:
        receiver.close()


def test_a_redirect_is_not_followed(admin, stub_worker, db, monkeypatch):
    monkeypatch.setenv("RINGSPOT_WEBHOOKS_ALLOW_PRIVATE", "1")
    elsewhere = Receiver()

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(307)
            self.send_header("Location", elsewhere.url)
            self.end_headers()

        def log_message(self, *args):
            pass

    redirecting = HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=redirecting.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{redirecting.server_port}/hook"
        hook = admin.post("/api/webhooks", json={"url": url, "events": ["process.complete"]}).json
        finish_a_process(db)
        delivery = wait_for(lambda: db.webhook_deliveries.find_one({"webhook_id": hook["id"], "attempts": 1}))
        assert delivery["last_status"] == 307 and delivery["state"] != "delivered"
        assert elsewhere.received == []
    finally:
        redirecting.shutdown()
        elsewhere.close()
