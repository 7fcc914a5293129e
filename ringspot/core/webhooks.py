"""Webhooks: URLs that receive signed POSTs when events happen."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
from urllib.parse import urlsplit

from pymongo.database import Database

from .errors import NotFound
from .pagination import paginate
from .utils import ago, new_id, now

SIGNATURE_HEADER = "X-Ringspot-Signature"
EVENT_HEADER = "X-Ringspot-Event"
DELIVERY_HEADER = "X-Ringspot-Delivery"


class ReceiverRefused(ValueError):
    """A webhook URL whose host resolves to an address deliveries may not reach."""


def check_receiver(url: str, allow_private: bool) -> None:
    """Refuse receivers on loopback, link-local, private or otherwise internal addresses.

    A webhook is a request the server makes on a user's behalf: without this a webhook could probe
    the service's own ports, the cloud metadata address or the lab's internal network. Every
    address the host resolves to is checked, at each delivery (DNS answers change).
    """
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as error:
        raise ReceiverRefused(f"Cannot resolve the receiver's host {host!r}: {error}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            raise ReceiverRefused(f"The receiver's address {address} is not public (loopback, link-local or private)")


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the body>``, what receivers recompute to trust a delivery."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode_payload(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


def create_webhook(db: Database, url: str, events: list[str], user_id: str, secret: str | None = None) -> dict:
    hook = {
        "_id": new_id(),
        "url": url,
        "events": sorted(set(events)),
        "secret": secret or secrets.token_hex(24),
        "active": True,
        "user": {"id": user_id},
        "created_at": now(),
    }
    db.webhooks.insert_one(hook)
    return hook


def find_webhooks(db: Database) -> list[dict]:
    return list(db.webhooks.find({}).sort("created_at", 1))


def get_webhook_or_404(db: Database, webhook_id: str) -> dict:
    hook = db.webhooks.find_one({"_id": webhook_id})
    if hook is None:
        raise NotFound()
    return hook


def edit_webhook(db: Database, webhook_id: str, changes: dict) -> dict:
    get_webhook_or_404(db, webhook_id)
    if "events" in changes:
        changes["events"] = sorted(set(changes["events"]))
    if changes:
        db.webhooks.update_one({"_id": webhook_id}, {"$set": changes})
    return get_webhook_or_404(db, webhook_id)


def remove_webhook(db: Database, webhook_id: str) -> None:
    get_webhook_or_404(db, webhook_id)
    db.webhooks.delete_one({"_id": webhook_id})
    db.webhook_deliveries.delete_many({"webhook_id": webhook_id, "state": "pending"})


def find_deliveries(db: Database, webhook_id: str, *, page: int, per_page: int) -> dict:
    return paginate(
        db.webhook_deliveries, {"webhook_id": webhook_id}, page=page, per_page=per_page, sort=[("created_at", -1)]
    )


def pending_delivery(db: Database, delivery_id: str) -> tuple[dict, dict] | None:
    """A delivery still to send and its webhook; None once it was sent (a redelivered message) or the hook is gone."""
    delivery = db.webhook_deliveries.find_one({"_id": delivery_id})
    if delivery is None or delivery["state"] != "pending":
        return None
    hook = db.webhooks.find_one({"_id": delivery["webhook_id"]})
    return None if hook is None else (delivery, hook)


def record_attempt(db: Database, delivery_id: str, *, status: int | None, error: str | None, final: bool) -> None:
    """Store the outcome of one attempt; the delivery is ``delivered``, ``pending`` (will retry) or ``failed``."""
    delivered = status is not None and 200 <= status < 300
    state = "delivered" if delivered else ("failed" if final else "pending")
    db.webhook_deliveries.update_one(
        {"_id": delivery_id},
        {
            "$set": {"state": state, "last_status": status, "last_error": error, "updated_at": now()},
            "$inc": {"attempts": 1},
        },
    )
    delivery = db.webhook_deliveries.find_one({"_id": delivery_id}, {"webhook_id": 1})
    if delivery:
        db.webhooks.update_one(
            {"_id": delivery["webhook_id"]},
            {"$set": {"last_delivery": {"state": state, "status": status, "at": now()}}},
        )


def stale_pending(db: Database, older_than: int) -> list[str]:
    """Pending deliveries not touched for ``older_than`` seconds: their message was lost."""
    cutoff = ago(older_than)
    return [
        d["_id"] for d in db.webhook_deliveries.find({"state": "pending", "updated_at": {"$lt": cutoff}}, {"_id": 1})
    ]
