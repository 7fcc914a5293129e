"""A small Python client for the ringspot API (used by the CLI and the demo).

>>> api = Client("http://127.0.0.1:9950", "admin", key)      # doctest: +SKIP
>>> ref = api.post("/api/refs", {"name": "Plant viruses", "import_from": upload["id"]})  # doctest: +SKIP
>>> api.wait_process(ref["process"]["id"])                    # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import requests


class ApiError(RuntimeError):
    def __init__(self, response: requests.Response):
        try:
            body = response.json()
            message = body.get("message", response.text)
        except ValueError:
            message = response.text
        self.status = response.status_code
        super().__init__(f"{response.request.method} {response.request.path_url}: {self.status} {message}")


class ProcessFailed(RuntimeError):
    pass


class Client:
    def __init__(self, url: str, user: str | None = None, key: str | None = None, timeout: float = 60):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if user and key:
            self.session.auth = (user, key)
        self.timeout = timeout

    def request(self, method: str, path: str, raw: bool = False, **kwargs):
        """The decoded JSON reply (None when empty), or the ``requests.Response`` itself with ``raw``."""
        response = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            raise ApiError(response)
        if raw:
            return response
        return response.json() if response.content else None

    def download(self, path: str, target: Path, **params) -> Path:
        """Write a file the API serves (an export, a report) to ``target``."""
        target.write_bytes(self.request("GET", path, raw=True, params=params or None).content)
        return target

    def get(self, path: str, **params):
        return self.request("GET", path, params=params or None)

    def get_all(self, path: str, **params) -> list[dict]:
        """Every document of a list, page after page (a list that is not paginated comes whole)."""
        documents, page = [], 1
        while True:
            envelope = self.get(path, page=page, per_page=100, **params)
            if isinstance(envelope, list):
                return envelope
            documents += envelope["documents"]
            if page >= envelope.get("page_count", 1):
                return documents
            page += 1

    def post(self, path: str, body: dict | None = None):
        return self.request("POST", path, json=body or {})

    def patch(self, path: str, body: dict):
        return self.request("PATCH", path, json=body)

    def delete(self, path: str):
        return self.request("DELETE", path)

    def login(self, user: str, password: str) -> None:
        self.request("POST", "/api/account/login", json={"username": user, "password": password})

    def create_key(self, name: str, permissions: dict | None = None) -> str:
        return self.post("/api/account/keys", {"name": name, "permissions": permissions or {}})["key"]

    def upload(self, path: Path, upload_type: str, on_progress: Callable[[int], None] | None = None) -> dict:
        """Stream a file to ``/api/uploads``; ``on_progress`` receives byte counts as they go."""
        path = Path(path)

        def chunks():
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    if on_progress:
                        on_progress(len(chunk))
                    yield chunk

        return self.request(
            "POST",
            "/api/uploads",
            params={"name": path.name, "type": upload_type},
            data=chunks(),
            headers={"Content-Type": "application/octet-stream"},
        )

    def wait_process(
        self, process_id: str, on_update: Callable[[dict], None] | None = None, timeout: float = 3600
    ) -> dict:
        """Poll a process with backoff until it ends; raise ``ProcessFailed`` unless it completed."""
        delay, deadline = 0.2, time.monotonic() + timeout
        while True:
            doc = self.get(f"/api/processes/{process_id}")
            if on_update:
                on_update(doc)
            if doc["state"] == "complete":
                return doc
            if doc["state"] in ("error", "cancelled"):
                raise ProcessFailed(f"{doc['type']} {process_id} ended in {doc['state']}: {doc.get('error')}")
            if time.monotonic() > deadline:
                raise ProcessFailed(f"{doc['type']} {process_id} did not finish within {timeout:g} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 3.0)
