"""Uploads: streamed to the store, size-limited, named safely, removable unless in use."""

import os

import pytest

from tests.common import post_upload


@pytest.fixture
def uploader(make_user):
    return make_user("uploader", permissions=["upload_file", "remove_file"])


def files_in_store(settings) -> list[str]:
    root = os.path.join(settings.data_path, "uploads")
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def test_upload_is_stored_and_listed(uploader, settings):
    response = post_upload(uploader, "reads_1.fq", b"@r\nACGT\n+\nIIII\n", "reads")
    assert response.status_code == 201
    assert response.headers["Location"] == f"/api/uploads/{response.json['id']}"
    assert response.json["size"] == 15 and response.json["type"] == "reads"
    assert files_in_store(settings) == [response.json["id"]]
    assert uploader.get("/api/uploads?type=reads").json["documents"][0]["id"] == response.json["id"]


def test_multipart_upload_uses_the_file_part(uploader):
    import io

    response = uploader.post(
        "/api/uploads?name=a.fa&type=subtraction",
        data={"file": (io.BytesIO(b">a\nACGT\n"), "a.fa")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201 and response.json["size"] == 8


def test_empty_file_is_400_and_leaves_nothing(uploader, settings, db):
    response = post_upload(uploader, "reads_1.fq", b"", "reads")
    assert response.status_code == 400 and response.json["message"] == "File is empty"
    assert files_in_store(settings) == [] and db.uploads.count_documents({}) == 0


def test_file_over_the_limit_is_413_and_leaves_nothing(uploader, app, settings, db):
    app.extensions["ringspot.settings"] = settings.with_(max_upload_bytes=1000)
    response = post_upload(uploader, "reads_1.fq", b"A" * 5000, "reads")
    assert response.status_code == 413
    assert "1000 bytes" in response.json["message"]
    assert db.uploads.count_documents({}) == 0
    leftovers = [name for root, _, names in os.walk(settings.data_path) for name in names]
    assert leftovers == []


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b.fq", "..", "bad\x00name", "tab\tname", "x" * 300])
def test_unsafe_names_are_refused_and_nothing_is_written_outside(uploader, settings, name, tmp_path):
    response = post_upload(uploader, name, b"@r\nA\n+\nI\n", "reads")
    assert response.status_code == 400
    assert response.json["message"] in ("Invalid file name", "File name is required")
    assert not os.path.exists(os.path.join(settings.data_path, "..", "etc"))
    assert files_in_store(settings) == []


def test_non_utf8_name_is_refused(uploader):
    response = uploader.post(
        "/api/uploads?name=%ff%fe.fq&type=reads", data=b"@r\nA\n+\nI\n", content_type="application/octet-stream"
    )
    assert response.status_code == 400
    assert response.json["message"] == "File name is not valid UTF-8"


def test_unknown_type_is_422(uploader):
    assert post_upload(uploader, "reads_1.fq", b"x", "movies").status_code == 422


def test_upload_needs_the_upload_file_permission(make_user):
    response = post_upload(make_user("nobody"), "reads_1.fq", b"@r\nA\n+\nI\n", "reads")
    assert response.status_code == 403 and response.json["message"] == "Not permitted"


def test_remove_needs_permission_and_refuses_reserved_uploads(uploader, make_user, db, settings):
    upload_id = post_upload(uploader, "reads_1.fq", b"@r\nA\n+\nI\n", "reads").json["id"]
    assert make_user("nobody").delete(f"/api/uploads/{upload_id}").status_code == 403
    db.uploads.update_one({"_id": upload_id}, {"$set": {"reserved": True}})
    assert uploader.delete(f"/api/uploads/{upload_id}").status_code == 409
    db.uploads.update_one({"_id": upload_id}, {"$set": {"reserved": False}})
    assert uploader.delete(f"/api/uploads/{upload_id}").status_code == 204
    assert files_in_store(settings) == []
    assert uploader.get(f"/api/uploads/{upload_id}").status_code == 404
