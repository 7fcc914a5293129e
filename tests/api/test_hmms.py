"""/api/hmms: who may list, read and install profiles, what the status says, 409 while an install
runs, and the profile files NuVs jobs download."""

from __future__ import annotations

import gzip

import pytest

from ringspot.core import hmms, processes
from ringspot.core.utils import now
from ringspot.tasks import hmms as hmm_tasks  # noqa: F401  (binds actors to the stub broker first)
from tests.common import upload
from tests.conftest import DATA

HMM7 = DATA / "hmm" / "hmm7"


def hmm7_uploads(user) -> dict:
    return {
        "upload_id": upload(user, "profiles.hmm.gz", HMM7 / "profiles.hmm.gz", "hmm"),
        "annotations_upload_id": upload(user, "annotations.json.gz", HMM7 / "annotations.json.gz", "hmm"),
    }


def insert_installed_set(db, clusters=(2, 3, 9), set_id="set00001") -> list[dict]:
    docs = [
        {
            "_id": f"hmm{c:05d}",
            "cluster": c,
            "names": [f"protein {c}", "Rep" if c == 9 else "coat"],
            "families": {"Geminiviridae": 1},
            "genera": {},
            "count": 1,
            "length": 100,
            "entries": [],
            "mean_entropy": 0.5,
            "total_entropy": 50.0,
            "hidden": False,
            "set": {"id": set_id},
        }
        for c in clusters
    ]
    db.hmm.insert_many(docs)
    hmms.ensure_status(db)
    db.status.update_one(
        {"_id": "hmm"},
        {
            "$set": {
                "installed": {"id": set_id, "version": 1, "sha256": "0" * 64, "count": len(docs), "installed_at": now()}
            }
        },
    )
    return docs


def test_list_is_empty_before_any_install(plain_user):
    response = plain_user.get("/api/hmms")
    assert response.status_code == 200
    body = response.json
    assert (body["documents"], body["found_count"], body["total_count"]) == ([], 0, 0)
    assert body["status"] == {
        "id": "hmm",
        "installed": None,
        "updating": False,
        "process": None,
        "errors": [],
        "updates": [],
    }


def test_list_pages_by_cluster_and_finds_by_name(plain_user, db):
    insert_installed_set(db, clusters=(9, 2, 3))
    db.hmm.insert_one({"_id": "oldset01", "cluster": 1, "names": ["Rep"], "hidden": True, "set": {"id": "old"}})
    body = plain_user.get("/api/hmms?per_page=2").json
    assert [d["cluster"] for d in body["documents"]] == [2, 3]
    assert (body["total_count"], body["found_count"], body["page_count"]) == (3, 3, 2)
    assert "set" not in body["documents"][0]
    found = plain_user.get("/api/hmms?find=rep").json
    assert [d["cluster"] for d in found["documents"]] == [9]
    assert plain_user.get("/api/hmms?find=(").status_code == 200  # a search term is text, not a pattern


def test_get_one_and_404(plain_user, db):
    insert_installed_set(db)
    assert plain_user.get("/api/hmms/hmm00009").json["cluster"] == 9
    response = plain_user.get("/api/hmms/nothere")
    assert (response.status_code, response.json) == (404, {"id": "not_found", "message": "Not found"})


def test_anonymous_callers_get_401(client):
    assert client.get("/api/hmms").status_code == 401
    assert client.get("/api/hmms/status").status_code == 401


def test_install_requires_modify_hmm(plain_user, make_user):
    body = hmm7_uploads(make_user("uploader", permissions=["upload_file"]))
    response = plain_user.post("/api/hmms/status/updates", json=body)
    assert (response.status_code, response.json["id"]) == (403, "not_permitted")


def test_install_with_modify_hmm_starts_a_process(make_user, db, stub_broker):
    user = make_user("curator", permissions=["modify_hmm", "upload_file"])
    response = user.post("/api/hmms/status/updates", json=hmm7_uploads(user))
    assert response.status_code == 202, response.json
    process = response.json
    assert (process["type"], process["state"], process["step"]) == ("install_hmms", "waiting", "unpack_profiles")
    assert process["user"] == {"id": "curator"}
    status = user.get("/api/hmms/status").json
    assert status["updating"] is True and status["process"] == {"id": process["id"]}
    assert stub_broker.queues["hmms"].qsize() == 1


def test_second_install_while_one_runs_is_409(admin, stub_broker):
    assert admin.post("/api/hmms/status/updates", json=hmm7_uploads(admin)).status_code == 202
    response = admin.post("/api/hmms/status/updates", json=hmm7_uploads(admin))
    assert (response.status_code, response.json) == (409, {"id": "conflict", "message": "Install already in progress"})


def test_an_install_whose_process_died_does_not_block_the_next(admin, db, stub_broker):
    first = admin.post("/api/hmms/status/updates", json=hmm7_uploads(admin)).json
    processes.finish(db, first["id"], "error", "The worker running this process stopped responding")
    assert admin.post("/api/hmms/status/updates", json=hmm7_uploads(admin)).status_code == 202


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "upload_id"),
        ({"upload_id": "a"}, "annotations_upload_id"),
        ({"upload_id": 1, "annotations_upload_id": "b"}, "upload_id"),
        ({"upload_id": "a", "annotations_upload_id": "b", "x": 1}, "x"),
    ],
)
def test_bad_install_body_is_422_naming_the_field(admin, body, field):
    response = admin.post("/api/hmms/status/updates", json=body)
    assert response.status_code == 422
    assert field in response.json["errors"]


def test_install_from_missing_or_wrong_uploads_is_400(admin, stub_broker):
    reads = upload(admin, "reads.fq", b"@r\nA\n+\nI\n", "reads")
    good = upload(admin, "profiles.hmm.gz", HMM7 / "profiles.hmm.gz", "hmm")
    missing = admin.post("/api/hmms/status/updates", json={"upload_id": "nothere", "annotations_upload_id": good})
    assert (missing.status_code, missing.json["message"]) == (400, "Upload does not exist: nothere")
    wrong = admin.post("/api/hmms/status/updates", json={"upload_id": good, "annotations_upload_id": reads})
    assert (wrong.status_code, wrong.json["message"]) == (400, f"Upload {reads} is not of type hmm")
    assert admin.get("/api/hmms/status").json["updating"] is False


def test_profile_files_404_before_install(admin):
    response = admin.get("/api/hmms/files/profiles.hmm")
    assert (response.status_code, response.json["message"]) == (404, "No HMM profiles are installed")


def test_profile_files_of_the_installed_set_and_of_a_named_set(admin, db, settings):
    insert_installed_set(db, set_id="set00001")
    folder = hmms.set_dir(settings.data_path, "set00001")
    folder.mkdir(parents=True)
    (folder / "profiles.hmm").write_bytes(gzip.decompress((HMM7 / "profiles.hmm.gz").read_bytes()))
    response = admin.get("/api/hmms/files/profiles.hmm")
    assert response.status_code == 200 and response.data.startswith(b"HMMER3/f")
    assert admin.get("/api/hmms/files/profiles.hmm?set=set00001").status_code == 200
    assert admin.get("/api/hmms/files/profiles.hmm?set=other").status_code == 404
    assert admin.get("/api/hmms/files/profiles.hmm?set=..").status_code in (400, 404)
    assert admin.get("/api/hmms/files/secrets.txt").status_code == 404


def job_auth(db, workflow: str) -> tuple[str, str]:
    doc, key = processes.create_process(db, workflow, user_id="admin", workflow=True, context={})
    return f"job-{doc['_id']}", key


def test_nuvs_jobs_may_read_status_and_files_other_jobs_may_not(client, db, settings):
    insert_installed_set(db, set_id="set00001")
    folder = hmms.set_dir(settings.data_path, "set00001")
    folder.mkdir(parents=True)
    (folder / "annotations.json.gz").write_bytes(gzip.compress(b"[]"))
    nuvs = job_auth(db, "nuvs")
    assert client.get("/api/hmms/status", auth=nuvs).json["installed"]["id"] == "set00001"
    assert client.get("/api/hmms/files/annotations.json.gz", auth=nuvs).status_code == 200
    other = job_auth(db, "pathoscope_bowtie")
    assert client.get("/api/hmms/files/annotations.json.gz", auth=other).status_code == 403
    # Job keys are for the Job API only: listing annotations is for users.
    assert client.get("/api/hmms", auth=nuvs).status_code == 403


def test_nuvs_hits_read_back_with_their_annotation_whatever_set_they_came_from(db):
    insert_installed_set(db, clusters=(2, 9))
    db.hmm.insert_one(
        {
            "_id": "oldset01",
            "cluster": 4,
            "names": ["coat protein"],
            "families": {"Potyviridae": 3},
            "hidden": True,
            "set": {"id": "old"},
        }
    )
    hit = {"full_e": 1e-10, "full_score": 40.0, "full_bias": 0.1, "best_e": 2e-10, "best_score": 39.0, "best_bias": 0.2}
    results = {
        "hits": [
            {
                "index": 0,
                "sequence": "ACGT",
                "orfs": [
                    {"index": 0, "pro": "M", "hits": [{"hit": "hmm00009", **hit}, {"hit": "oldset01", **hit}]},
                    {"index": 1, "pro": "K", "hits": []},
                ],
            }
        ]
    }
    formatted = hmms.format_nuvs_results(db, results)
    first, second = formatted["hits"][0]["orfs"][0]["hits"]
    assert (first["cluster"], first["names"], first["families"]) == (9, ["protein 9", "Rep"], {"Geminiviridae": 1})
    assert (second["cluster"], second["families"], second["best_score"]) == (4, {"Potyviridae": 3}, 39.0)
    assert formatted["hits"][0]["orfs"][1]["hits"] == []
    assert "cluster" not in results["hits"][0]["orfs"][0]["hits"][0]  # the stored results are left alone
