"""Sign in (the API's session cookies, set by ``POST /api/account/login`` from the page) and the front door."""

from flask import g, redirect, render_template, request, url_for

from .blueprint import bp


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only, never another host."""
    # Browsers read a backslash as a slash, so "/\\host" would leave the site as "//host" does.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("web.samples")


@bp.get("/login")
def login():
    target = safe_next(request.args.get("next"))
    if g.client.user_id is not None and g.client.job is None:
        return redirect(target)  # already signed in
    return render_template("login.html", next=target)


@bp.get("/")
def home():
    return redirect(url_for("web.samples"))
