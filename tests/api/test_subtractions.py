"""Subtractions API (virtool-api.md 1.10) and the Job API calls of create_subtraction.

No worker runs here; the real job is exercised in tests/tasks/test_create_subtraction.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ringspot.core.utils import new_id, now
from ringspot.workers import queues

from ..common import error, make_job, upload
from ..conftest import DATA

HOST = DATA / "subtraction" / "host.fa"
BOWTIE2 = [f"subtraction.{s}.bt2" for s in ("1", "2", "3", "4", "rev.1", "rev.2")]


def insert_subtraction(db, data_path, name="Host", ready=True) -> dict:
    subtraction_id = new_id()
    folder = Path(data_path) / "subtractions" / subtraction_id
    folder.mkdir(parents=True)
    files = []
    for file_name in ["subtraction.fa.gz", *BOWTIE2]:
        (folder / file_name).write_bytes(file_name.encode())
        files.append({"name": file_name, "size": len(file_name), "type": "bowtie2", "uploaded_at": now()})
    doc = {
        "_id": subtraction_id,
        "name": name,
        "nickname": "",
        "ready": ready,
        "count": 6,
        "gc": {"a": 0.2, "t": 0.2, "g": 0.2, "c": 0.2, "n": 0.2},
        "file": {"id": new_id(), "name": "host.fa"},
        "files": files,
        "user": {"id": "admin"},
        "job": {"id": new_id()},
        "created_at": now(),
    }
    db.subtractions.insert_one(doc)
    return doc


@pytest.fixture
def modifier(make_user):
    return make_user("modifier", permissions=["modify_subtraction", "upload_file"])


def test_create_returns_201_and_starts_a_create_subtraction_job(modifier, db, stub_broker):
    upload_id = upload(modifier, "host.fa", HOST, "subtraction")
    response = modifier.post(
        "/api/subtractions", json={"name": "Vitis", "nickname": "grapevine", "upload_id": upload_id}
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert response.headers["Location"] == f"/api/subtractions/{body['id']}"
    assert (body["name"], body["nickname"], body["ready"], body["count"], body["gc"]) == (
        "Vitis",
        "grapevine",
        False,
        None,
        None,
    )
    assert body["file"] == {"id": upload_id, "name": "host.fa"} and body["files"] == [] and body["linked_samples"] == []
    job = db.processes.find_one({"_id": body["job"]["id"]})
    assert job["workflow"] == "create_subtraction"
    assert job["context"] == {"subtraction_id": body["id"], "upload_ids": [upload_id]}
    assert stub_broker.queues[queues.SUBTRACTIONS].qsize() == 1
    assert db.uploads.find_one({"_id": upload_id})["reserved"]


@pytest.mark.parametrize(
    "case, message",
    [
        ("name_exists", "Subtraction name already exists"),
        ("unknown_upload", "Upload does not exist"),
        ("reads_upload", "Upload does not exist"),
    ],
)
def test_create_errors(modifier, db, settings, case, message):
    insert_subtraction(db, settings.data_path, name="Vitis")
    body = {"name": "Other", "upload_id": upload(modifier, "host.fa", HOST, "subtraction")}
    if case == "name_exists":
        body["name"] = "Vitis"
    elif case == "unknown_upload":
        body["upload_id"] = "nothere"
    elif case == "reads_upload":
        body["upload_id"] = upload(modifier, "reads.fq", HOST, "reads")
    assert error(modifier.post("/api/subtractions", json=body)) == (400, message)
    assert db.subtractions.count_documents({}) == 1


@pytest.mark.parametrize(
    "method, path",
    [
        ("post", "/api/subtractions"),
        ("patch", "/api/subtractions/{id}"),
        ("delete", "/api/subtractions/{id}"),
    ],
)
def test_returns_403_without_modify_subtraction(make_user, db, settings, method, path):
    doc = insert_subtraction(db, settings.data_path)
    user = make_user("reader", permissions=["upload_file"])
    response = getattr(user, method)(path.format(id=doc["_id"]), json={"name": "x", "upload_id": "x"})
    assert error(response) == (403, "Not permitted")
    # Reading needs no permission.
    assert user.get(f"/api/subtractions/{doc['_id']}").status_code == 200
    assert user.get(f"/api/subtractions/{doc['_id']}/files/subtraction.1.bt2").data == b"subtraction.1.bt2"


def test_find_sorts_by_name_and_filters(admin, db, settings):
    insert_subtraction(db, settings.data_path, name="Vitis vinifera")
    insert_subtraction(db, settings.data_path, name="Arabidopsis")
    insert_subtraction(db, settings.data_path, name="Prunus", ready=False)
    body = admin.get("/api/subtractions").json
    assert [d["name"] for d in body["documents"]] == ["Arabidopsis", "Prunus", "Vitis vinifera"]
    assert (body["total_count"], body["ready_count"]) == (3, 2)
    assert [d["name"] for d in admin.get("/api/subtractions?find=VINI").json["documents"]] == ["Vitis vinifera"]
    assert [d["name"] for d in admin.get("/api/subtractions?ready=false").json["documents"]] == ["Prunus"]
    assert [d["name"] for d in admin.get("/api/subtractions?short=true").json] == ["Arabidopsis", "Vitis vinifera"]


def test_get_lists_linked_samples_and_remove_is_refused_while_linked(admin, db, settings):
    doc = insert_subtraction(db, settings.data_path)
    db.samples.insert_one({"_id": "s1", "name": "Sample 1", "subtractions": [doc["_id"]], "user": {"id": "admin"}})
    assert admin.get(f"/api/subtractions/{doc['_id']}").json["linked_samples"] == [{"id": "s1", "name": "Sample 1"}]
    assert error(admin.delete(f"/api/subtractions/{doc['_id']}")) == (409, "Has linked samples")
    db.samples.delete_one({"_id": "s1"})
    assert admin.delete(f"/api/subtractions/{doc['_id']}").status_code == 204
    assert admin.get(f"/api/subtractions/{doc['_id']}").status_code == 404
    assert not (Path(settings.data_path) / "subtractions" / doc["_id"]).exists()


def test_linked_samples_are_only_those_the_caller_may_read(admin, modifier, db, settings):
    """A private sample's name does not leak through the subtraction it uses."""
    doc = insert_subtraction(db, settings.data_path)
    private = {"subtractions": [doc["_id"]], "user": {"id": "admin"}, "all_read": False, "group_read": False}
    db.samples.insert_one({"_id": "s1", "name": "Private sample", **private})
    db.samples.insert_one({"_id": "s2", "name": "Shared sample", **private, "all_read": True})
    everyone = [{"id": "s1", "name": "Private sample"}, {"id": "s2", "name": "Shared sample"}]
    assert admin.get(f"/api/subtractions/{doc['_id']}").json["linked_samples"] == everyone
    assert modifier.get(f"/api/subtractions/{doc['_id']}").json["linked_samples"] == everyone[1:]


def test_remove_is_refused_while_a_job_uses_it(admin, db, settings, client):
    doc = insert_subtraction(db, settings.data_path)
    make_job(db, client, "pathoscope_bowtie", sample_id="s1", subtraction_ids=[doc["_id"]])
    assert error(admin.delete(f"/api/subtractions/{doc['_id']}")) == (
        409,
        "Subtraction is in use by a running or waiting job",
    )


def test_edit_name_and_nickname(admin, db, settings):
    insert_subtraction(db, settings.data_path, name="Taken")
    doc = insert_subtraction(db, settings.data_path, name="Old")
    url = f"/api/subtractions/{doc['_id']}"
    body = admin.patch(url, json={"name": "New", "nickname": "vine"}).json
    assert (body["name"], body["nickname"]) == ("New", "vine")
    assert error(admin.patch(url, json={"name": "Taken"})) == (400, "Subtraction name already exists")
    assert admin.patch(url, json={"count": 3}).status_code == 422
    assert admin.patch("/api/subtractions/nothere", json={"name": "x"}).status_code == 404


def test_cancelling_the_waiting_job_removes_the_subtraction_and_frees_the_upload(modifier, admin, db, stub_broker):
    upload_id = upload(modifier, "host.fa", HOST, "subtraction")
    body = modifier.post("/api/subtractions", json={"name": "Vitis", "upload_id": upload_id}).json
    assert admin.put(f"/api/jobs/{body['job']['id']}/cancel").status_code == 200
    assert admin.get(f"/api/subtractions/{body['id']}").status_code == 404
    assert not db.uploads.find_one({"_id": upload_id})["reserved"]


def test_jobs_read_only_the_subtractions_of_their_context(db, settings, client):
    doc = insert_subtraction(db, settings.data_path)
    other = insert_subtraction(db, settings.data_path, name="Other")
    job = make_job(db, client, "nuvs", sample_id="s1", subtraction_ids=[doc["_id"]])
    assert job.get(f"/api/subtractions/{doc['_id']}").json["id"] == doc["_id"]
    assert job.get(f"/api/subtractions/{doc['_id']}/files/subtraction.rev.2.bt2").data == b"subtraction.rev.2.bt2"
    assert job.get(f"/api/subtractions/{other['_id']}").status_code == 403
    assert job.get(f"/api/subtractions/{other['_id']}/files/subtraction.1.bt2").status_code == 403
    assert job.post(f"/api/subtractions/{doc['_id']}/files?name=subtraction.1.bt2", data=b"x").status_code == 403
    assert job.patch(f"/api/subtractions/{doc['_id']}", json={"count": 1, "gc": {}}).status_code == 403


def test_create_subtraction_job_uploads_files_then_finalizes(modifier, db, client, stub_broker):
    upload_id = upload(modifier, "host.fa", HOST, "subtraction")
    body = modifier.post("/api/subtractions", json={"name": "Vitis", "upload_id": upload_id}).json
    url = f"/api/subtractions/{body['id']}"
    job = make_job(db, client, "create_subtraction", subtraction_id=body["id"], upload_ids=[upload_id])
    gc = {"a": 0.3, "t": 0.3, "g": 0.2, "c": 0.2, "n": 0.0}

    assert error(job.post(f"{url}/files?name=reference.1.bt2", data=b"x")) == (400, "Unsupported subtraction file name")
    assert modifier.post(f"{url}/files?name=subtraction.1.bt2", data=b"x").status_code == 403  # users may not
    for name in ["subtraction.fa.gz", *BOWTIE2[:-1]]:
        assert job.post(f"{url}/files?name={name}", data=name.encode()).status_code == 201
    assert error(job.patch(url, json={"count": 6, "gc": gc})) == (
        409,
        "Subtraction requires its FASTA and Bowtie2 files before it is finalized. Missing files: subtraction.rev.2.bt2",
    )
    assert job.post(f"{url}/files?name=subtraction.rev.2.bt2", data=b"rev2").status_code == 201
    assert job.patch(url, json={"count": 6, "gc": {"a": 1}}).status_code == 422
    assert job.patch(url, json={"count": -1, "gc": gc}).status_code == 422

    done = job.patch(url, json={"count": 6, "gc": gc}).json
    assert (done["ready"], done["count"], done["gc"]) == (True, 6, gc)
    assert sorted(f["name"] for f in done["files"]) == sorted(["subtraction.fa.gz", *BOWTIE2])
    assert error(job.patch(url, json={"count": 6, "gc": gc})) == (409, "Subtraction is already finalized")
    assert modifier.get(f"{url}/files/subtraction.rev.2.bt2").data == b"rev2"
    assert modifier.get(f"/api/uploads/{upload_id}").status_code == 404  # consumed
