"""The one blueprint of the browser client, its sign-in gate, error pages and template helpers."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, send_from_directory, url_for
from werkzeug.exceptions import NotFound as HTTPNotFound

from ..api.auth import public
from ..core.errors import InsufficientRights, NotFound, NotPermitted, RingspotError

bp = Blueprint("web", __name__, template_folder="templates")

STATIC = Path(__file__).parent / "static"

#: Views a visitor who has not signed in may open.
OPEN_ENDPOINTS = {"web.login", "web.static"}


@bp.get("/assets/<path:filename>")
def static(filename: str):
    """Stylesheet, script and the vendored libraries; the sign-in page needs them before any session."""
    return send_from_directory(STATIC, filename, max_age=300)


def pass_api_gate(state) -> None:
    """Let pages through the API's gate (a 401 JSON body) to their own, which sends people to sign in."""
    for endpoint, view in state.app.view_functions.items():
        if endpoint.startswith(f"{bp.name}."):
            public(view)


@bp.before_request
def require_signed_in_user():
    """A page needs a signed-in user (not a job key); anyone else is sent to sign in and back."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    client = g.client
    if client.user_id is not None and client.job is None:
        return None
    if request.headers.get("HX-Request"):
        # A fragment polled after the session ended: send the whole page to sign in, not into a table cell.
        page = request.headers.get("HX-Current-URL", "")
        return "", 200, {"HX-Redirect": url_for("web.login", next=safe_path(urlsplit(page)))}
    return redirect(url_for("web.login", next=request.full_path.rstrip("?")))


def safe_path(url) -> str:
    """The path and query of a URL of this site, for coming back after signing in."""
    return url.path + (f"?{url.query}" if url.query else "") if url.path.startswith("/") else "/"


@bp.errorhandler(NotFound)
@bp.errorhandler(InsufficientRights)
@bp.errorhandler(HTTPNotFound)
def not_found_page(_error):
    # An object the user may not read is not shown to exist: the same page as a missing one.
    return render_template("error.html", status=404, title="Not found", message="There is nothing here."), 404


@bp.errorhandler(NotPermitted)
def not_permitted_page(error: NotPermitted):
    return render_template("error.html", status=403, title="Not permitted", message=error.message), 403


@bp.errorhandler(RingspotError)
def error_page(error: RingspotError):
    return render_template("error.html", status=error.status, title="Error", message=error.message), error.status


def page_url(**changes) -> str:
    """The current page's URL with some query arguments changed (paging, filters)."""
    args = request.args.to_dict(flat=False)
    for key, value in changes.items():
        args[key] = [str(value)]
    return f"{request.path}?{urlencode(args, doseq=True)}"


def has_route(path: str) -> bool:
    """Whether the app serves ``path`` (links to optional exports appear only where they exist)."""
    adapter = current_app.url_map.bind("localhost")
    try:
        adapter.match(path, method="GET")
    except Exception:
        return False
    return True


@bp.app_template_global()
def signed_in_user() -> str | None:
    client = getattr(g, "client", None)
    return client.user_id if client is not None else None


bp.add_app_template_global(page_url)
bp.add_app_template_global(has_route)


@bp.app_template_filter()
def percent(value, digits: int = 1) -> str:
    return "–" if value is None else f"{float(value) * 100:.{digits}f} %"


@bp.app_template_filter()
def number(value, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{float(value):,.{digits}f}" if digits else f"{int(round(float(value))):,}"


@bp.app_template_filter()
def when(value) -> str:
    """An ISO timestamp to the minute, as a person reads it."""
    text = str(value or "")
    return text[:16].replace("T", " ") if text else "–"
