"""Prometheus metrics at ``/metrics``: what operators watch and autoscalers scale by.

Request latency, job durations and web worker restarts are counted where they happen. Under
gunicorn each worker is its own process, so with ``PROMETHEUS_MULTIPROC_DIR`` set (the Procfile sets
it) every process writes its samples to files there and a scrape of any worker sums them all; the
gunicorn hooks in ``ringspot.api.gunicorn_conf`` empty the folder on start and retire dead workers.
Queue depths and job counts are read from the broker and the database at scrape time, so every
replica reports the same figures.
"""

from __future__ import annotations

import os
import time

import dramatiq
from flask import Flask, Response, g, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from ..core import signals
from ..core.db import Database
from ..core.utils import seconds_since
from .auth import public
from .context import db

REQUEST_LATENCY = Histogram(
    "ringspot_http_request_duration_seconds",
    "Time to answer a request, by route pattern, method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
JOB_DURATION = Histogram(
    "ringspot_job_duration_seconds",
    "Time from a job's creation to its end (queue wait included), by workflow and final state.",
    ["workflow", "state"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800),
)
WEB_RESTARTS = Counter(
    "ringspot_web_worker_restarts_total",
    "Web worker processes started to replace one that exited (crashed, killed or recycled).",
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def register(app: Flask) -> None:
    """Time every request and serve ``/metrics``."""
    app.before_request(_start_timer)
    app.after_request(_observe_request)
    app.add_url_rule("/metrics", "metrics", public(scrape), methods=["GET"])


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe_request(response: Response) -> Response:
    started = g.get("metrics_started")
    if started is not None:
        # The rule, not the path: one series per route however many ids pass through it.
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        REQUEST_LATENCY.labels(route, request.method, str(response.status_code)).observe(time.perf_counter() - started)
    return response


def observe_job_end(job: dict) -> None:
    """Record how long a job took, once it has reached its final state."""
    if "workflow" in job and job.get("state") in ("complete", "error", "cancelled"):
        JOB_DURATION.labels(job["workflow"], job["state"]).observe(seconds_since(job["created_at"]))


def scrape() -> Response:
    live = CollectorRegistry(auto_describe=False)
    live.register(SignalsCollector(db(), dramatiq.get_broker()))
    return Response(generate_latest(_counted_registry()) + generate_latest(live), content_type=CONTENT_TYPE)


def _counted_registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


class SignalsCollector(Collector):
    """Gauges read at scrape time from the database and the broker."""

    def __init__(self, database: Database, broker: dramatiq.Broker) -> None:
        self.database = database
        self.broker = broker

    def collect(self):
        jobs = GaugeMetricFamily("ringspot_jobs", "Jobs by workflow and state.", labels=["workflow", "state"])
        for workflow, states in signals.job_counts(self.database).items():
            for state, count in states.items():
                jobs.add_metric([workflow, state], count)
        yield jobs

        depth = GaugeMetricFamily(
            "ringspot_queue_messages",
            "Messages waiting in a broker queue, delayed ones included (taken ones are not).",
            labels=["queue"],
        )
        for queue, count in queue_depths(self.broker).items():
            depth.add_metric([queue], count)
        yield depth

        reruns = GaugeMetricFamily(
            "ringspot_process_reruns", "Runs of processes beyond their first, by type.", labels=["type"]
        )
        for process_type, count in signals.reruns(self.database).items():
            reruns.add_metric([process_type], count)
        yield reruns


def queue_depths(broker: dramatiq.Broker) -> dict[str, int]:
    """Messages waiting in each declared queue (delayed ones included: retries and deferred claims).

    Messages a worker has taken are not counted, so a pool with running jobs and an empty queue
    reads 0: scale to zero from job counts (``running``), not from this alone.
    """
    from dramatiq.common import dq_name, xq_name

    # Some brokers list the delay and dead-letter queues beside the queues they belong to.
    queues = {q for q in broker.get_declared_queues() if q not in (dq_name(q), xq_name(q))}
    return {queue: _depth(broker, queue) for queue in sorted(queues)}


def _depth(broker: dramatiq.Broker, queue: str) -> int:
    from dramatiq.brokers.rabbitmq import RabbitmqBroker
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.brokers.stub import StubBroker

    if isinstance(broker, RedisBroker):
        client, namespace = broker.client, broker.namespace
        return int(client.llen(f"{namespace}:{queue}")) + int(client.llen(f"{namespace}:{queue}.DQ"))
    if isinstance(broker, RabbitmqBroker):
        ready, delayed, _dead = broker.get_queue_message_counts(queue)
        return ready + delayed
    if isinstance(broker, StubBroker):
        return broker.queues[queue].qsize() + broker.queues[f"{queue}.DQ"].qsize()
    raise TypeError(f"No queue depth for a {type(broker).__name__}")
