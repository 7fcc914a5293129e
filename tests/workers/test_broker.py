"""The Redis broker against a real Redis that restarts: delayed messages are not stranded."""

import time

import dramatiq
import pytest

from ringspot.workers.broker import RecoveringRedisBroker

from ..conftest import start_redis, wait_for


@pytest.fixture
def restartable_redis(tmp_path):
    """A Redis that keeps every write, and a function that restarts it on the same port and folder."""
    server = {}
    server["proc"], port = start_redis(tmp_path, persistent=True)

    def restart():
        server["proc"].terminate()
        server["proc"].wait(10)
        time.sleep(1)
        server["proc"], _ = start_redis(tmp_path, port, persistent=True)

    yield f"redis://127.0.0.1:{port}/0", restart
    server["proc"].terminate()
    server["proc"].wait(10)


def test_a_delayed_message_held_by_a_worker_survives_a_redis_restart(restartable_redis):
    url, restart = restartable_redis
    broker = RecoveringRedisBroker(url=url)
    ran = []

    @dramatiq.actor(broker=broker, queue_name="recovery", max_retries=0)
    def record(value):
        ran.append(value)

    worker = dramatiq.Worker(broker, worker_timeout=100, worker_threads=1)
    worker.start()
    try:
        record.send_with_options(args=("deferred",), delay=6000)
        # The worker has taken it from the delay queue and holds it in memory until it is due.
        taken = f"dramatiq:__acks__.{broker.broker_id}.recovery.DQ"
        wait_for(lambda: broker.client.scard(taken) == 1, timeout=10, message="the worker to take the message")
        restart()  # the worker's consumer loses its connection and, with it, what it held
        wait_for(lambda: ran == ["deferred"], timeout=30, message="the delayed message to run")
        assert broker.client.scard(taken) == 0
    finally:
        worker.stop()
        broker.close()
