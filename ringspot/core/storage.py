"""The file store: one small interface over a local folder (the default) or S3-compatible object storage.

Keys are relative, ``/``-separated names (``samples/ab12cd34/reads_1.fq.gz``). Both back ends stream
in both directions and never hold a whole file in memory, and both publish a file only once it is
complete: the local folder writes under a unique temporary name and renames it into place; S3 uploads
in parts and the object exists only when the multipart upload is completed (an upload cut short is
aborted, or left as invisible parts that ``abort_stale_uploads`` and the bucket's lifecycle rule clear).

``RINGSPOT_STORAGE_URL`` chooses the back end: empty (or ``file://``) keeps files under ``DATA_PATH``;
``s3://bucket/prefix`` puts them in that bucket under that prefix, at ``AWS_ENDPOINT_URL`` (any
S3-compatible server) with the usual ``AWS_*`` credentials, path-style addressing when
``RINGSPOT_S3_ADDRESSING`` is ``path`` (MinIO, SeaweedFS, Ceph without wildcard DNS).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

from .errors import BadRequest, NotFound, PayloadTooLarge
from .files import CHUNK, make_private_folders, path_in_store, write_stream

#: Size of one multipart part and of one buffered read; S3 wants parts of at least 5 MiB.
PART_SIZE = 8 * 1024**2

ADDRESSING_STYLES = ("auto", "path", "virtual")


def check_key(key: str) -> str:
    """A key is a relative path of plain names: no empty part, no ``.``/``..``, no backslash or NUL.

    >>> check_key("samples/ab12/reads_1.fq.gz")
    'samples/ab12/reads_1.fq.gz'
    >>> check_key("samples/../etc")
    Traceback (most recent call last):
    ...
    ringspot.core.errors.BadRequest: Invalid file name
    """
    parts = key.split("/")
    if not key or any(part in ("", ".", "..") or "\\" in part or "\x00" in part for part in parts):
        raise BadRequest("Invalid file name")
    return key


@dataclass(frozen=True)
class Range:
    """Bytes ``start`` to ``end`` inclusive, as in an HTTP ``Range`` header."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class FileStore(Protocol):
    """What the rest of ringspot needs from a place to keep large files."""

    def put(self, key: str, stream: BinaryIO, limit: int) -> int:
        """Copy ``stream`` to ``key`` (at most ``limit`` bytes); the key appears only when complete."""
        ...

    def put_file(self, key: str, path: Path) -> int:
        """Store a local file under ``key``."""
        ...

    def chunks(self, key: str, byte_range: Range | None = None) -> Iterator[bytes]:
        """The bytes of ``key`` (or of a range of it), a chunk at a time; ``NotFound`` if missing."""
        ...

    def fetch(self, key: str, target: Path) -> int:
        """Copy ``key`` to a local file, which appears only when complete."""
        ...

    def size(self, key: str) -> int:
        """The size of ``key`` in bytes; ``NotFound`` if missing."""
        ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str) -> Iterator[str]:
        """Every key under the folder ``prefix``."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is no error (deletes are retried after lost replies)."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key under the folder ``prefix``; the number removed."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The file itself where the store is a local folder (lets the web server send it directly)."""
        ...


class LocalStore:
    """Files under one folder (``DATA_PATH``): the single-machine default."""

    def __init__(self, root: str) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return path_in_store(self.root, *check_key(key).split("/"))

    def put(self, key: str, stream: BinaryIO, limit: int) -> int:
        return write_stream(stream, self._path(key), limit)

    def put_file(self, key: str, path: Path) -> int:
        with open(path, "rb") as handle:
            return write_stream(handle, self._path(key), path.stat().st_size)

    def chunks(self, key: str, byte_range: Range | None = None) -> Iterator[bytes]:
        # Checked now, so a missing file fails the call rather than a response already begun.
        return _file_chunks(self._existing(key), byte_range)

    def fetch(self, key: str, target: Path) -> int:
        with open(self._existing(key), "rb") as handle:
            return write_stream(handle, target, self.size(key))

    def size(self, key: str) -> int:
        return self._existing(key).stat().st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def keys(self, prefix: str) -> Iterator[str]:
        folder = self._path(prefix)
        root = Path(self.root).resolve()
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file() and not path.name.endswith(".partial"):
                yield path.relative_to(root).as_posix()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        count = len(list(self.keys(prefix)))
        shutil.rmtree(self._path(prefix), ignore_errors=True)
        return count

    def local_path(self, key: str) -> Path | None:
        return self._existing(key)

    def _existing(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise NotFound()
        return path


def _file_chunks(path: Path, byte_range: Range | None) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        remaining = None
        if byte_range is not None:
            handle.seek(byte_range.start)
            remaining = byte_range.length
        while remaining is None or remaining > 0:
            chunk = handle.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


class _LimitedReader:
    """A read-only stream that raises ``PayloadTooLarge`` once more than ``limit`` bytes pass."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size if size is not None and size >= 0 else CHUNK)
        self.count += len(chunk)
        if self.count > self.limit:
            raise PayloadTooLarge(f"File is larger than the upload limit of {self.limit} bytes")
        return chunk


class S3Store:
    """Objects in one bucket under one prefix, on AWS S3 or any S3-compatible server."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None, addressing: str = "auto"):
        import boto3
        from botocore.config import Config

        if addressing not in ADDRESSING_STYLES:
            raise ValueError(f"S3 addressing must be one of {', '.join(ADDRESSING_STYLES)}, not {addressing!r}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        config = Config(
            s3={"addressing_style": addressing},
            retries={"max_attempts": 5, "mode": "standard"},
            # Checksums only where S3 requires them: several S3-compatible servers refuse the
            # trailing checksums that newer clients send by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None, config=config)

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _folder(self, prefix: str) -> str:
        return self._name(prefix.strip("/")) + "/"

    def put(self, key: str, stream: BinaryIO, limit: int) -> int:
        """Parts of ``PART_SIZE`` read one at a time, so memory stays at one part whatever the size."""
        from boto3.s3.transfer import TransferConfig

        reader = _LimitedReader(stream, limit)
        config = TransferConfig(
            multipart_threshold=PART_SIZE,
            multipart_chunksize=PART_SIZE,
            max_concurrency=2,
            max_io_queue=2,
            use_threads=True,
        )
        # s3transfer reads a stream that cannot seek into at most this many parts at once.
        config.max_in_memory_upload_chunks = 2
        # On any failure s3transfer aborts the multipart upload, so no object and no parts remain.
        self.client.upload_fileobj(reader, self.bucket, self._name(key), Config=config)
        return reader.count

    def put_file(self, key: str, path: Path) -> int:
        with open(path, "rb") as handle:
            return self.put(key, handle, path.stat().st_size)

    def chunks(self, key: str, byte_range: Range | None = None) -> Iterator[bytes]:
        extra = {"Range": f"bytes={byte_range.start}-{byte_range.end}"} if byte_range else {}
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._name(key), **extra)["Body"]
        except self.client.exceptions.NoSuchKey:
            raise NotFound() from None

        def generate() -> Iterator[bytes]:
            with body:
                yield from body.iter_chunks(CHUNK)

        return generate()

    def fetch(self, key: str, target: Path) -> int:
        chunks = self.chunks(key)
        make_private_folders(target.parent)
        temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.partial"
        try:
            with open(temporary, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return target.stat().st_size

    def size(self, key: str) -> int:
        from botocore.exceptions import ClientError

        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._name(key))["ContentLength"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise NotFound() from None
            raise

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except NotFound:
            return False
        return True

    def keys(self, prefix: str) -> Iterator[str]:
        skip = len(self.prefix) + 1 if self.prefix else 0
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._folder(prefix))
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][skip:]

    def delete(self, key: str) -> None:
        # S3 answers 204 for a key that is not there, which is what a retried delete wants.
        self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        batch: list[dict] = []
        for key in self.keys(prefix):
            batch.append({"Key": self._name(key)})
            if len(batch) == 1000:
                count += self._delete_batch(batch)
                batch = []
        if batch:
            count += self._delete_batch(batch)
        return count

    def _delete_batch(self, batch: list[dict]) -> int:
        self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(batch)

    def local_path(self, key: str) -> Path | None:
        return None

    def abort_stale_uploads(self, older_than: timedelta = timedelta(days=1)) -> int:
        """Abort multipart uploads a killed process left behind; their parts are invisible but billed."""
        cutoff = datetime.now(UTC) - older_than
        count = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < cutoff:
                    upload_id = upload["UploadId"]
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload_id)
                    count += 1
        return count


def open_store(storage_url: str, data_path: str, *, addressing: str = "auto") -> FileStore:
    """The store a ``RINGSPOT_STORAGE_URL`` names; ``DATA_PATH`` when it is empty."""
    url = urlparse(storage_url)
    if not storage_url or url.scheme == "file":
        return LocalStore(url.path if url.scheme == "file" and url.path else data_path)
    if url.scheme == "s3":
        if not url.netloc:
            raise ValueError(f"RINGSPOT_STORAGE_URL names no bucket: {storage_url!r}")
        return S3Store(url.netloc, url.path, endpoint_url=os.environ.get("AWS_ENDPOINT_URL"), addressing=addressing)
    raise ValueError(f"RINGSPOT_STORAGE_URL must be s3://bucket/prefix or file:///folder, not {storage_url!r}")


@functools.cache
def _configured(storage_url: str, data_path: str, addressing: str) -> FileStore:
    return open_store(storage_url, data_path, addressing=addressing)


def store_at(data_path: str) -> FileStore:
    """The store this process keeps large files in: ``RINGSPOT_STORAGE_URL``, else the folder ``data_path``.

    One client per configuration: boto3 clients are thread-safe and slow to make.
    """
    storage_url = os.environ.get("RINGSPOT_STORAGE_URL", "")
    return _configured(storage_url, data_path, os.environ.get("RINGSPOT_S3_ADDRESSING", "auto"))


def publish(store: FileStore, key: str, path: Path) -> None:
    """Put a local file under ``key``, unless it already is that key's file (the local store)."""
    if isinstance(store, LocalStore) and store._path(key) == path.resolve():
        return
    store.put_file(key, path)


def scratch_folder(data_path: str) -> Path:
    """Local room for files on their way to or from the store (``DATA_PATH/temp``)."""
    folder = path_in_store(data_path, "temp")
    make_private_folders(folder)
    return folder


@contextlib.contextmanager
def local_copy(store: FileStore, key: str, scratch: str) -> Iterator[Path]:
    """A local file with the content of ``key``: the file itself for the local store, else a
    temporary copy under ``scratch`` removed afterwards (for tools and parsers that need a path)."""
    path = store.local_path(key)
    if path is not None:
        yield path
        return
    folder = Path(tempfile.mkdtemp(prefix="fetch-", dir=scratch_folder(scratch)))
    try:
        target = folder / key.rsplit("/", 1)[-1]
        store.fetch(key, target)
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)
