"""The Job API client: the only way a job actor talks to the server.

A worker machine needs the broker and ``VIROSCOPE_API_URL``, not the database.
Every request carries ``job-<id>:<key>`` Basic auth.
"""

from __future__ import annotations

import time
from pathlib import Path

import requests

from ..core.processes import RunningElsewhere

RETRYABLE = (requests.ConnectionError, requests.Timeout)


class JobApiError(RuntimeError):
    def __init__(self, response: requests.Response):
        try:
            self.body = response.json()
        except ValueError:
            self.body = {}
        message = self.body.get("message", response.text)
        self.status = response.status_code
        super().__init__(f"Job API {response.request.method} {response.request.path_url} -> {self.status}: {message}")


class JobClient:
    def __init__(self, api_url: str, job_id: str, key: str, timeout: float = 30, retries: int = 5):
        self.base = api_url.rstrip("/")
        self.job_id = job_id
        self.session = requests.Session()
        self.session.auth = (f"job-{job_id}", key)
        self.timeout = timeout
        self.retries = retries

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """Send a request, retrying briefly while the API is unreachable or unavailable."""
        for attempt in range(self.retries + 1):
            try:
                response = self.session.request(method, self.base + path, timeout=self.timeout, **kwargs)
            except RETRYABLE:
                if attempt == self.retries:
                    raise
            else:
                if response.status_code != 503 or attempt == self.retries:
                    if response.status_code >= 400:
                        raise JobApiError(response)
                    return response
            time.sleep(min(2**attempt * 0.2, 5))
        raise AssertionError("unreachable")

    def get(self, path: str) -> dict:
        return self.request("GET", path).json()

    def patch(self, path: str, body: dict) -> dict:
        return self.request("PATCH", path, json=body).json()

    def post(self, path: str, body: dict) -> dict:
        return self.request("POST", path, json=body).json()

    def put(self, path: str, body: dict | None = None) -> dict:
        response = self.request("PUT", path, json=body or {})
        return response.json() if response.content else {}

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def download(self, path: str, target: Path) -> Path:
        """Stream a file from the server to ``target``."""
        target.parent.mkdir(parents=True, exist_ok=True)
        with self.request("GET", path, stream=True) as response, open(target, "wb") as handle:
            for chunk in response.iter_content(1 << 20):
                handle.write(chunk)
        return target

    def upload(self, path: str, file_path: Path, name: str | None = None) -> dict:
        """Stream a file to the server as multipart form data under ``file``."""
        with open(file_path, "rb") as handle:
            files = {"file": (name or Path(file_path).name, handle, "application/octet-stream")}
            return self.request("POST", path, files=files).json()

    # -- job life cycle

    def claim(self) -> dict | None:
        """Take the job for this run; None when it is finished or cancelled.

        Raises ``RunningElsewhere`` while another worker's run of it is alive.
        """
        try:
            return self.request("POST", f"/api/jobs/{self.job_id}/claim").json()
        except JobApiError as error:
            if error.status == 409 and "retry_after" in error.body:
                raise RunningElsewhere(error.body["retry_after"]) from None
            if error.status == 409:
                return None
            raise

    def ping(self) -> bool:
        """Heartbeat; True when the job was asked to stop."""
        return bool(self.put(f"/api/jobs/{self.job_id}/ping").get("cancel_requested"))

    def report(self, step: str | None, progress: float | None) -> None:
        self.post(f"/api/jobs/{self.job_id}/status", {"state": "running", "step": step, "progress": progress})

    def finish(self, state: str, error: str | None) -> None:
        self.post(f"/api/jobs/{self.job_id}/status", {"state": state, "error": error})
