"""Analyses API (seed 000) and its Job API side (seed 001): every error row, rights both ways,
and the OTU / isolate / sequence formatting of finalized Pathoscope results (workflows.md 1.7)."""

from __future__ import annotations

import os
from io import BytesIO

import dramatiq
import numpy as np
import pytest

from ringspot.core import analyses as core_analyses
from ringspot.core import hmms
from ringspot.core import otus as core_otus
from ringspot.core.utils import new_id
from ringspot.tasks import analyses as analysis_tasks  # noqa: F401  (binds actors to the stub broker first)

from ..analyses_data import (
    GLRAV1_READS,
    SMALL_REFERENCE,
    insert_index,
    insert_otus,
    insert_reference,
    insert_sample,
    insert_subtraction,
    load_otus,
)
from ..common import Job, error, job_key

#: The least a Pathoscope job finalizes with: no read aligned.
EMPTY_RESULTS = {"read_count": 0, "subtracted_count": 0, "hits": []}


@pytest.fixture
def world(db, settings, stub_broker, make_user, admin):
    """A reference with a ready index, a host subtraction and a sample owned by ``owner``.

    ``reader`` may read the sample (all_read) but not write it; ``stranger`` is in no group
    of a sample that is not readable by all.
    """
    owner, reader = make_user("owner"), make_user("reader")
    otus = load_otus(SMALL_REFERENCE)[:3]
    reference = insert_reference(db, public=True)
    insert_otus(db, reference["_id"], otus)
    index = insert_index(db, settings.data_path, reference["_id"], otus)
    subtraction = insert_subtraction(db, settings.data_path)
    sample = insert_sample(db, settings.data_path, GLRAV1_READS, user_id="owner", subtractions=[subtraction["_id"]])
    private = insert_sample(db, settings.data_path, GLRAV1_READS, user_id="owner", all_read=False, group_read=False)
    return {
        "owner": owner,
        "reader": reader,
        "stranger": make_user("stranger"),
        "admin": admin,
        "otus": otus,
        "reference": reference,
        "index": index,
        "subtraction": subtraction,
        "sample": sample,
        "private": private,
    }


def start(user, sample_id: str, ref_id: str, **body):
    return user.post(
        f"/api/samples/{sample_id}/analyses", json={"workflow": "pathoscope_bowtie", "ref_id": ref_id, **body}
    )


@pytest.fixture
def analysis(world, client, stub_broker):
    """An analysis of the owner's sample, plus its job's Job API client."""
    response = start(world["owner"], world["sample"]["_id"], world["reference"]["_id"])
    assert response.status_code == 201, response.json
    doc = response.json
    return doc, Job(client, doc["job"]["id"], job_key(stub_broker, "analyses", doc["job"]["id"]))


# ---------------------------------------------------------------- POST /api/samples/:id/analyses


def test_creates_analysis_and_job_on_latest_ready_index(world, db, stub_broker):
    newer = insert_index(db, "/nonexistent", world["reference"]["_id"], world["otus"], version=1)
    insert_index(db, "/nonexistent", world["reference"]["_id"], world["otus"], version=2, ready=False)
    response = start(world["owner"], world["sample"]["_id"], world["reference"]["_id"])
    assert response.status_code == 201
    doc = response.json
    assert response.headers["Location"] == f"/api/analyses/{doc['id']}"
    assert response.headers["Content-Location"] == f"/api/processes/{doc['job']['id']}"
    assert doc["workflow"] == "pathoscope_bowtie" and doc["ready"] is False and doc["results"] is None
    assert doc["sample"] == {"id": world["sample"]["_id"], "name": world["sample"]["name"]}
    assert doc["index"] == {"id": newer["_id"], "version": 1}
    assert doc["reference"] == {"id": world["reference"]["_id"], "name": "Plant viruses"}
    assert doc["subtractions"] == [{"id": world["subtraction"]["_id"], "name": "Host"}]  # the sample's own
    assert doc["user"] == {"id": "owner"} and doc["files"] == []
    job = db.processes.find_one({"_id": doc["job"]["id"]})
    assert job["workflow"] == "pathoscope_bowtie" and job["state"] == "waiting"
    assert job["context"] == {
        "analysis_id": doc["id"],
        "sample_id": world["sample"]["_id"],
        "index_id": newer["_id"],
        "ref_id": world["reference"]["_id"],
        "subtraction_ids": [world["subtraction"]["_id"]],
    }
    assert job["args"]["read_files"] == ["reads_1.fq.gz"]
    assert job_key(stub_broker, "analyses", job["_id"])


def test_nuvs_analyses_go_to_the_nuvs_actor(world, db, stub_broker, monkeypatch):
    monkeypatch.setattr(hmms, "profiles_installed", lambda db: True)
    response = start(world["owner"], world["sample"]["_id"], world["reference"]["_id"], workflow="nuvs")
    assert response.status_code == 201 and response.json["workflow"] == "nuvs"
    job = db.processes.find_one({"_id": response.json["job"]["id"]})
    assert job["workflow"] == "nuvs" and job["steps"][0]["name"] == "download_inputs"
    (message,) = [dramatiq.Message.decode(raw) for raw in stub_broker.queues["analyses"].queue]
    assert message.actor_name == "nuvs" and message.kwargs["process_id"] == job["_id"]


def test_explicit_empty_subtractions_means_none(world):
    response = start(world["owner"], world["sample"]["_id"], world["reference"]["_id"], subtractions=[])
    assert response.status_code == 201 and response.json["subtractions"] == []


def test_returns_404_for_unknown_sample(world):
    assert error(start(world["owner"], "nosample", world["reference"]["_id"])) == (404, "Not found")


def test_returns_403_without_write_right_on_sample(world):
    response = start(world["reader"], world["sample"]["_id"], world["reference"]["_id"])
    assert error(response) == (403, "Insufficient rights")


def test_returns_403_without_read_right_on_the_reference(world, db, settings):
    private = insert_reference(db, "Private", public=False)
    insert_index(db, settings.data_path, private["_id"], world["otus"])
    response = start(world["owner"], world["sample"]["_id"], private["_id"])
    assert error(response) == (403, "Insufficient rights")
    db.refs.update_one({"_id": private["_id"]}, {"$set": {"users": [{"id": "owner", "build": False}]}})
    assert start(world["owner"], world["sample"]["_id"], private["_id"]).status_code == 201


@pytest.mark.parametrize(
    "case, message",
    [
        ("sample_not_ready", "Sample is not ready"),
        ("unknown_reference", "Reference does not exist"),
        ("no_ready_index", "No index is ready for the reference"),
        ("unknown_subtraction", "Subtraction does not exist"),
        ("subtraction_not_ready", "Subtraction is not ready"),
        ("nuvs_without_hmms", "HMM profiles are not installed"),
    ],
)
def test_returns_400_for_bad_inputs(world, db, settings, case, message):
    sample_id, ref_id, body = world["sample"]["_id"], world["reference"]["_id"], {}
    if case == "sample_not_ready":
        sample_id = insert_sample(db, settings.data_path, GLRAV1_READS, user_id="owner", ready=False)["_id"]
    elif case == "unknown_reference":
        ref_id = "noref"
    elif case == "no_ready_index":
        ref_id = insert_reference(db, "Unbuilt", public=True)["_id"]
        insert_index(db, settings.data_path, ref_id, world["otus"], ready=False)
    elif case == "unknown_subtraction":
        body = {"subtractions": [world["subtraction"]["_id"], "nosubtraction"]}
    elif case == "subtraction_not_ready":
        body = {"subtractions": [insert_subtraction(db, settings.data_path, ready=False)["_id"]]}
    elif case == "nuvs_without_hmms":
        body = {"workflow": "nuvs"}
    response = start(world["owner"], sample_id, ref_id, **body)
    assert error(response) == (400, message)
    assert db.analyses.count_documents({}) == 0 and db.processes.count_documents({}) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"workflow": "aodp", "ref_id": "x"},
        {"workflow": "pathoscope_bowtie"},
        {"workflow": "pathoscope_bowtie", "ref_id": "x", "subtractions": "host"},
    ],
)
def test_returns_422_for_invalid_body(world, body):
    response = world["owner"].post(f"/api/samples/{world['sample']['_id']}/analyses", json=body)
    assert response.status_code == 422


# ---------------------------------------------------------------- GET /api/analyses/:id


def test_get_needs_sample_read_right(world, analysis):
    doc, _ = analysis
    assert world["reader"].get(f"/api/analyses/{doc['id']}").json["id"] == doc["id"]
    assert world["admin"].get(f"/api/analyses/{doc['id']}").status_code == 200


def test_get_returns_403_without_sample_read_right(world, db, client, stub_broker):
    response = start(world["owner"], world["private"]["_id"], world["reference"]["_id"])
    assert response.status_code == 201
    assert error(world["reader"].get(f"/api/analyses/{response.json['id']}")) == (403, "Insufficient rights")
    assert world["owner"].get(f"/api/analyses/{response.json['id']}").status_code == 200


def test_get_returns_404_for_unknown_analysis(world):
    assert error(world["owner"].get("/api/analyses/nothere")) == (404, "Not found")


def test_get_returns_400_when_parent_sample_is_gone(world, db, analysis):
    doc, _ = analysis
    db.samples.delete_one({"_id": world["sample"]["_id"]})
    assert error(world["owner"].get(f"/api/analyses/{doc['id']}")) == (400, "Parent sample does not exist")


def test_get_requires_sign_in(world, client, analysis):
    assert client.get(f"/api/analyses/{analysis[0]['id']}").status_code == 401


# ---------------------------------------------------------------- DELETE /api/analyses/:id


def test_delete_returns_409_while_job_runs(world, db, analysis):
    doc, _ = analysis
    assert error(world["owner"].delete(f"/api/analyses/{doc['id']}")) == (409, "Analysis is still running")
    db.processes.update_one({"_id": doc["job"]["id"]}, {"$set": {"state": "running"}})
    assert error(world["owner"].delete(f"/api/analyses/{doc['id']}")) == (409, "Analysis is still running")


def test_delete_removes_finished_analysis_and_files(world, db, settings, analysis):
    doc, job = analysis
    assert job.post(f"/api/analyses/{doc['id']}/files?name=report.tsv", data=b"x\ty\r\n").status_code == 201
    assert job.patch(f"/api/analyses/{doc['id']}", json={"results": EMPTY_RESULTS}).status_code == 200
    folder = settings.data_path + f"/analyses/{doc['id']}"
    assert os.path.isdir(folder)
    assert error(world["reader"].delete(f"/api/analyses/{doc['id']}")) == (403, "Insufficient rights")
    assert world["owner"].delete(f"/api/analyses/{doc['id']}").status_code == 204
    assert db.analyses.count_documents({}) == 0 and not os.path.exists(folder)
    assert error(world["owner"].delete(f"/api/analyses/{doc['id']}")) == (404, "Not found")


def test_delete_returns_400_when_parent_sample_is_gone(world, db, analysis):
    doc, _ = analysis
    db.samples.delete_one({"_id": world["sample"]["_id"]})
    assert error(world["owner"].delete(f"/api/analyses/{doc['id']}")) == (400, "Parent sample does not exist")


def test_failed_job_keeps_the_analysis_with_its_error_until_removed(world, db, settings, analysis):
    doc, job = analysis
    job.post(f"/api/jobs/{doc['job']['id']}/claim")
    job.post(f"/api/analyses/{doc['id']}/files?name=report.tsv", data=b"partial")
    response = job.post(f"/api/jobs/{doc['job']['id']}/status", json={"state": "error", "error": "bowtie2 died"})
    assert response.status_code == 201
    shown = world["owner"].get(f"/api/analyses/{doc['id']}").json
    assert (shown["ready"], shown["failed"], shown["error"], shown["files"]) == (False, True, "bowtie2 died", [])
    assert not os.path.exists(settings.data_path + f"/analyses/{doc['id']}")  # partial files go
    assert world["owner"].delete(f"/api/analyses/{doc['id']}").status_code == 204
    assert db.analyses.find_one({"_id": doc["id"]}) is None


def test_cancelled_waiting_job_leaves_no_analysis(world, db, make_user, analysis):
    doc, _ = analysis
    canceller = make_user("canceller", permissions=["cancel_job"])
    assert canceller.put(f"/api/jobs/{doc['job']['id']}/cancel").status_code == 200
    assert db.analyses.find_one({"_id": doc["id"]}) is None


# ---------------------------------------------------------------- lists


def test_lists_filter_by_sample_workflow_ready_and_visibility(world, db, client, stub_broker):
    first = start(world["owner"], world["sample"]["_id"], world["reference"]["_id"]).json
    second = start(world["owner"], world["private"]["_id"], world["reference"]["_id"]).json
    job = Job(client, first["job"]["id"], job_key(stub_broker, "analyses", first["job"]["id"]))
    job.patch(f"/api/analyses/{first['id']}", json={"results": {"read_count": 0, "subtracted_count": 0, "hits": []}})

    def ids(user, url):
        response = user.get(url)
        assert response.status_code == 200, response.json
        return [d["id"] for d in response.json["documents"]]

    assert ids(world["owner"], "/api/analyses") == [second["id"], first["id"]]
    assert ids(world["reader"], "/api/analyses") == [first["id"]]  # the private sample is not readable
    assert ids(world["stranger"], "/api/analyses") == [first["id"]]
    assert ids(world["owner"], f"/api/analyses?sample={world['private']['_id']}") == [second["id"]]
    assert ids(world["owner"], "/api/analyses?ready=true") == [first["id"]]
    assert ids(world["owner"], "/api/analyses?ready=false") == [second["id"]]
    assert ids(world["owner"], "/api/analyses?workflow=nuvs") == []
    envelope = world["owner"].get("/api/analyses?per_page=1").json
    assert (envelope["total_count"], envelope["found_count"], envelope["page_count"]) == (2, 2, 2)
    assert "results" not in envelope["documents"][0]
    assert world["owner"].get("/api/analyses?workflow=bad").status_code == 422

    assert ids(world["reader"], f"/api/samples/{world['sample']['_id']}/analyses") == [first["id"]]
    assert world["reader"].get(f"/api/samples/{world['private']['_id']}/analyses").status_code == 403
    assert world["owner"].get("/api/samples/nosample/analyses").status_code == 404


# ---------------------------------------------------------------- Job API (seed 001)


def test_job_reads_its_own_analysis_only(world, client, stub_broker, analysis):
    doc, job = analysis
    response = job.get(f"/api/analyses/{doc['id']}")
    assert response.status_code == 200
    assert response.json["id"] == doc["id"] and response.json["files"] == [] and response.json["ready"] is False
    other = start(world["owner"], world["sample"]["_id"], world["reference"]["_id"]).json
    assert error(job.get(f"/api/analyses/{other['id']}")) == (403, "Insufficient rights")
    assert error(job.get("/api/analyses/nothere")) == (404, "Not found")


def test_job_key_is_refused_elsewhere_in_the_user_api(world, analysis):
    _, job = analysis
    assert job.get("/api/analyses").status_code == 403


def test_finalize_sets_results_once(world, analysis):
    doc, job = analysis
    response = job.patch(f"/api/analyses/{doc['id']}", json={"results": {**EMPTY_RESULTS, "note": "x"}})
    assert response.status_code == 200
    assert response.json["ready"] is True and response.json["results"] == {**EMPTY_RESULTS, "note": "x"}
    again = job.patch(f"/api/analyses/{doc['id']}", json={"results": {**EMPTY_RESULTS, "note": "y"}})
    assert error(again) == (409, "There is already a result for this analysis")


@pytest.mark.parametrize(
    "payload", [[1, 2], "results", {"results": [1]}, {"results": "x"}, {}, {"results": {}, "extra": 1}]
)
def test_finalize_returns_422_for_non_object_results(world, analysis, payload):
    doc, job = analysis
    assert job.patch(f"/api/analyses/{doc['id']}", json=payload).status_code == 422


@pytest.mark.parametrize(
    "results, field",
    [
        ({"hits": []}, "results.read_count"),
        ({**EMPTY_RESULTS, "hits": [{"id": "s1", "final": {}}]}, "results.hits.0.otu"),
        ({**EMPTY_RESULTS, "read_count": "12"}, "results.read_count"),
        ({**EMPTY_RESULTS, "diagnosis": [{"id": "o1", "call": "maybe"}]}, "results.diagnosis.0.name"),
    ],
)
def test_finalize_refuses_results_that_do_not_fit_the_workflow_and_stores_nothing(world, db, analysis, results, field):
    doc, job = analysis
    response = job.patch(f"/api/analyses/{doc['id']}", json={"results": results})
    assert response.status_code == 422
    assert field in response.json["errors"] and response.json["message"].startswith(f"Invalid input: {field}")
    stored = db.analyses.find_one({"_id": doc["id"]})
    assert stored["ready"] is False and stored["results"] is None
    # The analysis stays readable, and a body that fits is taken afterwards.
    assert world["owner"].get(f"/api/analyses/{doc['id']}").status_code == 200
    assert job.patch(f"/api/analyses/{doc['id']}", json={"results": EMPTY_RESULTS}).status_code == 200
    assert world["owner"].get(f"/api/analyses/{doc['id']}").status_code == 200


def test_finalize_of_nuvs_checks_contigs(world, client, stub_broker, monkeypatch):
    monkeypatch.setattr(hmms, "profiles_installed", lambda db: True)
    doc = start(world["owner"], world["sample"]["_id"], world["reference"]["_id"], workflow="nuvs")
    assert doc.status_code == 201, doc.json
    job = Job(client, doc.json["job"]["id"], job_key(stub_broker, "analyses", doc.json["job"]["id"]))
    bad = {"hits": [{"index": 0, "sequence": "ACGT", "orfs": [{"index": 0, "hits": [{"full_e": 1e-5}]}]}]}
    response = job.patch(f"/api/analyses/{doc.json['id']}", json={"results": bad})
    assert response.status_code == 422 and "results.hits.0.orfs.0.hits.0.hit" in response.json["errors"]
    good = {"hits": [{"index": 0, "sequence": "ACGT", "orfs": []}], "note": "kept"}
    assert job.patch(f"/api/analyses/{doc.json['id']}", json={"results": good}).status_code == 200
    assert world["owner"].get(f"/api/analyses/{doc.json['id']}").json["results"]["note"] == "kept"


def diagnosis_row(otu_id: str, call: str, reads: int) -> dict:
    return {
        "id": otu_id,
        "name": f"virus {otu_id}",
        "abbreviation": "",
        "call": call,
        "reasons": [f"reads {reads}"],
        "pi": 0.5,
        "reads": reads,
        "breadth": 0.5,
        "evenness": 1.0,
        "mean_depth": 2.5,
        "median_depth": 2.0,
        "segments": {"covered": 1, "total": 1},
        "isolate": {"id": "i1", "source_name": "A"},
    }


def test_diagnosis_is_carried_by_the_analysis_with_its_algorithm(world, db, analysis):
    doc, job = analysis
    assert doc["algorithm"] == "pathoscope_bowtie"
    rows = [diagnosis_row("o1", "detected", 120), diagnosis_row("o2", "possible", 3)]
    rows.append(diagnosis_row("o3", "not_detected", 0))
    response = job.patch(f"/api/analyses/{doc['id']}", json={"results": {**EMPTY_RESULTS, "diagnosis": rows}})
    assert response.status_code == 200, response.json
    stored = db.analyses.find_one({"_id": doc["id"]})
    assert stored["diagnosis"] == rows and stored["algorithm"] == "pathoscope_bowtie"
    shown = world["reader"].get(f"/api/analyses/{doc['id']}").json
    assert shown["algorithm"] == "pathoscope_bowtie"
    assert [row["id"] for row in shown["diagnosis"]] == ["o1", "o2"]  # no read left: not listed
    assert "diagnosis" not in shown["results"]
    everything = world["reader"].get(f"/api/analyses/{doc['id']}?all_otus=true").json
    assert [row["id"] for row in everything["diagnosis"]] == ["o1", "o2", "o3"]
    listed = world["reader"].get("/api/analyses").json["documents"]
    assert all("diagnosis" not in item for item in listed)


def test_finalize_returns_404_and_403_for_other_analyses(world, analysis):
    doc, job = analysis
    other = start(world["owner"], world["sample"]["_id"], world["reference"]["_id"]).json
    assert error(job.patch("/api/analyses/nothere", json={"results": {}})) == (404, "Not found")
    assert error(job.patch(f"/api/analyses/{other['id']}", json={"results": {}})) == (403, "Insufficient rights")
    assert world["owner"].patch(f"/api/analyses/{doc['id']}", json={"results": {}}).status_code == 403


def test_job_removes_unfinished_analysis_but_not_a_finalized_one(world, db, client, stub_broker, analysis):
    doc, job = analysis
    other = start(world["owner"], world["sample"]["_id"], world["reference"]["_id"]).json
    assert error(job.delete(f"/api/analyses/{other['id']}")) == (403, "Insufficient rights")
    assert job.delete(f"/api/analyses/{doc['id']}").status_code == 204
    assert error(job.delete(f"/api/analyses/{doc['id']}")) == (404, "Not found")
    other_job = Job(client, other["job"]["id"], job_key(stub_broker, "analyses", other["job"]["id"]))
    other_job.patch(f"/api/analyses/{other['id']}", json={"results": EMPTY_RESULTS})
    assert error(other_job.delete(f"/api/analyses/{other['id']}")) == (409, "Analysis is finalized")
    assert db.analyses.find_one({"_id": other["id"]})["ready"]


def test_job_uploads_files_users_download_them(world, analysis):
    doc, job = analysis
    url = f"/api/analyses/{doc['id']}/files"
    response = job.post(f"{url}?name=report.tsv", data=b"a\tb\r\n", content_type="application/octet-stream")
    assert response.status_code == 201
    assert response.json["id"] == 1 and response.json["format"] == "tsv" and response.json["size"] == 5
    assert response.json["name_on_disk"] == "1-report.tsv" and response.json["analysis"] == doc["id"]
    multipart = job.post(
        f"{url}?name=reads.fq.gz",
        data={"file": (BytesIO(b"@r\nA\n+\nI\n"), "reads.fq.gz")},
        content_type="multipart/form-data",
    )
    assert multipart.status_code == 201 and multipart.json["format"] == "fastq" and multipart.json["id"] == 2
    replaced = job.post(f"{url}?name=report.tsv", data=b"new")
    assert replaced.json["id"] == 1 and replaced.json["size"] == 3
    files = job.get(f"/api/analyses/{doc['id']}").json["files"]
    assert [(f["id"], f["name"], f["size"]) for f in sorted(files, key=lambda f: f["id"])] == [
        (1, "report.tsv", 3),
        (2, "reads.fq.gz", 9),
    ]
    assert world["reader"].get(f"{url}/report.tsv").data == b"new"
    assert world["reader"].get(f"{url}/2").data == b"@r\nA\n+\nI\n"
    assert job.get(f"{url}/report.tsv").data == b"new"
    assert world["reader"].get(f"{url}/nothing.tsv").status_code == 404
    assert world["owner"].post(f"{url}?name=x.tsv", data=b"x").status_code == 403
    assert job.post(f"{url}?name=../x.tsv", data=b"x").status_code == 400
    assert job.post(f"{url}?name=x.tsv&format=docx", data=b"x").status_code == 400


def test_other_job_may_not_upload_or_download(world, client, stub_broker, analysis):
    doc, job = analysis
    job.post(f"/api/analyses/{doc['id']}/files?name=report.tsv", data=b"x")
    other = start(world["owner"], world["sample"]["_id"], world["reference"]["_id"]).json
    other_job = Job(client, other["job"]["id"], job_key(stub_broker, "analyses", other["job"]["id"]))
    assert other_job.post(f"/api/analyses/{doc['id']}/files?name=a.tsv", data=b"x").status_code == 403
    assert other_job.get(f"/api/analyses/{doc['id']}/files/report.tsv").status_code == 403


def test_no_upload_after_finalize(world, analysis):
    doc, job = analysis
    job.patch(f"/api/analyses/{doc['id']}", json={"results": EMPTY_RESULTS})
    response = job.post(f"/api/analyses/{doc['id']}/files?name=report.tsv", data=b"x")
    assert error(response) == (409, "Analysis is finalized")


# ---------------------------------------------------------------- formatting (workflows.md 1.7)


def hit(sequence_id: str, otu_id: str, align: list[int], pi: float, reads: int, version: int = 0) -> dict:
    depth = np.array(align)
    return {
        "id": sequence_id,
        "otu": {"id": otu_id, "version": version},
        "final": {"pi": pi, "best": pi, "high": pi, "low": 0.0, "reads": reads},
        "initial": {"pi": pi, "best": pi, "high": pi, "low": 0.0, "reads": reads},
        "align": align,
        "coverage": round(1 - int((depth == 0).sum()) / len(depth), 3),
        "depth": round(int(depth.sum()) / len(depth)),
    }


def test_ready_pathoscope_results_are_grouped_by_otu_isolate_and_sequence(world, db, analysis):
    doc, job = analysis
    # Two OTUs of the reference: one with two isolates, the second isolate hit on one sequence.
    otu = next(o for o in world["otus"] if len(o["isolates"]) >= 2)
    other = next(o for o in world["otus"] if o is not otu)
    isolate_a, isolate_b = otu["isolates"][0], otu["isolates"][1]
    seq_a, seq_b = isolate_a["sequences"][0], isolate_b["sequences"][0]
    seq_c = other["isolates"][0]["sequences"][0]
    len_a, len_b, len_c = (len(s["sequence"]) for s in (seq_a, seq_b, seq_c))
    align_a = [0] * 10 + [3] * (len_a - 20) + [1] * 10
    align_b = [2] * (len_b // 2) + [0] * (len_b - len_b // 2)
    align_c = [5] * len_c
    hits = [
        hit(seq_c["_id"], other["_id"], align_c, 0.2, 40),
        hit(seq_a["_id"], otu["_id"], align_a, 0.5, 90),
        hit(seq_b["_id"], otu["_id"], align_b, 0.3, 60),
    ]
    # The OTU is renamed after the index was built: the analysis shows it as it was (version 0).
    core_otus.edit_otu(db, db.otus.find_one({"_id": otu["_id"]}), {"name": "Renamed virus"}, "admin")
    results = {"read_count": 200, "subtracted_count": 3, "hits": hits}
    assert job.patch(f"/api/analyses/{doc['id']}", json={"results": results}).status_code == 200

    shown = world["reader"].get(f"/api/analyses/{doc['id']}").json
    assert shown["ready"] is True and shown["read_count"] == 200 and shown["subtracted_count"] == 3
    assert shown["results"]["read_count"] == 200
    first, second = shown["results"]["hits"]
    assert [first["id"], second["id"]] == [otu["_id"], other["_id"]]  # pi 0.8 before 0.2
    assert first["name"] == otu["name"] != "Renamed virus" and first["version"] == 0
    assert first["abbreviation"] == otu["abbreviation"]
    assert first["length"] == max(len(s["sequence"]) for i in otu["isolates"] for s in i["sequences"])
    assert [i["id"] for i in first["isolates"]] == [isolate_a["id"], isolate_b["id"]]  # unhit isolates dropped
    assert first["isolates"][0]["source_name"] == isolate_a["source_name"]
    sequence = first["isolates"][0]["sequences"][0]
    assert {k: sequence[k] for k in ("id", "accession", "definition", "length", "pi", "best", "reads", "coverage")} == {
        "id": seq_a["_id"],
        "accession": seq_a["accession"],
        "definition": seq_a["definition"],
        "length": len_a,
        "pi": 0.5,
        "best": 0.5,
        "reads": 90,
        "coverage": hits[1]["coverage"],
    }
    assert sequence["align"] == [
        [0, 0],
        [9, 0],
        [10, 3],
        [len_a - 11, 3],
        [len_a - 10, 1],
        [len_a - 2, 1],
        [len_a - 1, 1],
    ]
    # Isolate figures: pi summed, coverage and median depth of the sequences end to end.
    assert first["isolates"][0]["pi"] == 0.5 and first["isolates"][1]["pi"] == 0.3
    assert first["isolates"][0]["coverage"] == round((len_a - 10) / len_a, 3)
    assert first["isolates"][0]["depth"] == first["isolates"][0]["median_depth"] == 3
    depth_a = np.array(align_a)
    assert first["isolates"][0]["mean_depth"] == round(float(depth_a.mean()), 2)
    assert sequence["mean_depth"] == round(float(depth_a.mean()), 2) and sequence["median_depth"] == 3
    assert first["isolates"][1]["coverage"] == round((len_b // 2) / len_b, 3)
    # OTU figures: pi summed, best isolate coverage, median of the position-wise max, and the
    # reads assigned (the sequences' final reads, 90 + 60), not pi * read_count (160).
    assert first["pi"] == pytest.approx(0.8) and first["reads"] == 150
    assert first["coverage"] == first["isolates"][0]["coverage"]
    expected = np.zeros(max(len_a, len_b), dtype=int)
    expected[:len_a] = np.maximum(expected[:len_a], align_a)
    expected[:len_b] = np.maximum(expected[:len_b], align_b)
    assert first["depth"] == first["median_depth"] == int(np.floor(np.median(expected) + 0.5))
    assert second["isolates"][0]["sequences"][0]["align"] == [[0, 5], [len_c - 2, 5], [len_c - 1, 5]]
    assert (second["pi"], second["reads"], second["coverage"], second["depth"]) == (0.2, 40, 1.0, 5)
    # The job reads the raw results it stored.
    assert job.get(f"/api/analyses/{doc['id']}").json["results"] == results


def test_hits_of_an_otu_the_database_lost_are_still_shown(world, db, analysis):
    doc, job = analysis
    results = {"read_count": 10, "subtracted_count": 0, "hits": [hit("gone1", "goneotu", [1, 1, 0, 0], 0.9, 9)]}
    job.patch(f"/api/analyses/{doc['id']}", json={"results": results})
    (otu,) = world["owner"].get(f"/api/analyses/{doc['id']}").json["results"]["hits"]
    assert otu["id"] == "goneotu" and otu["name"] is None
    assert otu["isolates"][0]["sequences"][0]["id"] == "gone1"
    assert otu["isolates"][0]["sequences"][0]["length"] == 4


def test_large_results_are_kept_in_a_file(world, db, settings, analysis, monkeypatch):
    monkeypatch.setattr(core_analyses, "MAX_INLINE_RESULTS", 1000)
    doc, job = analysis
    results = {"read_count": 10, "subtracted_count": 0, "hits": [hit("gone1", "goneotu", [1] * 500, 0.9, 9)]}
    assert job.patch(f"/api/analyses/{doc['id']}", json={"results": results}).json["ready"] is True
    assert db.analyses.find_one({"_id": doc["id"]})["results"] == "file"
    shown = world["owner"].get(f"/api/analyses/{doc['id']}").json
    assert shown["read_count"] == 10 and shown["results"]["hits"][0]["id"] == "goneotu"


def test_new_id_is_not_an_analysis(world):
    assert world["owner"].get(f"/api/analyses/{new_id()}").status_code == 404


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/analyses"),
        ("get", "/api/samples/{sample}/analyses"),
        ("post", "/api/samples/{sample}/analyses"),
        ("get", "/api/analyses/{analysis}"),
        ("delete", "/api/analyses/{analysis}"),
        ("patch", "/api/analyses/{analysis}"),
        ("post", "/api/analyses/{analysis}/files?name=a.tsv"),
        ("get", "/api/analyses/{analysis}/files/report.tsv"),
    ],
)
def test_every_endpoint_needs_credentials(world, client, analysis, method, path):
    url = path.format(sample=world["sample"]["_id"], analysis=analysis[0]["id"])
    assert getattr(client, method)(url).status_code == 401


def test_files_need_sample_read_right(world, client, stub_broker):
    doc = start(world["owner"], world["private"]["_id"], world["reference"]["_id"]).json
    job = Job(client, doc["job"]["id"], job_key(stub_broker, "analyses", doc["job"]["id"]))
    job.post(f"/api/analyses/{doc['id']}/files?name=report.tsv", data=b"x")
    assert error(world["reader"].get(f"/api/analyses/{doc['id']}/files/report.tsv")) == (403, "Insufficient rights")
    assert world["owner"].get(f"/api/analyses/{doc['id']}/files/report.tsv").data == b"x"


def test_an_analysis_finalized_without_a_diagnosis_shows_none(world, db, analysis):
    doc, job = analysis
    assert job.patch(f"/api/analyses/{doc['id']}", json={"results": EMPTY_RESULTS}).status_code == 200
    shown = world["owner"].get(f"/api/analyses/{doc['id']}").json
    assert shown["ready"] is True and "diagnosis" not in shown and shown["algorithm"] == "pathoscope_bowtie"
