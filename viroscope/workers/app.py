"""Entry point of a worker pool: ``dramatiq viroscope.workers.app --queues <queue>``.

Importing this module configures the broker and registers every actor.
"""

from .broker import configure

broker = configure()

from ..tasks import indexes, maintenance, samples, subtractions  # noqa: E402,F401
from ..tasks import references  # noqa: E402,F401
from ..tasks import blast, hmms, nuvs  # noqa: E402,F401
from ..tasks import analyses  # noqa: E402,F401
from ..tasks import webhooks  # noqa: E402

webhooks.install_dispatcher()
