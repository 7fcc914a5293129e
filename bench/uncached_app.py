"""The API with its API-key cache switched off: ``bench_api.py`` measures what the cache saves.

gunicorn "bench.uncached_app:create_app()"
"""

from ringspot.core import auth

auth.API_KEY_CACHE_SECONDS = 0.0  # every request checks its key in the database again

from ringspot.api import create_app  # noqa: E402,F401
