"""Sign in (the API's session cookies, set by ``POST /api/account/login`` from the page) and the front door."""

from flask import redirect, render_template, request, url_for

from .blueprint import bp


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only, never another host."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("web.samples")


@bp.get("/login")
def login():
    return render_template("login.html", next=safe_next(request.args.get("next")))


@bp.get("/")
def home():
    return redirect(url_for("web.samples"))
