"""Reading the page number and search arguments of a list page; a bad one falls back, never a 500."""

from flask import request

from ..core.pagination import MAX_PAGE


def page_number() -> int:
    """The ``page`` argument within the API's bounds (a page past the last one is simply empty)."""
    try:
        return min(max(int(request.args.get("page", "1")), 1), MAX_PAGE)
    except ValueError:
        return 1


def text_arg(name: str) -> str:
    return request.args.get(name, "").strip()
