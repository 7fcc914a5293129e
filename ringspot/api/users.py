"""``/api/users``: administrators manage user accounts."""

from flask import Blueprint

from ..core import auth
from ..core.errors import BadRequest
from ..core.utils import to_json
from .auth import administrators_only
from .context import client, db, settings
from .responses import json_response, no_content
from .validation import Body, Identifier, body

bp = Blueprint("users", __name__, url_prefix="/api/users")


def serialize_user(doc: dict) -> dict:
    return to_json({k: v for k, v in doc.items() if k != "password"})


class CreateUser(Body):
    user_id: Identifier
    password: str
    force_reset: bool = True


class EditUser(Body):
    administrator: bool | None = None
    force_reset: bool | None = None
    groups: list[str] | None = None
    password: str | None = None
    primary_group: str | None = None


administrators_only(bp)


@bp.get("")
def find():
    return json_response([serialize_user(u) for u in auth.find_users(db())])


@bp.post("")
@body(CreateUser)
def create(data: CreateUser):
    user = auth.create_user(
        db(),
        data.user_id.strip(),
        data.password,
        force_reset=data.force_reset,
        minimum_length=settings().minimum_password_length,
    )
    return json_response(serialize_user(user), 201, {"Location": f"/api/users/{user['_id']}"})


@bp.get("/<user_id>")
def get(user_id: str):
    return json_response(serialize_user(auth.get_user_or_404(db(), user_id)))


@bp.patch("/<user_id>")
@body(EditUser)
def edit(data: EditUser, user_id: str):
    changes = data.model_dump(exclude_none=True)
    user = auth.edit_user(db(), user_id, changes, settings().minimum_password_length)
    return json_response(serialize_user(user))


@bp.delete("/<user_id>")
def remove(user_id: str):
    auth.get_user_or_404(db(), user_id)
    if user_id == client().user_id:
        raise BadRequest("Cannot remove own account")
    auth.remove_user(db(), user_id)
    return no_content()
