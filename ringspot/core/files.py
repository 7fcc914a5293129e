"""The file store under ``DATA_PATH``: streamed writes with a size limit, paths that stay inside."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO

from .errors import BadRequest, PayloadTooLarge

CHUNK = 1 << 20


def store_root(data_path: str) -> Path:
    root = Path(data_path).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


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
    """Copy ``stream`` to ``target`` in chunks, at most ``limit`` bytes; nothing is left on failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    size = 0
    try:
        with open(partial, "wb") as handle:
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
