"""Housekeeping actors."""

from ..core import events, jobs, processes, webhooks
from ..core.db import connect
from ..core.settings import from_env
from ..workers import queues
from ..workers.runtime import actor

#: A process silent for this many heartbeat timeouts has lost its message too: fail it.
ABANDONED_FACTOR = 10


@actor(queue_name=queues.MAINTENANCE, max_retries=0, time_limit=60_000)
def reap_processes() -> int:
    """Fail processes whose worker died long ago and whose message was never redelivered.

    A crashed run's message comes back through the broker within the heartbeat timeout
    and is claimed again; one still silent after ``ABANDONED_FACTOR`` timeouts never will be.
    """
    settings = from_env()
    db = connect(settings.mongodb_uri)
    reaped = 0
    for doc in processes.stale_running(db, settings.heartbeat_timeout * ABANDONED_FACTOR):
        jobs.finish_job(
            db, settings.data_path, doc["_id"], "error", "The worker running this process stopped responding"
        )
        reaped += 1
    return reaped


#: A pending delivery untouched this long lost its message (retries back off to 60 s).
LOST_DELIVERY_AFTER = 300


@actor(queue_name=queues.MAINTENANCE, max_retries=0, time_limit=60_000)
def sweep_webhooks() -> int:
    """Send again the webhook deliveries whose message was lost (e.g. the broker was down)."""
    db = connect(from_env().mongodb_uri)
    lost = webhooks.stale_pending(db, LOST_DELIVERY_AFTER)
    for delivery_id in lost:
        events.dispatch(delivery_id)
    return len(lost)
