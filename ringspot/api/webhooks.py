"""``/api/webhooks``: administrators register URLs that receive signed event POSTs."""

from typing import Literal
from urllib.parse import urlparse

from flask import Blueprint
from pydantic import field_validator

from ..core import webhooks
from ..core.utils import to_json
from .auth import administrators_only
from .context import client, db
from .responses import json_response, no_content, paginated
from .validation import Body, PageQuery, body, query

bp = Blueprint("webhooks", __name__, url_prefix="/api/webhooks")

Event = Literal["process.complete", "process.error", "analysis.ready", "index.ready", "sample.ready"]


def check_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an http(s) URL")
    return url


class CreateWebhook(Body):
    url: str
    events: list[Event]
    secret: str | None = None

    _check_url = field_validator("url")(check_url)


class EditWebhook(Body):
    url: str | None = None
    events: list[Event] | None = None
    active: bool | None = None

    _check_url = field_validator("url")(lambda url: url if url is None else check_url(url))


def serialize_webhook(doc: dict, show_secret: bool = False) -> dict:
    return to_json({k: v for k, v in doc.items() if show_secret or k != "secret"})


administrators_only(bp)


@bp.get("")
def find():
    return json_response([serialize_webhook(h) for h in webhooks.find_webhooks(db())])


@bp.post("")
@body(CreateWebhook)
def create(data: CreateWebhook):
    hook = webhooks.create_webhook(db(), data.url, list(data.events), client().user, data.secret)
    # The signing secret is shown once, at creation.
    return json_response(serialize_webhook(hook, show_secret=True), 201, {"Location": f"/api/webhooks/{hook['_id']}"})


@bp.get("/<webhook_id>")
def get(webhook_id: str):
    return json_response(serialize_webhook(webhooks.get_webhook_or_404(db(), webhook_id)))


@bp.patch("/<webhook_id>")
@body(EditWebhook)
def edit(data: EditWebhook, webhook_id: str):
    return json_response(serialize_webhook(webhooks.edit_webhook(db(), webhook_id, data.model_dump(exclude_none=True))))


@bp.delete("/<webhook_id>")
def remove(webhook_id: str):
    webhooks.remove_webhook(db(), webhook_id)
    return no_content()


@bp.get("/<webhook_id>/deliveries")
@query(PageQuery)
def deliveries(args: PageQuery, webhook_id: str):
    webhooks.get_webhook_or_404(db(), webhook_id)
    return paginated(webhooks.find_deliveries(db(), webhook_id, page=args.page, per_page=args.per_page), to_json)
