"""Entry point of a worker pool: ``dramatiq viroscope.workers.app --queues <queue>``.

Importing this module configures the broker and registers every actor.
"""

from .broker import configure

broker = configure()

from ..tasks import indexes, maintenance  # noqa: E402,F401
