"""One place that turns every error into a ``{"id", "message"}`` JSON body; never a traceback."""

from __future__ import annotations

import logging

import dramatiq.errors
import redis.exceptions
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from ..core.db import DatabaseUnreachable, DocumentTooLarge
from ..core.errors import RingspotError

log = logging.getLogger("ringspot.api")

_HTTP_IDS = {
    400: "bad_request",
    401: "requires_authorization",
    403: "not_permitted",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
}

_HTTP_MESSAGES = {404: "Not found", 405: "Method not allowed", 413: "Request body is too large"}


def error_response(status: int, error_id: str, message: str, **extra):
    response = jsonify({"id": error_id, "message": message, **extra})
    response.status_code = status
    return response


def register(app: Flask) -> None:
    @app.errorhandler(RingspotError)
    def handle_ringspot_error(error: RingspotError):
        return error_response(error.status, error.error_id, error.message, **error.extra)

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException):
        status = error.code or 500
        message = _HTTP_MESSAGES.get(status, error.description or error.name)
        return error_response(status, _HTTP_IDS.get(status, "error"), message)

    @app.errorhandler(DatabaseUnreachable)  # selection timeouts and lost connections alike
    def handle_database_down(error):
        log.error("database_unavailable error=%s", error)
        return error_response(503, "service_unavailable", "The database is unavailable; try again shortly")

    @app.errorhandler(dramatiq.errors.BrokerConnectionError)  # RabbitMQ unreachable (dramatiq wraps pika's errors)
    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def handle_broker_down(error):
        log.error("broker_unavailable error=%s", error)
        return error_response(503, "service_unavailable", "The task queue is unavailable; try again shortly")

    @app.errorhandler(DocumentTooLarge)
    def handle_document_too_large(error):
        # Only a setting above the 1 MiB default lets a body this large through; refuse it as such.
        return error_response(413, "payload_too_large", "Too large to store: one document may hold at most 16 MB")

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        log.exception("unhandled_error")
        return error_response(500, "internal_error", "Internal server error")
