"""Validate at the edge: JSON bodies and query strings against pydantic models.

A bad body is a 422 naming the field; malformed JSON is a 400. The models are also
what the OpenAPI document describes (``openapi.py`` reads ``view.openapi``).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from flask import request
from pydantic import BaseModel, ConfigDict, ValidationError

from ..core.errors import InvalidInput, InvalidJSON, InvalidQuery
from ..core.pagination import DEFAULT_PER_PAGE, MAX_PER_PAGE


class Body(BaseModel):
    """Base of every request body: unknown fields are an error, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    """Base of query-string models: values arrive as strings, so they are coerced."""

    model_config = ConfigDict(extra="ignore")


class PageQuery(Query):
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    def model_post_init(self, _context: Any) -> None:
        if self.page < 1:
            raise ValueError("page must be 1 or more")
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be between 1 and {MAX_PER_PAGE}")


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


def read_json() -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidJSON(f"Invalid JSON body: {error}") from None


def parse_body(model: type[BaseModel]) -> BaseModel:
    data = read_json()
    if not isinstance(data, dict):
        raise InvalidInput("Invalid input: body must be a JSON object", errors={"body": ["must be an object"]})
    try:
        return model.model_validate(data)
    except ValidationError as error:
        errors = _field_errors(error)
        raise InvalidInput(f"Invalid input: {_describe(errors)}", errors=errors) from None


def parse_query(model: type[BaseModel]) -> BaseModel:
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
