"""``/metrics`` under gunicorn with several worker processes: any worker's scrape counts every worker."""

from __future__ import annotations

import os

import psutil
import pymongo
import pytest
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from ringspot.core.utils import new_id

from ..conftest import wait_for
from .test_signals import samples
from .web import start_web

LATENCY = "ringspot_http_request_duration_seconds_count"


@pytest.fixture
def web(database_server, redis_server, tmp_path):
    name = f"metrics_{new_id()}"
    env = {
        **os.environ,
        "MONGODB_URI": f"{database_server}/{name}",
        "BROKER_URL": redis_server,
        "REDIS_URL": redis_server,
        "DATA_PATH": str(tmp_path / "data"),
    }
    web = start_web(env, tmp_path)
    yield web
    web.stop()
    pymongo.MongoClient(database_server).drop_database(name)


def scrape(web) -> dict:
    response = web.call("GET", "/metrics")
    assert response.status_code == 200
    return samples(response.text)


def test_every_scrape_sums_all_workers_and_survives_a_killed_worker(web, redis_server):
    for _ in range(30):
        assert web.call("GET", "/api/jobs/counts").status_code == 401
    route = (("method", "GET"), ("route", "/api/jobs/counts"), ("status", "401"))
    # Each scrape lands on either worker; each must see all 30 requests.
    assert [scrape(web)[(LATENCY, route)] for _ in range(6)] == [30] * 6

    workers = psutil.Process(web.proc.pid).children()
    assert len(workers) == 2
    workers[0].kill()
    wait_for(
        lambda: {p.pid for p in psutil.Process(web.proc.pid).children()} - {w.pid for w in workers},
        message="a replacement web worker",
    )
    found = wait_for(lambda: (m := scrape(web)) and m.get(("ringspot_web_worker_restarts_total", ())) and m)
    assert found[("ringspot_web_worker_restarts_total", ())] == 1
    assert found[(LATENCY, route)] == 30  # what the killed worker served still counts


def test_queue_depth_is_read_from_redis(web, redis_server):
    broker = RedisBroker(url=redis_server)
    broker.declare_queue("analyses")
    for _ in range(3):
        broker.enqueue(Message(queue_name="analyses", actor_name="pathoscope", args=(), kwargs={}, options={}))
    try:
        found = scrape(web)
        assert found[("ringspot_queue_messages", (("queue", "analyses"),))] == 3
        assert found[("ringspot_queue_messages", (("queue", "indexes"),))] == 0
        assert found[("ringspot_jobs", (("state", "waiting"), ("workflow", "build_index")))] == 0
    finally:
        broker.flush_all()
        broker.close()
