"""The browser client: server-rendered pages at ``/`` beside the API at ``/api``.

Pages read through the same lookups, rights checks and serializers as the API views, and every
change a page makes is a call of the public API from the page itself (``static/ringspot.js``),
so no rule lives twice. Live figures come from small fragments that htmx polls.
"""

from . import account, jobs, references, samples
from .blueprint import bp, pass_api_gate

# Recorded after every page's route, so it sees them all when the app registers the blueprint.
bp.record_once(pass_api_gate)

__all__ = ["bp", "account", "jobs", "references", "samples"]
