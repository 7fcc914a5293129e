"""Broker set-up: Redis by default, RabbitMQ for ``amqp://`` URLs, the stub broker in tests.

Actors bind to the broker that is global when their module is imported, so ``configure``
runs before any actor is declared: ``runtime.actor`` calls it. This module imports only the
middleware and the process run beneath it, never ``tasks``.
"""

from __future__ import annotations

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.brokers.stub import StubBroker
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import CurrentMessage, Retries
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from ..core.settings import Settings, from_env
from .middleware import ProcessBookkeeping

_configured: dramatiq.Broker | None = None

#: Redis broker: a consumer that stops heart-beating for this long (ms) is presumed dead and
#: its unacknowledged messages go back on the queue ...
REDIS_HEARTBEAT_TIMEOUT_MS = 30_000
#: ... the next time some consumer runs maintenance: 1 broker command in 10 does, so a
#: crashed worker's message is redelivered within seconds of the heartbeat timeout.
REDIS_MAINTENANCE_CHANCE = 100_000  # out of a million
#: Seconds one Redis command (a send, a fetch) may wait for the server.
REDIS_SOCKET_TIMEOUT = 1.5


class _TimeoutTolerantConsumer(_RedisConsumer):
    """A Redis command that timed out (a hung server) is a lost connection, as a refused one is.

    dramatiq handles only connection errors: a timeout would be logged as an unexpected error with
    a traceback, and an acknowledgement that timed out dropped (the message then runs again).
    """

    def __next__(self):
        try:
            return super().__next__()
        except redis.TimeoutError as error:
            raise ConnectionClosed(error) from None

    def ack(self, message):
        try:
            return super().ack(message)
        except redis.TimeoutError as error:
            raise ConnectionClosed(error) from None

    def nack(self, message):
        try:
            return super().nack(message)
        except redis.TimeoutError as error:
            raise ConnectionClosed(error) from None


class RecoveringRedisBroker(RedisBroker):
    """Redis broker that hands delayed messages back after a lost connection.

    On a connection error dramatiq's consumer drops the delayed messages it held in memory
    (deferred claims, retries waiting out their backoff), while Redis still counts them as
    taken by this worker; the worker lives on, so they would never come back. When a delay
    queue is consumed again, this worker's taken messages of it return to the queue (a copy
    still held would only meet the claim, which runs nothing twice).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._consumed: set[str] = set()

    @property
    def consumer_class(self):
        return _TimeoutTolerantConsumer

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000):
        if queue_name.endswith(".DQ") and queue_name in self._consumed:
            self._requeue_taken(queue_name)
        self._consumed.add(queue_name)
        return super().consume(queue_name, prefetch=prefetch, timeout=timeout)

    def _requeue_taken(self, queue_name: str) -> None:
        try:
            taken = self.client.smembers(f"{self.namespace}:__acks__.{self.broker_id}.{queue_name}")
            if taken:
                self.do_requeue(queue_name, *(i.decode() if isinstance(i, bytes) else i for i in taken))
        except redis.ConnectionError as error:  # still down: the consumer retries in a second
            raise ConnectionClosed(error) from None


def build_broker(url: str) -> dramatiq.Broker:
    if url == "stub":
        broker = StubBroker()
        broker.emit_after("process_boot")
        return broker
    if url.startswith("amqp://"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Confirmed publishes: a 202 from the API means RabbitMQ holds the message.
        return RabbitmqBroker(url=url, confirm_delivery=True)
    # Bounded socket waits: a hung Redis (stopped, not refusing) fails a send within seconds, so
    # the API answers 503 instead of holding the request for the length of the outage.
    # One quick retry only: redis-py's default three with backoff would hold a send for 10 s.
    client = redis.Redis.from_url(
        url,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.1), 1),
    )
    return RecoveringRedisBroker(
        client=client, heartbeat_timeout=REDIS_HEARTBEAT_TIMEOUT_MS, maintenance_chance=REDIS_MAINTENANCE_CHANCE
    )


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
