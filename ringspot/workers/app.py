"""Entry point of a worker pool: ``dramatiq ringspot.workers.app --queues <queue>``.

Importing this module configures the broker and registers every actor.
"""

from .broker import configure

broker = configure()

# Registering the actors needs the broker configured first, hence imports after code.
from ..tasks import (  # noqa: E402,F401
    alignments,
    analyses,
    blast,
    hmms,
    indexes,
    maintenance,
    nuvs,
    references,
    samples,
    subtractions,
    webhooks,
)

webhooks.install_dispatcher()
