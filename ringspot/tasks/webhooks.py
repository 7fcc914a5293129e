"""``deliver_webhook``: POST one signed event to its receiver, retrying with backoff."""

from __future__ import annotations

import requests
from dramatiq.middleware import CurrentMessage

from ..core import events, webhooks
from ..core.db import connect
from ..core.settings import from_env
from ..workers import queues
from ..workers.runtime import actor

MAX_RETRIES = 5
TIMEOUT = 10


class DeliveryFailed(RuntimeError):
    pass


@actor(
    queue_name=queues.WEBHOOKS,
    max_retries=MAX_RETRIES,
    min_backoff=1_000,
    max_backoff=60_000,
    time_limit=60_000,
    throws=(),
)
def deliver_webhook(delivery_id: str) -> None:
    db = connect(from_env().mongodb_uri)
    pending = webhooks.pending_delivery(db, delivery_id)
    if pending is None:
        return  # delivered already (a redelivered message) or the webhook was removed
    delivery, hook = pending
    message = CurrentMessage.get_current_message()
    final = message is None or message.options.get("retries", 0) >= MAX_RETRIES
    body = webhooks.encode_payload(delivery["payload"])
    headers = {
        "Content-Type": "application/json",
        webhooks.SIGNATURE_HEADER: webhooks.sign(hook["secret"], body),
        webhooks.EVENT_HEADER: delivery["event"],
        webhooks.DELIVERY_HEADER: delivery_id,
    }
    try:
        webhooks.check_receiver(hook["url"], from_env().webhooks_allow_private)
    except webhooks.ReceiverRefused as refused:
        webhooks.record_attempt(db, delivery_id, status=None, error=str(refused), final=True)
        return  # no retry changes where the URL points
    status, error = None, None
    try:
        # A redirect is an answer, not a delivery: following it would send the payload elsewhere.
        response = requests.post(hook["url"], data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
        status = response.status_code
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"
    webhooks.record_attempt(db, delivery_id, status=status, error=error, final=final)
    if status is None or not 200 <= status < 300:
        raise DeliveryFailed(error or f"receiver answered {status}")  # Retries sends it again later


def install_dispatcher() -> None:
    """Make ``core.events.emit`` enqueue deliveries on this process's broker."""
    events.set_dispatcher(lambda delivery_id: deliver_webhook.send(delivery_id))
