"""Response helpers: JSON with status and headers, paginated lists with ``Link`` headers."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import jsonify, request

from ..core.utils import to_json


def json_response(data, status: int = 200, headers: dict | None = None):
    response = jsonify(to_json(data))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def no_content():
    return "", 204


def _page_url(page: int) -> str:
    args = request.args.to_dict()
    args["page"] = str(page)
    return f"{request.base_url}?{urlencode(args)}"


def paginated(envelope: dict, serialize=lambda d: d):
    """The list envelope with its documents serialized, plus first/prev/next/last links."""
    envelope = {**envelope, "documents": [serialize(d) for d in envelope["documents"]]}
    page, last = envelope["page"], max(envelope["page_count"], 1)
    links = [f'<{_page_url(1)}>; rel="first"']
    if page > 1:
        links.append(f'<{_page_url(min(page - 1, last))}>; rel="prev"')
    if page < last:
        links.append(f'<{_page_url(page + 1)}>; rel="next"')
    links.append(f'<{_page_url(last)}>; rel="last"')
    return json_response(envelope, headers={"Link": ", ".join(links)})
