"""Who is calling: users, groups, passwords, sessions, API keys and job keys."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from .common_passwords import COMMON_PASSWORDS
from .errors import BadRequest, Conflict, InsufficientRights, InvalidInput, NotFound
from .utils import later, new_id, now

PERMISSIONS = (
    "cancel_job",
    "create_ref",
    "create_sample",
    "modify_hmm",
    "modify_subtraction",
    "remove_file",
    "remove_job",
    "upload_file",
)

SESSION_LIFETIME = datetime.timedelta(hours=1)
REMEMBERED_SESSION_LIFETIME = datetime.timedelta(days=30)

# scrypt parameters: 16 MiB of memory per hash keeps brute force expensive.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


@dataclass
class Client:
    """The authenticated caller of a request: a user (by session or API key) or a job."""

    user_id: str | None = None
    administrator: bool = False
    groups: list[str] = field(default_factory=list)
    permissions: dict[str, bool] = field(default_factory=dict)
    job: dict | None = None
    session_id: str | None = None
    #: Set by an administrator: until the user changes their password, nothing else is allowed.
    force_reset: bool = False
    #: A job that showed its claim token: it may only claim itself (and receive its key).
    claim_only: bool = False

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None or self.job is not None

    def has_permission(self, name: str) -> bool:
        return self.administrator or bool(self.permissions.get(name))

    @property
    def user(self) -> str:
        """The signed-in user's id, for what only users do (a job acting there is refused)."""
        if self.user_id is None:
            raise InsufficientRights()
        return self.user_id


def no_permissions() -> dict[str, bool]:
    return {name: False for name in PERMISSIONS}


def hash_password(password: str) -> str:
    """A salted scrypt hash, self-describing so parameters can change later."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        actual = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual.hex(), digest)


def hash_token(token: str) -> str:
    """Keys and session tokens are random, so a plain SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


# ---------------------------------------------------------------- groups and users


def merge_group_permissions(db: Database, group_ids: list[str]) -> dict[str, bool]:
    merged = no_permissions()
    for group in db.groups.find({"_id": {"$in": list(group_ids)}}):
        for name, value in group.get("permissions", {}).items():
            merged[name] = merged.get(name, False) or bool(value)
    return merged


def get_user_or_404(db: Database, user_id: str) -> dict:
    user = db.users.find_one({"_id": user_id})
    if user is None:
        raise NotFound()
    return user


def get_group_or_404(db: Database, group_id: str) -> dict:
    group = db.groups.find_one({"_id": group_id})
    if group is None:
        raise NotFound()
    return group


#: No setting may allow shorter passwords than this.
MINIMUM_PASSWORD_LENGTH = 10


def check_password_strength(password: str, minimum: int = MINIMUM_PASSWORD_LENGTH, user_id: str = "") -> None:
    """Refuse blank, short and commonly guessed passwords (and the user's own name)."""
    minimum = max(minimum, MINIMUM_PASSWORD_LENGTH)
    if not password.strip():
        raise BadRequest("Password must not be blank")
    if len(password) < minimum:
        raise BadRequest(f"Password does not meet minimum length requirement ({minimum})")
    if password.lower() in COMMON_PASSWORDS or password.lower() == user_id.lower():
        raise BadRequest("Password is too easy to guess; choose another")


def create_user(
    db: Database,
    user_id: str,
    password: str,
    *,
    administrator=False,
    force_reset=False,
    minimum_length=MINIMUM_PASSWORD_LENGTH,
) -> dict:
    check_password_strength(password, minimum_length, user_id)
    if db.removed_users.find_one({"_id": user_id}):
        # Objects keep the name of whoever made them: a new user of that name must not inherit them.
        raise BadRequest("User name belonged to a removed user; choose another")
    user = {
        "_id": user_id,
        "administrator": administrator,
        "groups": [],
        "permissions": no_permissions(),
        "primary_group": "",
        "password": hash_password(password),
        "force_reset": force_reset,
        "last_password_change": now(),
        "created_at": now(),
    }
    try:
        db.users.insert_one(user)
    except DuplicateKeyError:
        raise BadRequest("User already exists") from None
    return user


def ensure_first_admin(db: Database, user_id: str, password: str) -> bool:
    """Create the first administrator from settings when there are no users yet."""
    if not user_id or not password or db.users.count_documents({}, limit=1):
        return False
    try:
        create_user(db, user_id, password, administrator=True)
    except BadRequest:
        return False
    return True


def edit_user(db: Database, user_id: str, changes: dict, minimum_length=MINIMUM_PASSWORD_LENGTH) -> dict:
    user = get_user_or_404(db, user_id)
    update: dict = {}
    if "password" in changes:
        check_password_strength(changes["password"], minimum_length, user_id)
        update.update(password=hash_password(changes["password"]), last_password_change=now())
        db.sessions.delete_many({"user.id": user_id})
    if "groups" in changes:
        missing = set(changes["groups"]) - {g["_id"] for g in db.groups.find({"_id": {"$in": changes["groups"]}})}
        if missing:
            raise BadRequest(f"Group does not exist: {sorted(missing)[0]}")
        update["groups"] = changes["groups"]
        update["permissions"] = merge_group_permissions(db, changes["groups"])
    groups = update.get("groups", user["groups"])
    if "primary_group" in changes:
        primary = changes["primary_group"]
        if primary and not db.groups.find_one({"_id": primary}):
            raise BadRequest("Primary group does not exist")
        if primary and primary not in groups:
            raise Conflict("User is not member of group")
        update["primary_group"] = primary
    for key in ("administrator", "force_reset"):
        if key in changes:
            update[key] = changes[key]
    demoted = user.get("administrator") and update.get("administrator") is False
    if demoted:
        require_another_administrator(db, user_id, "demoted")
    if update:
        db.users.update_one({"_id": user_id}, {"$set": update})
        forget_api_keys()
    if demoted and not count_administrators(db):
        # Two administrators demoted each other at once: undo this one.
        db.users.update_one({"_id": user_id}, {"$set": {"administrator": True}})
        raise Conflict("The last administrator cannot be demoted")
    return get_user_or_404(db, user_id)


def count_administrators(db: Database) -> int:
    return db.users.count_documents({"administrator": True})


def require_another_administrator(db: Database, user_id: str, what: str) -> None:
    if not db.users.find_one({"administrator": True, "_id": {"$ne": user_id}}):
        raise Conflict(f"The last administrator cannot be {what}")


def create_group(db: Database, group_id: str) -> dict:
    group = {"_id": group_id, "name": group_id, "permissions": no_permissions(), "created_at": now()}
    try:
        db.groups.insert_one(group)
    except DuplicateKeyError:
        raise BadRequest("Group already exists") from None
    return group


def edit_group_permissions(db: Database, group_id: str, permissions: dict[str, bool]) -> dict:
    group = get_group_or_404(db, group_id)
    merged = {**no_permissions(), **group.get("permissions", {}), **permissions}
    db.groups.update_one({"_id": group_id}, {"$set": {"permissions": merged}})
    refresh_member_permissions(db, group_id)
    forget_api_keys()
    return get_group_or_404(db, group_id)


def refresh_member_permissions(db: Database, group_id: str) -> None:
    for user in db.users.find({"groups": group_id}, {"groups": 1}):
        db.users.update_one(
            {"_id": user["_id"]}, {"$set": {"permissions": merge_group_permissions(db, user["groups"])}}
        )


def remove_group(db: Database, group_id: str) -> None:
    get_group_or_404(db, group_id)
    db.groups.delete_one({"_id": group_id})
    for user in db.users.find({"groups": group_id}, {"groups": 1}):
        groups = [g for g in user["groups"] if g != group_id]
        db.users.update_one(
            {"_id": user["_id"]}, {"$set": {"groups": groups, "permissions": merge_group_permissions(db, groups)}}
        )
    forget_api_keys()


def client_for_user(user: dict, **extra) -> Client:
    return Client(
        user_id=user["_id"],
        administrator=user.get("administrator", False),
        groups=list(user.get("groups", [])),
        permissions=dict(user.get("permissions", {})),
        force_reset=bool(user.get("force_reset")),
        **extra,
    )


# ---------------------------------------------------------------- sessions


_unknown_user_hash: list[str] = []


def _hash_for_unknown_users() -> str:
    """A hash no password matches, checked for unknown user names so that they cost the same KDF work."""
    if not _unknown_user_hash:
        _unknown_user_hash.append(hash_password(secrets.token_hex(16)))
    return _unknown_user_hash[0]


def login(db: Database, user_id: str, password: str, remember: bool = False) -> tuple[dict, str]:
    """Check credentials and open a session; returns (session, raw token).

    An unknown name costs the same scrypt work as a wrong password, so response times do not
    tell which user names exist.
    """
    user = db.users.find_one({"_id": user_id})
    matches = check_password(password, user["password"] if user else _hash_for_unknown_users())
    if user is None or not matches:
        raise BadRequest("Invalid username or password")
    token = secrets.token_urlsafe(32)
    lifetime = REMEMBERED_SESSION_LIFETIME if remember else SESSION_LIFETIME
    session = {
        "_id": secrets.token_urlsafe(16),
        "token": hash_token(token),
        "user": {"id": user_id},
        "created_at": now(),
        "expires_at": later(lifetime.total_seconds()),
    }
    db.sessions.insert_one(session)
    return session, token


def client_from_session(db: Database, session_id: str, token: str) -> Client | None:
    session = db.sessions.find_one({"_id": session_id})
    if not session or session["expires_at"] < now() or not hmac.compare_digest(session["token"], hash_token(token)):
        return None
    user = db.users.find_one({"_id": session["user"]["id"]})
    return client_for_user(user, session_id=session_id) if user else None


def logout(db: Database, session_id: str) -> None:
    db.sessions.delete_one({"_id": session_id})


# ---------------------------------------------------------------- API keys


def create_api_key(db: Database, user: dict, name: str, permissions: dict[str, bool]) -> tuple[dict, str]:
    """A new key for ``user``: permissions are clipped to the owner's; the raw key is returned once."""
    raw = secrets.token_hex(32)
    owner = client_for_user(user)
    granted = {p: bool(permissions.get(p)) and owner.has_permission(p) for p in PERMISSIONS}
    existing = db.keys.count_documents({"user.id": user["_id"], "name": name})
    key = {
        "_id": hash_token(raw),
        "id": f"{name.lower().replace(' ', '_')}_{existing}",
        "name": name,
        "permissions": granted,
        "created_at": now(),
        "user": {"id": user["_id"]},
    }
    while db.keys.find_one({"id": key["id"], "user.id": user["_id"]}):
        key["id"] = f"{key['id']}_{new_id(3)}"
    db.keys.insert_one(key)
    return key, raw


#: Seconds a successful API-key check is reused within one process. Checking a key costs two
#: database reads, twice what the typical request (a process poll) needs otherwise. A
#: change made through this process (users, groups, keys) clears the cache at once; one
#: made elsewhere (another API worker, the CLI) shows after at most this long.
API_KEY_CACHE_SECONDS = 5.0
_API_KEY_CACHE_SIZE = 1024
_api_key_cache: dict[tuple, tuple[float, Client]] = {}


def forget_api_keys() -> None:
    """Drop every cached API-key check of this process (after a change to users, groups or keys)."""
    _api_key_cache.clear()


def client_from_api_key(db: Database, user_id: str, raw_key: str) -> Client | None:
    """The caller behind ``user_id:raw_key``, or None; successes are cached briefly (see above)."""
    key_hash = hash_token(raw_key)
    # The database is part of the cache key: tests (and tools) use several in one process.
    cache_key = (id(db.client), db.name, user_id, key_hash)
    cached = _api_key_cache.get(cache_key)
    if cached is not None and time.monotonic() - cached[0] < API_KEY_CACHE_SECONDS:
        return _copy(cached[1])
    client = _check_api_key(db, user_id, key_hash)
    if client is not None:
        if len(_api_key_cache) >= _API_KEY_CACHE_SIZE:
            forget_api_keys()
        _api_key_cache[cache_key] = (time.monotonic(), _copy(client))
    return client


def _copy(client: Client) -> Client:
    return dataclasses.replace(client, groups=list(client.groups), permissions=dict(client.permissions))


def _check_api_key(db: Database, user_id: str, key_hash: str) -> Client | None:
    key = db.keys.find_one({"_id": key_hash})
    if not key or key["user"]["id"] != user_id:
        return None
    user = db.users.find_one({"_id": user_id})
    if not user:
        return None
    client = client_for_user(user)
    # A key carries the lesser of its own permissions and its owner's current ones.
    client.permissions = {p: bool(key["permissions"].get(p)) and client.has_permission(p) for p in PERMISSIONS}
    return client


def get_own_key_or_404(db: Database, user_id: str, key_id: str) -> dict:
    key = db.keys.find_one({"id": key_id, "user.id": user_id})
    if key is None:
        raise NotFound()
    return key


def edit_api_key(db: Database, user: dict, key_id: str, permissions: dict[str, bool]) -> dict:
    key = get_own_key_or_404(db, user["_id"], key_id)
    owner = client_for_user(user)
    merged = {**key["permissions"], **permissions}
    granted = {p: bool(merged.get(p)) and owner.has_permission(p) for p in PERMISSIONS}
    db.keys.update_one({"_id": key["_id"]}, {"$set": {"permissions": granted}})
    forget_api_keys()
    return get_own_key_or_404(db, user["_id"], key_id)


def check_permission_names(permissions: dict) -> None:
    unknown = sorted(set(permissions) - set(PERMISSIONS))
    if unknown:
        raise InvalidInput(f"Unknown permission: {unknown[0]}", errors={"permissions": [f"unknown: {unknown[0]}"]})


def find_users(db: Database) -> list[dict]:
    return list(db.users.find({}).sort("_id", 1))


def find_groups(db: Database) -> list[dict]:
    return list(db.groups.find({}).sort("_id", 1))


def remove_user(db: Database, user_id: str) -> None:
    """Remove the user with every key and session that could still act for them.

    The name is retired: objects record their makers by name, so a user created later under
    it would otherwise inherit this one's private samples, references and rights.
    """
    user = get_user_or_404(db, user_id)
    if user.get("administrator"):
        require_another_administrator(db, user_id, "removed")
    with contextlib.suppress(DuplicateKeyError):
        db.removed_users.insert_one({"_id": user_id, "removed_at": now()})
    db.users.delete_one({"_id": user_id})
    if user.get("administrator") and not count_administrators(db):
        db.users.insert_one(user)  # two administrators removed each other at once: undo this one
        raise Conflict("The last administrator cannot be removed")
    db.keys.delete_many({"user.id": user_id})
    db.sessions.delete_many({"user.id": user_id})
    forget_api_keys()


def find_own_keys(db: Database, user_id: str) -> list[dict]:
    return list(db.keys.find({"user.id": user_id}).sort("created_at", 1))


def remove_own_key(db: Database, user_id: str, key_id: str) -> None:
    key = get_own_key_or_404(db, user_id, key_id)
    db.keys.delete_one({"_id": key["_id"]})
    forget_api_keys()


def remove_own_keys(db: Database, user_id: str) -> None:
    db.keys.delete_many({"user.id": user_id})
    forget_api_keys()
