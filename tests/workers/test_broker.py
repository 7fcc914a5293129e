"""The Redis broker against a real Redis that restarts: delayed messages are not stranded."""

import subprocess
import time

import dramatiq
import pytest

from viroscope.workers.broker import RecoveringRedisBroker

from ..conftest import free_port, wait_for, wait_port


def start_redis(port: int, folder) -> subprocess.Popen:
    """Redis that keeps every write (append-only file, fsync always), so a restart loses nothing."""
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(port)
    return proc


@pytest.fixture
def restartable_redis(tmp_path):
    port = free_port()
    server = {"proc": start_redis(port, tmp_path)}

    def restart():
        server["proc"].terminate()
        server["proc"].wait(10)
        time.sleep(1)
        server["proc"] = start_redis(port, tmp_path)

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
