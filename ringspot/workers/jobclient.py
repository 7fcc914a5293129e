"""The Job API client: the only way a job actor talks to the server.

A worker machine needs the broker and ``RINGSPOT_API_URL``, not the database.
Every request carries ``job-<id>:<key>`` Basic auth.
"""

from __future__ import annotations

import time
from pathlib import Path

import requests

from ..core.processes import RunningElsewhere

RETRYABLE = (requests.ConnectionError, requests.Timeout)
#: Seconds a request keeps retrying while the API is unreachable or answers 503 (its database or
#: broker restarting) before the job gives up: long enough to ride out a restart (a database
#: server, a replica-set election, the API itself), so the run resumes where it was instead of
#: failing and being redone from its first step (tests/integration/test_faults.py). Its silent
#: heartbeat meanwhile is harmless: only a redelivered message could claim the process, and the
#: broker redelivers only when this worker is gone; the reaper waits far longer.
RETRY_FOR = 60.0
#: Backoff between retries: doubling from the first, capped.
FIRST_DELAY, MAX_DELAY = 0.2, 5.0


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
    def __init__(self, api_url: str, job_id: str, key: str, timeout: float = 30, retry_for: float = RETRY_FOR):
        self.base = api_url.rstrip("/")
        self.job_id = job_id
        self.session = requests.Session()
        self.session.auth = (f"job-{job_id}", key)
        self.timeout = timeout
        self.retry_for = retry_for

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """Send a request, retrying for ``retry_for`` seconds while the API is unreachable or unavailable."""
        deadline = time.monotonic() + self.retry_for
        delay = FIRST_DELAY
        while True:
            try:
                response = self.session.request(method, self.base + path, timeout=self.timeout, **kwargs)
            except RETRYABLE:
                if time.monotonic() + delay > deadline:
                    raise
            else:
                if response.status_code != 503 or time.monotonic() + delay > deadline:
                    if response.status_code >= 400:
                        raise JobApiError(response)
                    return response
            time.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)

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
            job = self.request("POST", f"/api/jobs/{self.job_id}/claim").json()
        except JobApiError as error:
            if error.status == 409 and "retry_after" in error.body:
                raise RunningElsewhere(error.body["retry_after"]) from None
            if error.status == 409:
                return None
            raise
        # The message carried a claim token; the claim answered with this run's key.
        if "key" in job:
            self.session.auth = (f"job-{self.job_id}", job.pop("key"))
        return job

    def ping(self) -> bool:
        """Heartbeat; True when the job was asked to stop."""
        return bool(self.put(f"/api/jobs/{self.job_id}/ping").get("cancel_requested"))

    def report(self, step: str | None, progress: float | None) -> None:
        self.post(f"/api/jobs/{self.job_id}/status", {"state": "running", "step": step, "progress": progress})

    def finish(self, state: str, error: str | None) -> None:
        self.post(f"/api/jobs/{self.job_id}/status", {"state": state, "error": error})
