"""Request-scoped access to the database, settings and the calling client."""

from flask import current_app, g

from ..core.auth import Client
from ..core.db import Database
from ..core.settings import Settings


def db() -> Database:
    return current_app.extensions["ringspot.db"]


def settings() -> Settings:
    return current_app.extensions["ringspot.settings"]


def client() -> Client:
    return g.client
