"""Sending large job outputs (reads, host indexes) to the Job API without holding them in memory.

``JobClient.upload`` builds a multipart body in memory, which is fine for small files
but not for gigabytes of reads. `FileBody` streams a file as the raw request body with
a ``Content-Length``, and reopens it on every iteration, so the client's retries after
a dropped connection send the whole file again rather than an exhausted handle.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..workers.jobclient import JobClient

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
