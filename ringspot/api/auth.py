"""Identify the caller of every request and enforce who may reach which endpoint.

Credentials: a session cookie (``POST /api/account/login``), HTTP Basic
``user:api_key``, or HTTP Basic ``job-<id>:<key>`` for the Job API. Views declare
who may call them with ``public``, ``jobs_allowed`` or ``jobs_only``; by default a
view needs a signed-in user and refuses jobs.
"""

from __future__ import annotations

import base64
import binascii

from flask import Flask, current_app, g, request

from ..core import auth, jobs
from ..core.errors import BadRequest, NotPermitted, Unauthorized
from ..core.rights import require_admin
from .context import db

SESSION_COOKIE = "session_id"
TOKEN_COOKIE = "session_token"


def public(view):
    view.access = "public"
    return view


def jobs_allowed(view):
    view.access = "user_or_job"
    return view


def jobs_only(view):
    view.access = "job"
    return view


def administrators_only(bp, methods: tuple[str, ...] | None = None) -> None:
    """Let only administrators use ``bp`` (or only its ``methods``); checked before any body is read."""

    def check():
        applies = methods is None or request.method in methods
        if applies and g.client.authenticated and g.client.job is None:
            require_admin(g.client)

    bp.before_request(check)


def _basic_credentials() -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise BadRequest("Malformed Authorization header")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise BadRequest("Malformed Authorization header") from None
    user, sep, secret = decoded.partition(":")
    if not sep or not user or not secret:
        raise BadRequest("Malformed Authorization header")
    return user, secret


def identify() -> auth.Client:
    credentials = _basic_credentials()
    if credentials:
        name, secret = credentials
        if name.startswith("job-"):
            found = jobs.authenticate(db(), name[4:], secret)
            if found is None:
                raise Unauthorized("Invalid job credentials")
            job, claim_only = found
            return auth.Client(job=job, claim_only=claim_only)
        client = auth.client_from_api_key(db(), name, secret)
        if client is None:
            raise Unauthorized("Invalid credentials")
        return client
    session_id, token = request.cookies.get(SESSION_COOKIE), request.cookies.get(TOKEN_COOKIE)
    if session_id and token:
        client = auth.client_from_session(db(), session_id, token)
        if client is not None:
            return client
    return auth.Client()


def check_access() -> None:
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    access = getattr(view, "access", "user")
    if access == "public" or view is None:
        g.client = auth.Client()
        try:
            g.client = identify()
        except (BadRequest, Unauthorized):
            if view is not None:
                raise
        return
    g.client = identify()
    if not g.client.authenticated:
        raise Unauthorized()
    if g.client.job is not None and access == "user":
        raise NotPermitted("Job keys may only be used on the Job API")
    if g.client.job is None and access == "job":
        raise NotPermitted("Only jobs may use this endpoint")


#: Paths under which a write may change who a key belongs to or what it allows.
_IDENTITY_PATHS = ("/api/users", "/api/groups", "/api/account")


def forget_cached_keys(response):
    """A write to users, groups or keys ends the cached API-key checks of this process."""
    if request.method not in ("GET", "HEAD", "OPTIONS") and request.path.startswith(_IDENTITY_PATHS):
        auth.forget_api_keys()
    return response


def register(app: Flask) -> None:
    app.before_request(check_access)
    app.after_request(forget_cached_keys)
