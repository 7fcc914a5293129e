"""``/api/openapi.json``: the API described from its own routes and request models."""

from __future__ import annotations

import re

from flask import Blueprint, current_app

from .auth import public
from .responses import json_response

bp = Blueprint("openapi", __name__, url_prefix="/api")

_PARAM = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")

ERROR_SCHEMA = {
    "type": "object",
    "required": ["id", "message"],
    "properties": {"id": {"type": "string"}, "message": {"type": "string"}},
}


def _model_schema(model, components: dict) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query_parameters(model) -> list[dict]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _operation(rule, method: str, view, components: dict) -> dict:
    info = getattr(view, "openapi", {})
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(rule.rule)
    ]
    if "query" in info:
        parameters += _query_parameters(info["query"])
    operation = {
        "operationId": f"{rule.endpoint}_{method.lower()}",
        "summary": (view.__doc__ or rule.endpoint).strip().splitlines()[0],
        "parameters": parameters,
        "responses": {
            "2XX": {"description": "Success"},
            "4XX": {"description": "Client error", "content": {"application/json": {"schema": ERROR_SCHEMA}}},
        },
    }
    if "body" in info:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _model_schema(info["body"], components)}},
        }
    if getattr(view, "access", "user") != "public":
        operation["security"] = [{"basic": []}, {"session": []}]
    return operation


def build_document(app) -> dict:
    paths: dict = {}
    components: dict = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api"):
            continue
        view = app.view_functions[rule.endpoint]
        path = _PARAM.sub(r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule, method, view, components)
    return {
        "openapi": "3.0.3",
        "info": {"title": "ringspot", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session_id"},
            },
        },
    }


@bp.get("/openapi.json")
@public
def document():
    """The OpenAPI document of this API."""
    return json_response(build_document(current_app))
