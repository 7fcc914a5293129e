"""Broker set-up: Redis by default, RabbitMQ for ``amqp://`` URLs, the stub broker in tests.

Actors bind to the broker that is global when their module is imported, so
``configure`` runs before any ``tasks`` module is loaded (``viroscope.tasks`` does it).
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage, Retries

from ..core.settings import Settings, from_env
from .middleware import ProcessBookkeeping

_configured: dramatiq.Broker | None = None

#: Redis broker: a consumer that stops heart-beating for this long (ms) is presumed dead and
#: its unacknowledged messages go back on the queue ...
REDIS_HEARTBEAT_TIMEOUT_MS = 30_000
#: ... the next time some consumer runs maintenance: 1 broker command in 10 does, so a
#: crashed worker's message is redelivered within seconds of the heartbeat timeout.
REDIS_MAINTENANCE_CHANCE = 100_000  # out of a million


def build_broker(url: str) -> dramatiq.Broker:
    if url == "stub":
        broker = StubBroker()
        broker.emit_after("process_boot")
        return broker
    if url.startswith("amqp://"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Confirmed publishes: a 202 from the API means RabbitMQ holds the message.
        return RabbitmqBroker(url=url, confirm_delivery=True)
    from dramatiq.brokers.redis import RedisBroker

    return RedisBroker(url=url, heartbeat_timeout=REDIS_HEARTBEAT_TIMEOUT_MS, maintenance_chance=REDIS_MAINTENANCE_CHANCE)


def configure(settings: Settings | None = None) -> dramatiq.Broker:
    """Create and install the global broker once per process."""
    global _configured
    if _configured is None:
        settings = settings or from_env()
        broker = build_broker(settings.effective_broker_url)
        # Before Retries: ``after_*`` hooks run in reverse order, so this one sees Retries' verdict.
        broker.add_middleware(ProcessBookkeeping(), before=Retries)
        broker.add_middleware(CurrentMessage())
        dramatiq.set_broker(broker)
        _configured = broker
    return _configured


def is_stub() -> bool:
    return os.environ.get("BROKER_URL") == "stub"
