"""``/api/account``: the caller's own user, API keys and sessions."""

from typing import Any

from flask import Blueprint, Flask, g, make_response, request
from flask_limiter import Limiter, RateLimitExceeded

from ..core import auth
from ..core.errors import BadRequest, NotPermitted
from ..core.utils import to_json
from .auth import SESSION_COOKIE, TOKEN_COOKIE, public
from .context import client, db, settings
from .responses import json_response, no_content
from .users import serialize_user
from .validation import Body, Identifier, body

bp = Blueprint("account", __name__, url_prefix="/api/account")

#: Sign-in attempts one client address may make (each costs a scrypt hash), and failed attempts
#: on one user name from anywhere; beyond them the answer is 429 with ``Retry-After``.
LOGIN_ATTEMPTS_PER_ADDRESS = "30 per minute"
LOGIN_FAILURES_PER_USER = "10 per 15 minutes"
#: What a user whose password must be reset may still do.
ALLOWED_BEFORE_RESET = {"account.get", "account.edit", "account.logout", "account.login"}


def serialize_key(doc: dict) -> dict:
    return to_json({k: v for k, v in doc.items() if k != "_id"})


def me() -> dict:
    return auth.get_user_or_404(db(), client().user)


class EditAccount(Body):
    old_password: str
    password: str


class CreateKey(Body):
    name: Identifier
    permissions: dict[str, bool] = {}


class EditKey(Body):
    permissions: dict[str, bool]


class Login(Body):
    username: str
    password: str
    remember: bool = False


@bp.get("")
def get():
    return json_response(serialize_user(me()))


@bp.patch("")
@body(EditAccount)
def edit(data: EditAccount):
    user = me()
    if not auth.check_password(data.old_password, user["password"]):
        raise BadRequest("Invalid old password")
    changes = {"password": data.password, "force_reset": False}
    user = auth.edit_user(db(), user["_id"], changes, settings().minimum_password_length)
    return json_response(serialize_user(user))


@bp.get("/keys")
def find_keys():
    return json_response([serialize_key(k) for k in auth.find_own_keys(db(), client().user)])


@bp.post("/keys")
@body(CreateKey)
def create_key(data: CreateKey):
    auth.check_permission_names(data.permissions)
    if not data.name.strip():
        raise BadRequest("Key name must not be empty")
    key, raw = auth.create_api_key(db(), me(), data.name.strip(), data.permissions)
    # The raw key is shown here once; only its hash is stored.
    return json_response({**serialize_key(key), "key": raw}, 201, {"Location": f"/api/account/keys/{key['id']}"})


@bp.get("/keys/<key_id>")
def get_key(key_id: str):
    return json_response(serialize_key(auth.get_own_key_or_404(db(), client().user, key_id)))


@bp.patch("/keys/<key_id>")
@body(EditKey)
def edit_key(data: EditKey, key_id: str):
    auth.check_permission_names(data.permissions)
    return json_response(serialize_key(auth.edit_api_key(db(), me(), key_id, data.permissions)))


@bp.delete("/keys/<key_id>")
def remove_key(key_id: str):
    auth.remove_own_key(db(), client().user, key_id)
    return no_content()


@bp.delete("/keys")
def remove_all_keys():
    auth.remove_own_keys(db(), client().user)
    return no_content()


@bp.post("/login")
@public
@body(Login)
def login(data: Login):
    session, token = auth.login(db(), data.username, data.password, data.remember)
    user = auth.get_user_or_404(db(), data.username)
    response = make_response(json_response({"reset": bool(user.get("force_reset"))}, 201))
    lifetime = auth.REMEMBERED_SESSION_LIFETIME if data.remember else auth.SESSION_LIFETIME
    max_age = int(lifetime.total_seconds())
    for name, value in ((SESSION_COOKIE, session["_id"]), (TOKEN_COOKIE, token)):
        response.set_cookie(
            name, value, max_age=max_age, httponly=True, samesite="Lax", secure=settings().secure_cookies
        )
    return response


@bp.post("/logout")
def logout():
    session_id = client().session_id
    if session_id:
        auth.logout(db(), session_id)
    response = make_response(no_content())
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(TOKEN_COOKIE)
    return response


@bp.errorhandler(RateLimitExceeded)
def too_many_attempts(error: RateLimitExceeded):
    # Flask-Limiter adds ``Retry-After`` to this response.
    response = json_response({"id": "too_many_requests", "message": "Too many sign-in attempts; try again later"})
    response.status_code = 429
    return response


@bp.before_app_request
def require_password_change_first() -> None:
    """A user told to reset their password may do nothing else until they have."""
    caller = g.get("client")
    if caller is not None and caller.force_reset and request.endpoint not in ALLOWED_BEFORE_RESET:
        raise NotPermitted("Password change required: PATCH /api/account with a new password first")


def _client_address() -> str:
    return request.remote_addr or "unknown"


def _login_user_name() -> str:
    body = request.get_json(silent=True)
    name = body.get("username") if isinstance(body, dict) else None
    return f"user:{name}" if isinstance(name, str) else "user:"


def throttle_login(app: Flask) -> Limiter:
    """Rate limits on sign-in, counted in Redis so that every API process shares them.

    While Redis is unreachable each process counts in memory instead, so sign-in keeps
    working (and stays throttled) through a Redis restart.
    """
    settings_ = app.extensions["ringspot.settings"]
    database = app.extensions["ringspot.db"]
    limiter = Limiter(
        key_func=_client_address,
        app=app,
        storage_uri=settings_.redis_url,
        storage_options={"socket_timeout": 1.5, "socket_connect_timeout": 1.5},  # type: ignore[dict-item]
        key_prefix=f"ringspot-login-{database.name}",
        strategy="moving-window",
        headers_enabled=True,
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    view: Any = app.view_functions["account.login"]
    view = limiter.limit(LOGIN_ATTEMPTS_PER_ADDRESS, key_func=_client_address)(view)
    view = limiter.limit(
        LOGIN_FAILURES_PER_USER, key_func=_login_user_name, deduct_when=lambda response: response.status_code != 201
    )(view)
    app.view_functions["account.login"] = view
    return limiter
