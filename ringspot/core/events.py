"""Events (``process.complete``, ``index.ready`` ...) recorded as webhook deliveries.

``emit`` writes one delivery per subscribed webhook, then hands its id to the dispatcher
that the API and the workers install at start (it enqueues the delivery actor). A
delivery whose hand-off failed is still in the database, and the scheduler's sweep
sends it later, so no event is lost when the broker is briefly away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pymongo.database import Database

from .utils import new_id, now, to_json

EVENTS = ("process.complete", "process.error", "analysis.ready", "index.ready", "sample.ready")

log = logging.getLogger("ringspot.events")
_dispatch: Callable[[str], None] | None = None


def set_dispatcher(dispatch: Callable[[str], None] | None) -> None:
    global _dispatch
    _dispatch = dispatch


def emit(db: Database, event: str, data: dict) -> list[str]:
    """Record ``event`` for every webhook subscribed to it and dispatch the deliveries."""
    ids = []
    for hook in db.webhooks.find({"events": event, "active": True}, {"_id": 1}):
        delivery = {
            "_id": new_id(),
            "webhook_id": hook["_id"],
            "event": event,
            "payload": {"event": event, "created_at": now(), "data": to_json(data)},
            "state": "pending",
            "attempts": 0,
            "last_status": None,
            "last_error": None,
            "created_at": now(),
            "updated_at": now(),
        }
        db.webhook_deliveries.insert_one(delivery)
        ids.append(delivery["_id"])
    for delivery_id in ids:
        dispatch(delivery_id)
    return ids


def dispatch(delivery_id: str) -> None:
    if _dispatch is None:
        return
    try:
        _dispatch(delivery_id)
    except Exception:  # the sweep picks it up later
        log.warning("webhook_dispatch_failed delivery_id=%s", delivery_id, exc_info=True)
