"""``/api/account``: the caller's own user, API keys and sessions."""

from flask import Blueprint, make_response

from ..core import auth
from ..core.errors import BadRequest
from ..core.utils import to_json
from .auth import SESSION_COOKIE, TOKEN_COOKIE, public
from .context import client, db, settings
from .responses import json_response, no_content
from .users import serialize_user
from .validation import Body, body

bp = Blueprint("account", __name__, url_prefix="/api/account")


def serialize_key(doc: dict) -> dict:
    return to_json({k: v for k, v in doc.items() if k != "_id"})


def me() -> dict:
    return auth.get_user_or_404(db(), client().user_id)


class EditAccount(Body):
    old_password: str
    password: str


class CreateKey(Body):
    name: str
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
    user = auth.edit_user(db(), user["_id"], {"password": data.password}, settings().minimum_password_length)
    return json_response(serialize_user(user))


@bp.get("/keys")
def find_keys():
    return json_response([serialize_key(k) for k in auth.find_own_keys(db(), client().user_id)])


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
    return json_response(serialize_key(auth.get_own_key_or_404(db(), client().user_id, key_id)))


@bp.patch("/keys/<key_id>")
@body(EditKey)
def edit_key(data: EditKey, key_id: str):
    auth.check_permission_names(data.permissions)
    return json_response(serialize_key(auth.edit_api_key(db(), me(), key_id, data.permissions)))


@bp.delete("/keys/<key_id>")
def remove_key(key_id: str):
    auth.remove_own_key(db(), client().user_id, key_id)
    return no_content()


@bp.delete("/keys")
def remove_all_keys():
    auth.remove_own_keys(db(), client().user_id)
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
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="Lax")
    return response


@bp.post("/logout")
def logout():
    if client().session_id:
        auth.logout(db(), client().session_id)
    response = make_response(no_content())
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(TOKEN_COOKIE)
    return response
