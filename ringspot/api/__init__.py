"""The Flask app: settings, database, broker, error handlers and one blueprint per resource."""

from __future__ import annotations

import logging

from flask import Flask

from ..core.auth import ensure_first_admin
from ..core.db import connect, ensure_indexes
from ..core.settings import Settings, from_env


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
        openapi,
        otus,
        processes,
        refs,
        samples,
        subtractions,
        uploads,
        users,
        webhooks,
    )
    from . import auth as api_auth

    app = Flask(__name__)
    app.json.sort_keys = False
    app.extensions["ringspot.settings"] = settings
    database = connect(settings.mongodb_uri)
    app.extensions["ringspot.db"] = database
    ensure_indexes(database)
    ensure_first_admin(database, settings.admin_user, settings.admin_password)

    errors.register(app)
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
    for module in (alignments, coverage_plots):
        app.register_blueprint(module.bp)
    install_dispatcher()
    return app
