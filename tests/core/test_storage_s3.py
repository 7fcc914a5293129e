"""What only object storage can get wrong: big objects in bounded memory, uploads cut short mid-part."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta

import psutil
import pytest

from ringspot.core.storage import PART_SIZE, Range, S3Store

from ..conftest import wait_for
from .test_storage_files import Failing, make_bucket

MB = 1024**2


@pytest.fixture
def s3(s3_server):
    return S3Store(make_bucket(s3_server), "store", endpoint_url=s3_server, addressing="path")


class Generated(io.RawIOBase):
    """``size`` bytes of a repeating pattern, made as they are read: the source is never in memory."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = hashlib.sha256(b"ringspot").digest() * 4096  # 128 KiB
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left, len(self.block))
        buffer[:n] = self.block[:n]
        self.digest.update(self.block[:n])
        self.left -= n
        return n


class PeakMemory:
    """The highest resident set size of this process while the block runs, sampled every 10 ms."""

    def __enter__(self):
        self.process = psutil.Process()
        self.before = self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.before


def test_a_100_mb_object_streams_both_ways_in_bounded_memory(s3):
    size = 100 * MB
    source = Generated(size)
    with PeakMemory() as upload:
        assert s3.put("samples/big/reads_1.fq.gz", io.BufferedReader(source, PART_SIZE), size) == size
    assert s3.size("samples/big/reads_1.fq.gz") == size

    downloaded = hashlib.sha256()
    with PeakMemory() as download:
        for chunk in s3.chunks("samples/big/reads_1.fq.gz"):
            downloaded.update(chunk)
    assert downloaded.hexdigest() == source.digest.hexdigest()
    # Two 8 MiB parts in flight plus the client's own buffers (about 42 MB measured), never the
    # 100 MB object: a whole-file buffer would pass 100 MB.
    assert upload.growth < 64 * MB, f"upload grew the process by {upload.growth / MB:.0f} MB"
    assert download.growth < 16 * MB, f"download grew the process by {download.growth / MB:.0f} MB"

    tail = b"".join(s3.chunks("samples/big/reads_1.fq.gz", Range(size - 1000, size - 1)))
    assert len(tail) == 1000


def test_a_failed_upload_is_aborted_with_its_parts(s3):
    with pytest.raises(ConnectionResetError):
        s3.put("uploads/u", io.BufferedReader(Failing(3 * PART_SIZE + 5)), 10**9)
    assert not s3.exists("uploads/u")
    assert s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []


UPLOADER = textwrap.dedent(
    """
    import io, sys, time
    from ringspot.core.storage import S3Store

    class Endless(io.RawIOBase):
        def readable(self):
            return True
        def readinto(self, buffer):
            time.sleep(0.01)
            buffer[:] = b"x" * len(buffer)
            return len(buffer)

    store = S3Store(sys.argv[1], "store", endpoint_url=sys.argv[2], addressing="path")
    store.put("uploads/killed", io.BufferedReader(Endless(), 1 << 20), 10**12)
    """
)


def test_an_upload_killed_mid_way_leaves_no_object_and_its_parts_are_cleared(s3, s3_server):
    child = subprocess.Popen([sys.executable, "-c", UPLOADER, s3.bucket, s3_server], env=os.environ.copy())
    try:

        def parts_uploaded() -> bool:
            uploads = s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])
            if not uploads:
                return False
            parts = s3.client.list_parts(Bucket=s3.bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"])
            return bool(parts.get("Parts"))

        wait_for(parts_uploaded, timeout=60, message="a part of the upload on the server")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)

    assert not s3.exists("uploads/killed")
    assert list(s3.keys("uploads")) == []
    assert s3.abort_stale_uploads(older_than=timedelta(0)) == 1
    assert s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []
