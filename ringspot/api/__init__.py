"""The Flask app: settings, database, broker, error handlers and one blueprint per resource."""

from __future__ import annotations

import logging

from flask import Flask

from ..core.auth import ensure_first_admin
from ..core.db import API_HEARTBEAT_MS, DatabaseUnreachable, connect, ensure_indexes
from ..core.settings import Settings, from_env
from ..core.storage import store_at


def prepare_database(app: Flask, database, settings: Settings) -> None:
    """Indexes and the first administrator; if the database is down at start, before the next request.

    A web worker must boot while the database restarts (the supervisor restarts it meanwhile), and
    answer 503 until it is back rather than fail to start.
    """

    def prepare() -> None:
        ensure_indexes(database)
        ensure_first_admin(database, settings.admin_user, settings.admin_password)
        app.extensions["ringspot.db_prepared"] = True

    try:
        prepare()
    except DatabaseUnreachable as error:
        logging.getLogger("ringspot.api").warning("database_unavailable_at_start error=%s", error)

        @app.before_request
        def prepare_when_back() -> None:
            if not app.extensions.get("ringspot.db_prepared"):
                prepare()


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    from ..tasks.webhooks import install_dispatcher
    from . import (
        account,
        alignments,
        analyses,
        blast,
        coverage_plots,
        errors,
        groups,
        history,
        hmms,
        indexes,
        jobs,
        metrics,
        openapi,
        otus,
        processes,
        refs,
        reports,
        samples,
        subtractions,
        uploads,
        users,
        validation,
        webhooks,
    )
    from . import auth as api_auth

    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # the default provider has it
    app.extensions["ringspot.settings"] = settings
    # Requests for other host names are refused (400), so a forged Host never reaches a generated link.
    app.config["TRUSTED_HOSTS"] = list(settings.trusted_hosts) or None
    database = connect(settings.mongodb_uri, heartbeat_ms=API_HEARTBEAT_MS)
    app.extensions["ringspot.db"] = database
    prepare_database(app, database, settings)
    store_at(settings.data_path)  # a bad RINGSPOT_STORAGE_URL stops the start, not a request

    metrics.register(app)  # first, so requests refused by auth are timed too
    errors.register(app)
    validation.register(app)  # bodies are checked before anything reads them, sign-in included
    api_auth.register(app)
    for module in (
        openapi,
        processes,
        jobs,
        users,
        groups,
        account,
        uploads,
        indexes,
        samples,
        subtractions,
        hmms,
        blast,
        analyses,
    ):
        app.register_blueprint(module.bp)
    for module in (refs, otus, history, webhooks):
        app.register_blueprint(module.bp)
    for module in (alignments, coverage_plots, reports):
        app.register_blueprint(module.bp)
    from ..web import bp as browser_client  # pages at /, beside the API

    app.register_blueprint(browser_client)
    account.throttle_login(app)
    install_dispatcher()
    return app
