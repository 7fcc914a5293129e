"""The file store's contract, run against the local folder and against a real S3-compatible server.

Every rule here holds for both back ends: streamed writes with a size limit, a key that appears only
when its file is complete, ranged reads, idempotent deletes, keys that cannot climb out of the store.
"""

from __future__ import annotations

import hashlib
import io

import boto3
import pytest

from ringspot.core.errors import BadRequest, NotFound, PayloadTooLarge
from ringspot.core.storage import LocalStore, Range, S3Store, open_store
from ringspot.core.utils import new_id


def make_bucket(endpoint: str) -> str:
    name = f"ringspot-{new_id()}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(str(tmp_path / "data"))
    endpoint = request.getfixturevalue("s3_server")
    return S3Store(make_bucket(endpoint), "lab/files", endpoint_url=endpoint, addressing="path")


class Failing(io.RawIOBase):
    """A client stream that breaks after ``good`` bytes, as a dropped connection does."""

    def __init__(self, good: int) -> None:
        self.left = good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.left <= 0:
            raise ConnectionResetError("client went away")
        n = min(len(buffer), self.left)
        buffer[:n] = b"x" * n
        self.left -= n
        return n


def test_put_then_read_back_in_chunks(store):
    data = bytes(range(256)) * 40_000  # 10 MB: more than one multipart part
    assert store.put("samples/s1/reads_1.fq.gz", io.BytesIO(data), len(data)) == len(data)
    assert store.size("samples/s1/reads_1.fq.gz") == len(data)
    assert b"".join(store.chunks("samples/s1/reads_1.fq.gz")) == data


def test_ranged_read_returns_exactly_the_bytes_asked_for(store):
    data = bytes(range(256)) * 100
    store.put("indexes/i1/reference.fa.gz", io.BytesIO(data), len(data))
    assert b"".join(store.chunks("indexes/i1/reference.fa.gz", Range(100, 1099))) == data[100:1100]
    assert b"".join(store.chunks("indexes/i1/reference.fa.gz", Range(len(data) - 5, len(data) - 1))) == data[-5:]


def test_missing_key_is_not_found(store, tmp_path):
    assert not store.exists("uploads/nothing")
    with pytest.raises(NotFound):
        store.size("uploads/nothing")
    with pytest.raises(NotFound):
        store.chunks("uploads/nothing")
    with pytest.raises(NotFound):
        store.fetch("uploads/nothing", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_deleting_a_missing_key_is_no_error(store):
    store.delete("uploads/never-written")
    store.put("uploads/u1", io.BytesIO(b"abc"), 10)
    store.delete("uploads/u1")
    store.delete("uploads/u1")  # a retry after a lost reply
    assert not store.exists("uploads/u1")
    assert store.delete_prefix("samples/gone") == 0


def test_delete_prefix_removes_one_folder_only(store):
    for key in ("samples/a/reads_1.fq.gz", "samples/a/reads_2.fq.gz", "samples/ab/reads_1.fq.gz"):
        store.put(key, io.BytesIO(b"ACGT"), 10)
    assert sorted(store.keys("samples/a")) == ["samples/a/reads_1.fq.gz", "samples/a/reads_2.fq.gz"]
    assert store.delete_prefix("samples/a") == 2
    assert list(store.keys("samples/a")) == []
    assert list(store.keys("samples/ab")) == ["samples/ab/reads_1.fq.gz"]


def test_over_the_limit_is_refused_and_leaves_nothing(store):
    with pytest.raises(PayloadTooLarge, match="upload limit of 1000 bytes"):
        store.put("uploads/big", io.BytesIO(b"x" * 20_000_000), 1000)
    assert not store.exists("uploads/big")
    with pytest.raises(PayloadTooLarge):
        store.put("uploads/big", io.BytesIO(b"x" * 20_000_000), 12_000_000)
    assert not store.exists("uploads/big")


def test_broken_upload_leaves_no_object_and_keeps_the_old_one(store):
    store.put("uploads/u1", io.BytesIO(b"first version"), 100)
    with pytest.raises(ConnectionResetError):
        store.put("uploads/u1", io.BufferedReader(Failing(20_000_000)), 10**9)
    assert b"".join(store.chunks("uploads/u1")) == b"first version"
    with pytest.raises(ConnectionResetError):
        store.put("uploads/u2", io.BufferedReader(Failing(3_000)), 10**9)
    assert not store.exists("uploads/u2")
    assert list(store.keys("uploads")) == ["uploads/u1"]


def test_fetch_copies_to_a_local_file(store, tmp_path):
    data = b"ACGT" * 1_000_000
    store.put("subtractions/s/subtraction.fa.gz", io.BytesIO(data), len(data))
    target = tmp_path / "cache" / "subtraction.fa.gz"
    assert store.fetch("subtractions/s/subtraction.fa.gz", target) == len(data)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert [p.name for p in target.parent.iterdir()] == ["subtraction.fa.gz"]  # no temporary left


def test_put_file_and_overwrite(store, tmp_path):
    source = tmp_path / "reference.json.gz"
    source.write_bytes(b"one")
    assert store.put_file("indexes/i/reference.json.gz", source) == 3
    source.write_bytes(b"two!")
    store.put_file("indexes/i/reference.json.gz", source)
    assert b"".join(store.chunks("indexes/i/reference.json.gz")) == b"two!"


@pytest.mark.parametrize("key", ["../escape", "samples/../../etc/passwd", "/abs", "a//b", "a/./b", "a\\b", ""])
def test_keys_that_would_climb_out_are_refused(store, key):
    with pytest.raises(BadRequest, match="Invalid file name"):
        store.put(key, io.BytesIO(b"x"), 10)


def test_open_store_chooses_the_back_end_from_the_url(tmp_path, s3_server, monkeypatch):
    assert isinstance(open_store("", str(tmp_path)), LocalStore)
    assert open_store(f"file://{tmp_path}/other", "/unused").root == f"{tmp_path}/other"  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    bucket = make_bucket(s3_server)
    store = open_store(f"s3://{bucket}/deep/prefix", str(tmp_path), addressing="path")
    store.put("uploads/u", io.BytesIO(b"abc"), 10)
    listed = boto3.client("s3", endpoint_url=s3_server).list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in listed] == ["deep/prefix/uploads/u"]
    with pytest.raises(ValueError, match="names no bucket"):
        open_store("s3:///prefix", str(tmp_path))
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        open_store("gs://bucket", str(tmp_path))
    with pytest.raises(ValueError, match="addressing"):
        open_store(f"s3://{bucket}", str(tmp_path), addressing="sideways")
