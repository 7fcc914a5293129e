"""The file store under ``DATA_PATH``: streamed writes with a size limit, paths that stay inside.

Everything the store creates is private to the service's user (folders 0700, files 0600) whatever
the umask: the store holds private samples and references.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import IO, BinaryIO

from .errors import BadRequest, PayloadTooLarge

CHUNK = 1 << 20
PRIVATE_FOLDER, PRIVATE_FILE = 0o700, 0o600


def make_private_folders(path: Path) -> None:
    """``mkdir -p`` with every folder it creates private (``os.makedirs`` applies a mode to the last only)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_FOLDER)
        except FileExistsError:
            continue  # made at the same moment by a concurrent writer
        folder.chmod(PRIVATE_FOLDER)  # mkdir's mode is filtered by the umask


def store_root(data_path: str) -> Path:
    root = Path(data_path).resolve()
    make_private_folders(root)
    return root


class ExactLength:
    """A request body that must deliver its declared ``Content-Length``: a body cut short is refused.

    A client that stops sending (a dropped connection) otherwise ends the stream early and the
    shorter file would be stored as if complete.
    """

    def __init__(self, stream: IO[bytes], length: int):
        self.stream, self.length, self.received = stream, length, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.received += len(data)
        if not data and self.received < self.length:
            raise BadRequest(
                f"Upload ended after {self.received} of the {self.length} bytes its Content-Length declared"
            )
        return data


def path_in_store(data_path: str, *parts: str) -> Path:
    """A path under the store; any part that would climb out of it is refused."""
    root = store_root(data_path)
    path = root.joinpath(*parts).resolve()
    if root != path and root not in path.parents:
        raise BadRequest("Invalid file name")
    return path


def check_file_name(name: str | None) -> str:
    """File names are metadata only, but must be printable, short and free of path separators."""
    if not name or not name.strip():
        raise BadRequest("File name is required")
    if len(name) > 255 or any(c in name for c in "/\\\x00") or name in (".", "..") or not name.isprintable():
        raise BadRequest("Invalid file name")

    return name


def write_stream(stream: BinaryIO, target: Path, limit: int) -> int:
    """Copy ``stream`` to ``target`` in chunks, at most ``limit`` bytes; nothing is left on failure.

    Written under a name of its own beside the target and renamed into place when complete, so two
    writers of one name never mix their bytes and a reader never sees half a file.
    """
    make_private_folders(target.parent)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    size = 0
    try:
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE), "wb") as handle:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"File is larger than the upload limit of {limit} bytes")
                handle.write(chunk)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return size


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
