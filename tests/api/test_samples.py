"""Samples API (virtool-api.md 1.5, rights 3.3) and the Job API calls of create_sample.

No worker runs here: create_sample jobs stay waiting, and the Job API is driven by hand with
job keys made by ``core.processes``. The real job is exercised in tests/tasks/test_create_sample.py.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ringspot.core.utils import new_id, now
from ringspot.workers import queues

from ..common import error, make_job, upload
from ..conftest import DATA

READS = DATA / "samples" / "glrav1-grapevine-125reads.fq.gz"


def insert_sample(db, data_path, owner="owner", *, ready=True, paired=False, **fields) -> dict:
    """A sample as a finished create_sample job leaves it (reads in the store)."""
    sample_id = new_id()
    folder = Path(data_path) / "samples" / sample_id
    folder.mkdir(parents=True)
    reads = []
    for name in ("reads_1.fq.gz", "reads_2.fq.gz")[: 2 if paired else 1]:
        (folder / name).write_bytes(READS.read_bytes())
        reads.append({"name": name, "size": READS.stat().st_size, "uploaded_at": now()})
    doc = {
        "_id": sample_id,
        "name": f"sample {sample_id}",
        "host": "",
        "isolate": "",
        "locale": "",
        "notes": "",
        "library_type": "normal",
        "format": "fastq",
        "paired": paired,
        "files": [],
        "reads": reads,
        "quality": {"count": 125},
        "subtractions": [],
        "labels": [],
        "group": "none",
        "group_read": True,
        "group_write": False,
        "all_read": False,
        "all_write": False,
        "user": {"id": owner},
        "created_at": now(),
        "ready": ready,
        "job": {"id": new_id()},
        **fields,
    }
    db.samples.insert_one(doc)
    return doc


@pytest.fixture
def creator(make_user):
    return make_user("creator", permissions=["create_sample", "upload_file"])


# ---------------------------------------------------------------- create


def test_create_returns_201_and_starts_a_create_sample_job(creator, admin, db, stub_broker):
    upload_ids = [upload(creator, "r1.fq.gz", READS, "reads"), upload(creator, "r2.fq.gz", READS, "reads")]
    response = creator.post(
        "/api/samples",
        json={
            "name": " Grapevine 1 ",
            "host": "Vitis",
            "isolate": "A",
            "locale": "Vineland",
            "library_type": "srna",
            "files": upload_ids,
            "labels": ["field"],
        },
    )
    assert response.status_code == 201, response.json
    sample = response.json
    assert response.headers["Location"] == f"/api/samples/{sample['id']}"
    assert (sample["name"], sample["host"], sample["library_type"], sample["labels"]) == (
        "Grapevine 1",
        "Vitis",
        "srna",
        ["field"],
    )
    assert sample["paired"] is True and sample["ready"] is False and sample["quality"] is None
    assert [f["id"] for f in sample["files"]] == upload_ids and sample["files"][0]["name"] == "r1.fq.gz"
    assert sample["user"] == {"id": "creator"} and sample["group"] == "none"
    assert (sample["all_read"], sample["all_write"], sample["group_read"], sample["group_write"]) == (
        True,
        False,
        True,
        False,
    )
    assert sample["workflows"] == {"pathoscope": "none", "nuvs": "none"}

    job = db.processes.find_one({"_id": sample["job"]["id"]})
    assert job["workflow"] == "create_sample" and job["state"] == "waiting"
    assert job["context"] == {"sample_id": sample["id"], "upload_ids": upload_ids}
    assert stub_broker.queues[queues.SAMPLES].qsize() == 1
    # Reserved uploads cannot be removed.
    assert all(db.uploads.find_one({"_id": i})["reserved"] for i in upload_ids)
    assert error(admin.delete(f"/api/uploads/{upload_ids[0]}")) == (409, "Upload is in use")


def test_create_returns_403_without_create_sample_permission(make_user, admin):
    upload_id = upload(admin, "reads.fq.gz", READS, "reads")
    user = make_user("nobody", permissions=["upload_file"])
    assert error(user.post("/api/samples", json={"name": "x", "files": [upload_id]})) == (403, "Not permitted")


@pytest.mark.parametrize(
    "case, status, message",
    [
        ("name_in_use", 400, "Sample name is already in use"),
        ("unknown_upload", 400, "File does not exist"),
        ("wrong_upload_type", 400, "File does not exist"),
        ("same_upload_twice", 400, "The two files must be different uploads"),
        ("unknown_subtraction", 400, "Subtraction does not exist"),
        ("unknown_group", 400, "Group does not exist"),
    ],
)
def test_create_errors(creator, db, settings, stub_broker, case, status, message):
    upload_id = upload(creator, "reads.fq.gz", READS, "reads")
    body = {"name": "Sample", "files": [upload_id]}
    if case == "name_in_use":
        insert_sample(db, settings.data_path, "creator", name="Sample")  # one the creator can see
    elif case == "unknown_upload":
        body["files"] = ["nothere"]
    elif case == "wrong_upload_type":
        body["files"] = [upload(creator, "ref.json.gz", READS, "reference")]
    elif case == "same_upload_twice":
        body["files"] = [upload_id, upload_id]
    elif case == "unknown_subtraction":
        body["subtractions"] = ["nothere"]
    elif case == "unknown_group":
        body["group"] = "ghosts"
    assert error(creator.post("/api/samples", json=body)) == (status, message)
    # A refused sample reserves nothing.
    assert not db.uploads.find_one({"_id": upload_id})["reserved"]
    assert db.samples.count_documents({"ready": False}) == 0


def test_an_upload_serves_one_sample_only(creator, stub_broker):
    upload_id = upload(creator, "reads.fq.gz", READS, "reads")
    assert creator.post("/api/samples", json={"name": "first", "files": [upload_id]}).status_code == 201
    assert error(creator.post("/api/samples", json={"name": "second", "files": [upload_id]})) == (
        409,
        f"Upload {upload_id} is already in use",
    )


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "x", "files": []}, "files"),
        ({"name": "x", "files": ["a", "b", "c"]}, "files"),
        ({"files": ["a"]}, "name"),
        ({"name": "  ", "files": ["a"]}, "name"),
        ({"name": "x", "files": ["a"], "library_type": "other"}, "library_type"),
        ({"name": "x", "files": ["a"], "srna": True}, "srna"),
        ({"name": "x", "files": ["a"], "library_type": "srna", "adapter": "TGGAAUUC"}, "adapter"),
        ({"name": "x", "files": ["a"], "library_type": "srna", "adapter": " "}, "adapter"),
        ({"name": "x", "files": ["a"], "library_type": "srna", "adapter": "TGG-AATTC"}, "adapter"),
        ({"name": "x", "files": ["a"], "library_type": "srna", "adapter": 12}, "adapter"),
        ({"name": "x", "files": ["a"], "adapter": "TGGAATTC"}, "adapter"),
    ],
)
def test_create_returns_422_naming_the_field(creator, body, field):
    response = creator.post("/api/samples", json=body)
    assert response.status_code == 422
    assert field in response.json["errors"]


def test_a_small_rna_sample_keeps_the_adapter_given(creator, stub_broker):
    upload_id = upload(creator, "reads.fq.gz", READS, "reads")
    body = {"name": "sRNA", "files": [upload_id], "library_type": "srna", "adapter": "tggaattctcgggtgccaagg"}
    response = creator.post("/api/samples", json=body)
    assert response.status_code == 201, response.json
    assert response.json["adapter"] == "TGGAATTCTCGGGTGCCAAGG"
    assert creator.get(f"/api/samples/{response.json['id']}").json["adapter"] == "TGGAATTCTCGGGTGCCAAGG"


def test_an_adapter_on_a_shotgun_library_is_refused_naming_why(creator):
    response = creator.post("/api/samples", json={"name": "x", "files": ["a"], "adapter": "TGGAATTC"})
    assert response.status_code == 422
    assert response.json["errors"]["adapter"] == [
        "Value error, only small-RNA libraries (library_type srna) are adapter-trimmed"
    ]


def test_create_with_a_group_that_exists(creator, admin, stub_broker):
    admin.post("/api/groups", json={"group_id": "techs"})
    response = creator.post(
        "/api/samples", json={"name": "x", "files": [upload(creator, "reads.fq.gz", READS, "reads")], "group": "techs"}
    )
    assert response.status_code == 201 and response.json["group"] == "techs"


def test_cancelling_the_waiting_job_removes_the_sample_and_frees_the_upload(creator, admin, db, stub_broker):
    upload_id = upload(creator, "reads.fq.gz", READS, "reads")
    sample = creator.post("/api/samples", json={"name": "x", "files": [upload_id]}).json
    assert admin.put(f"/api/jobs/{sample['job']['id']}/cancel").status_code == 200
    assert creator.get(f"/api/samples/{sample['id']}").status_code == 404
    assert not db.uploads.find_one({"_id": upload_id})["reserved"]
    assert creator.get(f"/api/uploads/{upload_id}").data == READS.read_bytes()


# ---------------------------------------------------------------- rights


@pytest.fixture
def people(make_user, admin):
    return {
        "owner": make_user("owner"),
        "reader": make_user("reader", groups=["techs"]),
        "writer": make_user("writer", groups=["techs", "leads"]),
        "stranger": make_user("stranger", groups=["others"]),
        "admin": admin,
    }


def can(user, method: str, url: str, **kw) -> bool:
    status = getattr(user, method)(url, **kw).status_code
    assert status in (200, 204, 403), status
    return status != 403


def test_rights_matrix_for_reading(people, db, settings):
    group_only = insert_sample(db, settings.data_path, group="techs", group_read=True)
    everyone = insert_sample(db, settings.data_path, all_read=True)
    private = insert_sample(db, settings.data_path, group="techs", group_read=False)
    expected = {
        "owner": (True, True, True),
        "admin": (True, True, True),
        "reader": (True, True, False),
        "writer": (True, True, False),
        "stranger": (False, True, False),
    }
    for name, user in people.items():
        for sample, allowed in zip((group_only, everyone, private), expected[name], strict=False):
            assert can(user, "get", f"/api/samples/{sample['_id']}") is allowed, (name, sample["_id"])
            assert can(user, "get", f"/api/samples/{sample['_id']}/reads/reads_1.fq.gz") is allowed
        listed = {d["id"] for d in user.get("/api/samples").json["documents"]}
        assert listed == {
            s["_id"] for s, a in zip((group_only, everyone, private), expected[name], strict=False) if a
        }, name


def test_rights_matrix_for_writing(people, db, settings):
    cases = {
        "group_write": ({"group": "leads", "group_read": True, "group_write": True}, {"owner", "admin", "writer"}),
        "all_write": ({"all_read": True, "all_write": True}, set(people)),
        "read_only": ({"all_read": True, "group": "techs", "group_read": True}, {"owner", "admin"}),
        # Write needs read: group_write alone gives nothing.
        "write_without_read": ({"group": "techs", "group_read": False, "group_write": True}, {"owner", "admin"}),
    }
    for case, (fields, writers) in cases.items():
        for name, user in people.items():
            sample = insert_sample(db, settings.data_path, **fields)
            url = f"/api/samples/{sample['_id']}"
            assert can(user, "patch", url, json={"host": "Vitis"}) is (name in writers), (case, name)
            assert can(user, "delete", url) is (name in writers), (case, name)


def test_rights_are_set_by_owner_or_administrator_only(people, db, settings, admin):
    admin.post("/api/groups", json={"group_id": "techs"})
    sample = insert_sample(db, settings.data_path, all_read=True, all_write=True)
    url = f"/api/samples/{sample['_id']}/rights"
    assert error(people["writer"].patch(url, json={"all_read": False})) == (
        403,
        "Must be administrator or sample owner",
    )
    response = people["owner"].patch(url, json={"group": "techs", "group_write": True, "all_read": False})
    assert response.status_code == 200
    assert response.json == {
        "id": sample["_id"],
        "group": "techs",
        "group_read": True,
        "group_write": True,
        "all_read": False,
        "all_write": True,
    }
    assert people["stranger"].get(f"/api/samples/{sample['_id']}").status_code == 403
    assert people["reader"].get(f"/api/samples/{sample['_id']}").status_code == 200
    assert error(admin.patch(url, json={"group": "ghosts"})) == (400, "Group does not exist")
    assert admin.patch(url, json={"all_read": "yes"}).status_code == 422


def test_unknown_sample_is_404(admin):
    for method in ("get", "patch", "delete"):
        assert getattr(admin, method)("/api/samples/nothere", json={}).json == {
            "id": "not_found",
            "message": "Not found",
        }


# ---------------------------------------------------------------- find


def test_find_filters_by_name_labels_and_workflow_state(admin, db, settings):
    a = insert_sample(db, settings.data_path, name="Grapevine A", labels=["field", "2024"])
    b = insert_sample(db, settings.data_path, name="grapevine B", labels=["lab"])
    insert_sample(db, settings.data_path, name="Raspberry", library_type="amplicon")
    d = insert_sample(db, settings.data_path, name="Peach")
    db.analyses.insert_many(
        [
            {"_id": new_id(), "workflow": "pathoscope_bowtie", "sample": {"id": a["_id"]}, "ready": True},
            {"_id": new_id(), "workflow": "pathoscope_bowtie", "sample": {"id": a["_id"]}, "ready": False},
            {"_id": new_id(), "workflow": "nuvs", "sample": {"id": b["_id"]}, "ready": False},
            {"_id": new_id(), "workflow": "pathoscope_bowtie", "sample": {"id": d["_id"]}, "ready": False},
        ]
    )

    def names(query=""):
        return sorted(doc["name"] for doc in admin.get(f"/api/samples{query}").json["documents"])

    assert names("?find=grapeVINE") == ["Grapevine A", "grapevine B"]
    assert names("?find=.*") == []  # the term is text, not a pattern
    assert names("?label=field") == ["Grapevine A"]
    assert names("?label=field&label=lab") == ["Grapevine A", "grapevine B"]
    assert names("?workflows=pathoscope:complete") == ["Grapevine A"]
    assert names("?workflows=pathoscope:pending") == ["Peach"]
    assert names("?workflows=pathoscope:none") == ["grapevine B"]
    assert names("?workflows=nuvs:pending%20pathoscope:none") == ["grapevine B"]
    assert names("?workflows=pathoscope:incompatible") == ["Raspberry"]
    assert names("?workflows=pathoscope:none&workflows=pathoscope:complete") == ["Grapevine A", "grapevine B"]
    assert names("?workflows=nuvs:none&find=grape") == ["Grapevine A"]
    assert admin.get("/api/samples?workflows=aodp:done").status_code == 400

    docs = {doc["name"]: doc for doc in admin.get("/api/samples").json["documents"]}
    assert docs["Grapevine A"]["workflows"] == {"pathoscope": "complete", "nuvs": "none"}
    assert docs["Raspberry"]["workflows"] == {"pathoscope": "incompatible", "nuvs": "incompatible"}
    assert "quality" not in docs["Peach"]  # lists leave the big document out


def test_find_paginates_newest_first(admin, db, settings):
    for _ in range(4):
        insert_sample(db, settings.data_path)
    response = admin.get("/api/samples?per_page=3&page=2")
    body = response.json
    assert (body["total_count"], body["found_count"], body["page_count"], body["page"], len(body["documents"])) == (
        4,
        4,
        2,
        2,
        1,
    )
    assert 'rel="prev"' in response.headers["Link"]
    all_docs = admin.get("/api/samples").json["documents"]
    assert [d["created_at"] for d in all_docs] == sorted((d["created_at"] for d in all_docs), reverse=True)


# ---------------------------------------------------------------- get, edit, remove


def test_get_returns_the_full_sample_with_download_urls(admin, db, settings):
    sample = insert_sample(db, settings.data_path, paired=True)
    body = admin.get(f"/api/samples/{sample['_id']}").json
    assert body["quality"] == {"count": 125}
    assert [r["download_url"] for r in body["reads"]] == [
        f"/api/samples/{sample['_id']}/reads/reads_1.fq.gz",
        f"/api/samples/{sample['_id']}/reads/reads_2.fq.gz",
    ]
    download = admin.get(body["reads"][1]["download_url"])
    assert download.status_code == 200 and download.data == READS.read_bytes()
    assert admin.get(f"/api/samples/{sample['_id']}/reads/reads_3.fq.gz").status_code == 404
    assert admin.get(f"/api/samples/{sample['_id']}/reads/..%2F..%2Fuploads").status_code == 404


def test_edit_changes_only_the_given_fields(admin, db, settings):
    subtraction_id = new_id()
    db.subtractions.insert_one({"_id": subtraction_id, "name": "Host", "ready": True})
    insert_sample(db, settings.data_path, name="Taken")
    sample = insert_sample(db, settings.data_path, name="Old", host="Vitis")
    url = f"/api/samples/{sample['_id']}"
    body = admin.patch(url, json={"name": "New", "labels": ["a"], "subtractions": [subtraction_id]}).json
    assert (body["name"], body["host"], body["labels"], body["subtractions"]) == (
        "New",
        "Vitis",
        ["a"],
        [subtraction_id],
    )
    assert admin.patch(url, json={"name": "New"}).status_code == 200  # its own name is not "in use"
    assert error(admin.patch(url, json={"name": "Taken"})) == (400, "Sample name is already in use")
    assert error(admin.patch(url, json={"subtractions": ["nothere"]})) == (400, "Subtraction does not exist")
    assert admin.patch(url, json={"quality": {}}).status_code == 422
    assert admin.patch(url, json={"ready": False}).status_code == 422


def test_remove_deletes_the_sample_its_reads_and_its_analyses(admin, db, settings):
    sample = insert_sample(db, settings.data_path)
    other = insert_sample(db, settings.data_path)
    analyses = [new_id(), new_id()]
    for analysis_id, sample_id in zip(analyses, (sample["_id"], other["_id"]), strict=False):
        db.analyses.insert_one({"_id": analysis_id, "workflow": "nuvs", "sample": {"id": sample_id}, "ready": True})
        (Path(settings.data_path) / "analyses" / analysis_id).mkdir(parents=True)
    assert admin.delete(f"/api/samples/{sample['_id']}").status_code == 204
    assert admin.get(f"/api/samples/{sample['_id']}").status_code == 404
    assert not (Path(settings.data_path) / "samples" / sample["_id"]).exists()
    assert db.analyses.find_one({"_id": analyses[0]}) is None
    assert not (Path(settings.data_path) / "analyses" / analyses[0]).exists()
    # Other samples keep theirs.
    assert db.analyses.find_one({"_id": analyses[1]}) is not None
    assert (Path(settings.data_path) / "analyses" / analyses[1]).exists()


def test_remove_returns_409_while_a_job_uses_the_sample(creator, admin, db, settings, client, stub_broker):
    sample = creator.post(
        "/api/samples", json={"name": "x", "files": [upload(creator, "reads.fq.gz", READS, "reads")]}
    ).json
    assert error(creator.delete(f"/api/samples/{sample['id']}")) == (
        409,
        "Sample is in use by a running or waiting job",
    )
    ready = insert_sample(db, settings.data_path, owner="creator")
    make_job(db, client, "pathoscope_bowtie", sample_id=ready["_id"], analysis_id=new_id())
    assert creator.delete(f"/api/samples/{ready['_id']}").status_code == 409


# ---------------------------------------------------------------- the Job API side


def test_jobs_read_only_the_samples_of_their_context(db, settings, client):
    sample = insert_sample(db, settings.data_path, paired=True)
    other = insert_sample(db, settings.data_path)
    job = make_job(db, client, "pathoscope_bowtie", sample_id=sample["_id"], analysis_id=new_id())
    assert job.get(f"/api/samples/{sample['_id']}").json["id"] == sample["_id"]
    assert job.get(f"/api/samples/{sample['_id']}/reads/reads_2.fq.gz").data == READS.read_bytes()
    assert job.get(f"/api/samples/{other['_id']}").status_code == 403
    assert job.get(f"/api/samples/{other['_id']}/reads/reads_1.fq.gz").status_code == 403
    assert job.get("/api/samples").status_code == 403  # user-only endpoints
    # An analysis job may not write reads or finalize a sample.
    assert job.put(f"/api/samples/{sample['_id']}/reads/reads_1.fq.gz", data=b"x").status_code == 403
    assert job.patch(f"/api/samples/{sample['_id']}", json={"quality": {}}).status_code == 403


def test_create_sample_job_stores_reads_then_finalizes(creator, db, settings, client, stub_broker):
    upload_ids = [upload(creator, "reads.fq.gz", READS, "reads"), upload(creator, "reads.fq.gz", READS, "reads")]
    sample = creator.post("/api/samples", json={"name": "x", "files": upload_ids}).json
    job = make_job(db, client, "create_sample", sample_id=sample["id"], upload_ids=upload_ids)
    url = f"/api/samples/{sample['id']}"
    quality = {
        "count": 250,
        "encoding": "Sanger / Illumina 1.9",
        "gc": 46.0,
        "length": [101, 101],
        "bases": [[30, 31, 28, 33, 25, 35]],
        "composition": [[25.5, 24.5, 25.0, 25.0]],
        "sequences": [0] * 50,
    }

    assert job.get(f"/api/uploads/{upload_ids[0]}").data == READS.read_bytes()
    assert error(job.patch(url, json={"quality": quality})) == (
        409,
        "Sample requires its read files before it is finalized. Missing files: reads_1.fq.gz, reads_2.fq.gz",
    )
    assert job.put(f"{url}/reads/reads_3.fq.gz", data=b"x").status_code == 400
    for name in ("reads_1.fq.gz", "reads_2.fq.gz", "reads_1.fq.gz"):  # a retried upload replaces the first
        response = job.put(f"{url}/reads/{name}", data=READS.read_bytes(), content_type="application/octet-stream")
        assert response.status_code == 201 and response.json["size"] == READS.stat().st_size
    assert creator.put(f"{url}/reads/reads_1.fq.gz", data=b"x").status_code == 403  # users may not
    assert job.patch(url, json={"quality": {**quality, "count": "many"}}).status_code == 422

    body = job.patch(url, json={"quality": quality}).json
    assert body["ready"] is True and body["quality"] == quality
    assert [r["name"] for r in body["reads"]] == ["reads_1.fq.gz", "reads_2.fq.gz"]
    assert error(job.patch(url, json={"quality": quality})) == (409, "Sample is already finalized")
    # The uploads were consumed.
    for upload_id in upload_ids:
        assert creator.get(f"/api/uploads/{upload_id}").status_code == 404
    assert creator.get(f"{url}/reads/reads_1.fq.gz").data == READS.read_bytes()


def test_single_end_sample_takes_no_second_mate(creator, db, client, stub_broker):
    upload_id = upload(creator, "reads.fq.gz", READS, "reads")
    sample = creator.post("/api/samples", json={"name": "x", "files": [upload_id]}).json
    job = make_job(db, client, "create_sample", sample_id=sample["id"], upload_ids=[upload_id])
    assert error(job.put(f"/api/samples/{sample['id']}/reads/reads_2.fq.gz", data=gzip.compress(b"@r\nA\n+\nI\n"))) == (
        400,
        "Read file name must be one of: reads_1.fq.gz",
    )
