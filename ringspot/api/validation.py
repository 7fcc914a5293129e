"""Validate at the edge: JSON bodies and query strings against pydantic models.

A bad body is a 422 naming the field; malformed JSON is a 400. The models are also
what the OpenAPI document describes (``openapi.py`` reads ``view.openapi``).

Before any view runs, ``guard_request_body`` holds every body that is not a file to
``max_json_bytes`` (413), to ``Content-Type: application/json`` under ``/api`` (415: a
browser sends other types cross-site without asking) and to ``MAX_JSON_DEPTH`` levels (400).
"""

from __future__ import annotations

import functools
import json
import re
from typing import Annotated, Any, TypeVar

from flask import Flask, current_app, g, request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core.errors import InvalidInput, InvalidJSON, InvalidQuery, PayloadTooLarge, UnsupportedMediaType
from ..core.pagination import DEFAULT_PER_PAGE, MAX_PAGE, MAX_PER_PAGE
from .context import settings

#: Deepest nesting of arrays and objects accepted in a JSON body (MongoDB itself stops at 100).
MAX_JSON_DEPTH = 32
_BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_identifier(value: str) -> str:
    """User ids, group ids and key names: safe in a Basic credential (no ``:``), a URL and a log line.

    ``job-`` is where job credentials begin, so no user may be called that.

    >>> check_identifier("lab.tech-1")
    'lab.tech-1'
    """
    if not _IDENTIFIER.fullmatch(value) or value.lower().startswith("job-"):
        raise ValueError(
            "must be 1 to 64 letters, digits, '.', '_' or '-', begin with a letter or digit, and not begin with 'job-'"
        )
    return value


#: The one pattern of user ids, group ids and key names, checked before anything is written.
Identifier = Annotated[str, AfterValidator(check_identifier)]


class Body(BaseModel):
    """Base of every request body: unknown fields are an error, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


ModelT = TypeVar("ModelT", bound=BaseModel)

#: Largest integer any query parameter takes (versions, indexes...): bigger ones cannot be stored or compared.
MAX_QUERY_INT = 2**31 - 1


class Query(BaseModel):
    """Base of query-string models: values arrive as strings, so they are coerced."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("*")
    @classmethod
    def _integers_in_range(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_QUERY_INT:
            raise ValueError(f"must be at most {MAX_QUERY_INT}")
        return value


class PageQuery(Query):
    page: int = Field(1, ge=1, le=MAX_PAGE)
    per_page: int = Field(DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE)


def _field_errors(error: ValidationError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "body"
        message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"]
        errors.setdefault(field, []).append(message)
    return errors


def _describe(errors: dict[str, list[str]]) -> str:
    field, messages = next(iter(errors.items()))
    return f"{field}: {messages[0]}"


def nesting_depth(value: Any, limit: int) -> int:
    """How deep arrays and objects nest in ``value``, counted up to ``limit + 1`` (no recursion).

    >>> nesting_depth({"a": [1, {"b": []}]}, 32), nesting_depth("x", 32), nesting_depth([[[[]]]], 2)
    (3, 0, 3)
    """
    deepest, pending = 0, [(value, 1)]
    while pending and deepest <= limit:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in children)
    return deepest


def read_json() -> Any:
    """The request's JSON body ({} when empty), parsed once per request."""
    if "json_body" in g:
        return g.json_body
    raw = request.get_data(cache=True)
    if not raw.strip():
        g.json_body = {}
        return g.json_body
    try:
        data = json.loads(raw)
    except RecursionError:
        raise InvalidJSON(f"Invalid JSON body: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidJSON(f"Invalid JSON body: {error}") from None
    if nesting_depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise InvalidJSON(f"Invalid JSON body: nested deeper than {MAX_JSON_DEPTH} levels")
    g.json_body = data
    return data


def takes_file(view):
    """Mark a view whose body is a file, streamed under the upload limit instead of the JSON rules."""
    view.takes_file = True
    return view


def guard_request_body() -> None:
    """Refuse an oversized, non-JSON or too deeply nested body before anything else reads it."""
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "takes_file", False):
        return
    limit = settings().max_json_bytes
    request.max_content_length = limit  # a body without Content-Length is cut off here too (413)
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes")
    if request.method not in _BODY_METHODS or not request.get_data(cache=True).strip():
        return
    if request.path.startswith("/api/") and request.mimetype != "application/json":
        raise UnsupportedMediaType("Request body must be JSON, sent with Content-Type: application/json")
    read_json()


def register(app: Flask) -> None:
    app.before_request(guard_request_body)


def parse_body(model: type[ModelT]) -> ModelT:
    data = read_json()
    if not isinstance(data, dict):
        raise InvalidInput("Invalid input: body must be a JSON object", errors={"body": ["must be an object"]})
    try:
        return model.model_validate(data)
    except ValidationError as error:
        errors = _field_errors(error)
        raise InvalidInput(f"Invalid input: {_describe(errors)}", errors=errors) from None


def parse_query(model: type[ModelT]) -> ModelT:
    try:
        return model.model_validate(request.args.to_dict())
    except (ValidationError, ValueError) as error:
        if isinstance(error, ValidationError):
            errors = _field_errors(error)
            raise InvalidQuery("Invalid query", errors=errors) from None
        raise InvalidQuery("Invalid query", errors={"query": [str(error)]}) from None


def body(model: type[BaseModel]):
    """Decorator: validate the JSON body and pass it as the view's first argument."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            return view(parse_body(model), *args, **kwargs)

        wrapper.openapi = {**getattr(view, "openapi", {}), "body": model}  # type: ignore[attr-defined]
        return wrapper

    return decorate


def query(model: type[BaseModel]):
    """Decorator: validate the query string and pass it as the view's first argument."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            return view(parse_query(model), *args, **kwargs)

        wrapper.openapi = {**getattr(view, "openapi", {}), "query": model}  # type: ignore[attr-defined]
        return wrapper

    return decorate
