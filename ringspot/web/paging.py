"""Reading the page number and search arguments of a list page; a bad one falls back, never a 500."""

from flask import request


def page_number() -> int:
    try:
        return max(int(request.args.get("page", "1")), 1)
    except ValueError:
        return 1


def text_arg(name: str) -> str:
    return request.args.get(name, "").strip()
