"""``/api/groups``: user groups and the permissions they grant their members."""

from flask import Blueprint

from ..core import auth
from ..core.utils import to_json
from .auth import administrators_only
from .context import db
from .responses import json_response, no_content
from .validation import Body, Identifier, body

bp = Blueprint("groups", __name__, url_prefix="/api/groups")


class CreateGroup(Body):
    group_id: Identifier


class EditGroup(Body):
    permissions: dict[str, bool]


administrators_only(bp, methods=("POST", "PATCH", "DELETE"))


@bp.get("")
def find():
    return json_response([to_json(g) for g in auth.find_groups(db())])


@bp.post("")
@body(CreateGroup)
def create(data: CreateGroup):
    group = auth.create_group(db(), data.group_id.strip())
    return json_response(to_json(group), 201, {"Location": f"/api/groups/{group['_id']}"})


@bp.get("/<group_id>")
def get(group_id: str):
    return json_response(to_json(auth.get_group_or_404(db(), group_id)))


@bp.patch("/<group_id>")
@body(EditGroup)
def edit(data: EditGroup, group_id: str):
    auth.check_permission_names(data.permissions)
    return json_response(to_json(auth.edit_group_permissions(db(), group_id, data.permissions)))


@bp.delete("/<group_id>")
def remove(group_id: str):
    auth.remove_group(db(), group_id)
    return no_content()
