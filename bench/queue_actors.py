"""Empty actors on the ``bench`` queue, for ``bench_queue.py``.

    dramatiq bench.queue_actors --processes 1 --threads 2 --queues bench

``noop`` is sent with a ``process_id``, so the worker middleware claims, records and
finishes a process document around it, as for every real operation; ``noop_bare`` has no
process id, so it measures the broker and dramatiq alone.
"""

from ringspot.workers.broker import configure
from ringspot.workers.runtime import actor

broker = configure()


@actor(queue_name="bench", max_retries=0, time_limit=60_000)
def noop(process_id: str) -> None:
    """Nothing: the process bookkeeping around it is what is measured."""


@actor(queue_name="bench", max_retries=0, time_limit=60_000)
def noop_bare(number: int) -> None:
    """Nothing, without a process document."""
