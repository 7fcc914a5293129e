"""Sending job outputs to the Job API: large files without holding them in memory, and the
final write of a job's object exactly once.

``JobClient.upload`` builds a multipart body in memory, which is fine for small files
but not for gigabytes of reads. `FileBody` streams a file as the raw request body with
a ``Content-Length``, and reopens it on every iteration, so the client's retries after
a dropped connection send the whole file again rather than an exhausted handle.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..workers.jobclient import JobApiError, JobClient

CHUNK = 1 << 20


class FileBody:
    """A re-iterable request body: each iteration streams the file from its start."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.size = self.path.stat().st_size

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        with open(self.path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk


def send_file(job: JobClient, method: str, path: str, file_path: str | os.PathLike) -> dict:
    """``method`` ``path`` with the file as its raw body; returns the JSON answer."""
    body = FileBody(file_path)
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(body))}
    response = job.request(method, path, data=body, headers=headers)
    return response.json() if response.content else {}


def finalize_once(job: JobClient, path: str, body: dict | None = None, done: str = "ready") -> None:
    """``PATCH path`` to finalize the job's object.

    A 409 on an object that is already ``done`` means an earlier try landed and only its
    reply was lost (the API restarting mid-request; the client then retries): that is success,
    not a reason to fail the job and discard its work.
    """
    try:
        job.request("PATCH", path, json=body or {})
    except JobApiError as error:
        if error.status != 409 or not job.get(path).get(done):
            raise
