"""Who may do what: ``can_*`` checks and ``require_*`` that raise 403."""

from __future__ import annotations

from .auth import Client
from .db import any_of
from .errors import InsufficientRights, NotPermitted

REFERENCE_RIGHTS = ("build", "modify", "modify_otu", "remove")


def require_admin(client: Client) -> None:
    if not client.administrator:
        raise NotPermitted("Requires administrative privilege")


def require_permission(client: Client, permission: str) -> None:
    if not client.has_permission(permission):
        raise NotPermitted()


# ---------------------------------------------------------------- references


def can_read_reference(client: Client, reference: dict) -> bool:
    if client.administrator or reference.get("public"):
        return True
    if (reference.get("user") or {}).get("id") == client.user_id:
        return True
    if any(u["id"] == client.user_id for u in reference.get("users", [])):
        return True
    return any(g["id"] in client.groups for g in reference.get("groups", []))


def can_on_reference(client: Client, reference: dict, right: str) -> bool:
    if client.administrator:
        return True
    if any(u["id"] == client.user_id and u.get(right) for u in reference.get("users", [])):
        return True
    return any(g["id"] in client.groups and g.get(right) for g in reference.get("groups", []))


def require_reference_read(client: Client, reference: dict) -> None:
    if not can_read_reference(client, reference):
        raise InsufficientRights()


def require_reference_right(client: Client, reference: dict, right: str) -> None:
    if not can_on_reference(client, reference, right):
        raise InsufficientRights()


def reference_visibility_query(client: Client) -> dict:
    """A query matching the references ``client`` may see."""
    if client.administrator:
        return {}
    return {
        "$or": [
            {"public": True},
            {"user.id": client.user_id},
            {"users.id": client.user_id},
            any_of("groups.id", client.groups),
        ]
    }


# ---------------------------------------------------------------- samples


def sample_rights(client: Client, sample: dict) -> tuple[bool, bool]:
    """(read, write) of ``client`` on ``sample``: owner and admins both; others by the sample's flags."""
    if client.administrator or (sample.get("user") or {}).get("id") == client.user_id:
        return True, True
    member = sample.get("group") not in (None, "none") and sample.get("group") in client.groups
    read = sample.get("all_read") or (member and sample.get("group_read"))
    write = read and (sample.get("all_write") or (member and sample.get("group_write")))
    return bool(read), bool(write)


def require_sample_read(client: Client, sample: dict) -> None:
    if not sample_rights(client, sample)[0]:
        raise InsufficientRights()


def require_sample_write(client: Client, sample: dict) -> None:
    if not sample_rights(client, sample)[1]:
        raise InsufficientRights()


def sample_visibility_query(client: Client) -> dict:
    if client.administrator:
        return {}
    return {
        "$or": [
            {"user.id": client.user_id},
            {"all_read": True},
            {"group_read": True, "group": {"$in": client.groups}},
        ]
    }


# ---------------------------------------------------------------- uploads


def can_use_upload(client: Client, upload: dict) -> bool:
    """An upload is its uploader's (and the administrators'): only they list, read, use or remove it."""
    return client.administrator or (upload.get("user") or {}).get("id") == client.user_id


def require_upload_use(client: Client, upload: dict) -> None:
    if not can_use_upload(client, upload):
        raise InsufficientRights()


def upload_visibility_query(client: Client) -> dict:
    return {} if client.administrator else {"user.id": client.user_id}


# ---------------------------------------------------------------- jobs


def require_job_on(client: Client, kind: str, object_id: str) -> None:
    """A job may touch only the objects it runs for (ids in its ``context``)."""
    job = client.job
    if job is None:
        raise InsufficientRights()
    allowed = job.get("context", {}).get(f"{kind}_id")
    allowed_many = job.get("context", {}).get(f"{kind}_ids", [])
    if object_id != allowed and object_id not in allowed_many:
        raise InsufficientRights()
