"""Typed errors raised by ``core/`` and turned into JSON bodies by the API's one error handler."""


class RingspotError(Exception):
    status = 500
    error_id = "internal_error"
    default_message = "Internal error"

    def __init__(self, message: str | None = None, **extra):
        self.message = message or self.default_message
        self.extra = extra
        super().__init__(self.message)

    def body(self) -> dict:
        return {"id": self.error_id, "message": self.message, **self.extra}


class BadRequest(RingspotError):
    status, error_id, default_message = 400, "bad_request", "Bad request"


class InvalidJSON(RingspotError):
    status, error_id, default_message = 400, "invalid_json", "Invalid JSON body"


class Unauthorized(RingspotError):
    status, error_id, default_message = 401, "requires_authorization", "Requires authorization"


class NotPermitted(RingspotError):
    status, error_id, default_message = 403, "not_permitted", "Not permitted"


class InsufficientRights(RingspotError):
    status, error_id, default_message = 403, "insufficient_rights", "Insufficient rights"


class NotFound(RingspotError):
    status, error_id, default_message = 404, "not_found", "Not found"


class Conflict(RingspotError):
    status, error_id, default_message = 409, "conflict", "Conflict"


class PayloadTooLarge(RingspotError):
    status, error_id, default_message = 413, "payload_too_large", "File is larger than the upload limit"


class UnsupportedMediaType(RingspotError):
    status, error_id, default_message = 415, "unsupported_media_type", "Unsupported media type"


class InvalidInput(RingspotError):
    status, error_id, default_message = 422, "invalid_input", "Invalid input"


class InvalidQuery(RingspotError):
    status, error_id, default_message = 422, "invalid_query", "Invalid query"


class Unavailable(RingspotError):
    status, error_id, default_message = 503, "service_unavailable", "Service unavailable"


class BadGateway(RingspotError):
    status, error_id, default_message = 502, "bad_gateway", "Bad gateway"
