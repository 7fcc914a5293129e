"""Alignments API (seed 002, One Codex's Alignment resource) and its Job API side: the seed's
properties, every 400/403/404/409/422, rights both ways, failure kept visible; and the coverage
plots of Pathoscope hits."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import dramatiq
import numpy as np
import pytest
from matplotlib import image as mpimg

from ringspot.core.utils import new_id, now
from ringspot.tasks import alignments as alignment_tasks  # noqa: F401  (binds the actor to the stub broker)

from ..analyses_data import GLRAV1_READS, SMALL_REFERENCE, insert_otus, insert_reference, insert_sample, load_otus
from ..common import Job, error, job_key

#: Hop latent virus: three isolates of one 8,612-base genome; NC_002552 is the default isolate's.
HOP_DEFAULT, HOP_OTHER = "ixnaodb8", "8f6riell"
SEED_PROPERTIES = {"$uri", "created_at", "updated_at", "complete", "success", "error_msg", "job", "job_args", "sample"}
FILES = ("alignment.bam", "alignment.bam.bai", "depth.json.gz", "coverage.svg", "coverage.png")
STATISTICS = {"mapped_reads": 12, "length": 8612, "breadth": 0.25, "mean_depth": 1.5, "identity": 98.5}


@pytest.fixture
def world(db, settings, stub_broker, make_user, admin):
    """A private reference ``owner`` and ``reader`` may read, and samples of ``owner``.

    ``reader`` may read ``sample`` (all_read) but not write it; ``stranger`` may read neither
    ``private`` nor the reference.
    """
    owner, reader, stranger = make_user("owner"), make_user("reader"), make_user("stranger")
    otus = load_otus(SMALL_REFERENCE)[:3]
    users = [
        {"id": user_id, "build": False, "modify": False, "modify_otu": False, "remove": False}
        for user_id in ("owner", "reader")
    ]
    reference = insert_reference(db, users=users)
    insert_otus(db, reference["_id"], otus)
    sample = insert_sample(db, settings.data_path, GLRAV1_READS, user_id="owner")
    private = insert_sample(db, settings.data_path, GLRAV1_READS, user_id="owner", all_read=False, group_read=False)
    unready = insert_sample(db, settings.data_path, GLRAV1_READS, user_id="owner", ready=False)
    return {
        "owner": owner,
        "reader": reader,
        "stranger": stranger,
        "admin": admin,
        "otus": otus,
        "reference": reference,
        "sample": sample,
        "private": private,
        "unready": unready,
    }


def start(user, sample_id: str, **body):
    return user.post(f"/api/samples/{sample_id}/alignments", json=body or {"sequence_id": HOP_DEFAULT})


def job_id_of(doc: dict) -> str:
    return doc["job"]["$ref"].rsplit("/", 1)[1]


@pytest.fixture
def alignment(world, client, stub_broker):
    """An alignment of the owner's sample to Hop latent virus, plus its job's Job API client."""
    response = start(world["owner"], world["sample"]["_id"])
    assert response.status_code == 201, response.json
    doc = response.json
    return doc, Job(client, job_id_of(doc), job_key(stub_broker, "alignments", job_id_of(doc)))


def upload_all(job, alignment_id: str) -> dict[str, bytes]:
    contents = {name: f"{name} of {alignment_id}".encode() for name in FILES}
    for name, content in contents.items():
        response = job.post(
            f"/api/alignments/{alignment_id}/files?name={name}", data=content, content_type="application/octet-stream"
        )
        assert response.status_code == 201, response.json
    return contents


# ---------------------------------------------------------------- POST /api/samples/:id/alignments


def test_creates_alignment_with_the_seed_properties_and_an_alignment_job(world, db, settings, stub_broker):
    response = start(world["owner"], world["sample"]["_id"])
    assert response.status_code == 201, response.json
    doc = response.json
    job_id = job_id_of(doc)
    assert response.headers["Location"] == f"/api/alignments/{doc['id']}"
    assert response.headers["Content-Location"] == f"/api/processes/{job_id}"
    assert set(doc) >= SEED_PROPERTIES
    assert doc["$uri"] == f"/api/alignments/{doc['id']}"
    assert (doc["complete"], doc["success"], doc["error_msg"]) == (False, False, None)
    assert doc["created_at"] == doc["updated_at"] and doc["created_at"].endswith("Z")
    assert doc["job"] == {"$ref": f"/api/jobs/{job_id}"}
    assert doc["sample"] == {"$ref": f"/api/samples/{world['sample']['_id']}"}
    assert doc["job_args"] == {
        "ref_id": world["reference"]["_id"],
        "sequence_id": HOP_DEFAULT,
        "accession": "NC_002552",
        "aligner": "bowtie2 --local --score-min L,20,1.0 -N 0 -L 15 --no-unal",
        "read_files": ["reads_1.fq.gz"],
    }
    assert doc["reference"] == {
        "id": world["reference"]["_id"],
        "name": "Plant viruses",
        "sequence_id": HOP_DEFAULT,
        "accession": "NC_002552",
        "definition": doc["reference"]["definition"],
        "otu": {"id": world["otus"][1]["_id"], "name": "Hop latent virus"},
    }
    assert doc["statistics"] is None and doc["files"] == []
    assert doc["tax_id"] is None  # the plant reference gives Hop latent virus no taxid

    job = db.processes.find_one({"_id": job_id})
    assert (job["workflow"], job["type"], job["state"]) == ("alignment", "alignment", "waiting")
    assert job["context"] == {
        "alignment_id": doc["id"],
        "sample_id": world["sample"]["_id"],
        "ref_id": world["reference"]["_id"],
        "sequence_id": HOP_DEFAULT,
    }
    steps = ["download_inputs", "map_reads", "compute_coverage", "plot_coverage", "upload_results"]
    assert [step["name"] for step in job["steps"]] == steps and all(step["description"] for step in job["steps"])
    (message,) = [dramatiq.Message.decode(raw) for raw in stub_broker.queues["alignments"].queue]
    assert message.actor_name == "align_reads" and message.kwargs["process_id"] == job_id
    # The genome as it was when asked for, ready for the job.
    fasta = Path(settings.data_path, "alignments", doc["id"], "reference.fa").read_text().splitlines()
    sequence = db.sequences.find_one({"_id": HOP_DEFAULT})["sequence"]
    assert fasta[0].split()[0] == ">NC_002552" and "".join(fasta[1:]) == sequence
    assert max(len(line) for line in fasta[1:]) == 80
    assert world["admin"].get("/api/jobs?workflow=alignment").json["found_count"] == 1


def test_carries_the_taxid_of_the_genomes_otu(world, db):
    db.otus.update_one({"_id": world["otus"][1]["_id"]}, {"$set": {"taxid": 33760}})
    response = start(world["owner"], world["sample"]["_id"])
    assert response.status_code == 201, response.json
    assert response.json["tax_id"] == 33760
    assert world["owner"].get(response.json["$uri"]).json["tax_id"] == 33760


@pytest.mark.parametrize("accession", ["HG793797", "hg793797", "HG793797.1"])
def test_finds_the_sequence_by_accession_in_a_reference(world, accession):
    response = start(world["owner"], world["sample"]["_id"], accession=accession, ref_id=world["reference"]["_id"])
    assert response.status_code == 201, response.json
    assert response.json["reference"]["sequence_id"] == HOP_OTHER


def test_returns_404_for_unknown_sample(world):
    assert error(start(world["owner"], "nosample")) == (404, "Not found")


@pytest.mark.parametrize("user, sample", [("reader", "sample"), ("stranger", "sample"), ("stranger", "private")])
def test_returns_403_without_write_right_on_sample(world, user, sample):
    assert start(world[user], world[sample]["_id"]).status_code == 403


@pytest.mark.parametrize("user", ["owner", "admin"])
def test_writers_of_the_sample_may_align_it(world, user):
    assert start(world[user], world["sample"]["_id"]).status_code == 201


def test_returns_403_without_read_right_on_the_reference(world, db, make_user):
    """A reference named by id is refused; a sequence in it answers as a missing one (no probing by id)."""
    db.samples.update_one({"_id": world["sample"]["_id"]}, {"$set": {"all_write": True}})
    by_accession = {"accession": "NC_002552", "ref_id": world["reference"]["_id"]}
    assert start(world["stranger"], world["sample"]["_id"], **by_accession).status_code == 403
    assert error(start(world["stranger"], world["sample"]["_id"])) == (400, "Sequence does not exist")
    db.refs.update_one({"_id": world["reference"]["_id"]}, {"$set": {"public": True}})
    assert start(world["stranger"], world["sample"]["_id"]).status_code == 201


@pytest.mark.parametrize(
    "case, message",
    [
        ("unready", "Sample is not ready"),
        ("unknown_sequence", "Sequence does not exist"),
        ("sequence_of_other_reference", "Sequence does not exist"),
        ("unknown_accession", "No sequence with accession NC_999999 in the reference"),
        ("unknown_reference", "Reference does not exist"),
    ],
)
def test_returns_400_for_bad_inputs(world, db, case, message):
    ref_id, sample_id = world["reference"]["_id"], world["sample"]["_id"]
    other = insert_reference(db, "Other", public=True)
    body = {
        "unready": {"sequence_id": HOP_DEFAULT},
        "unknown_sequence": {"sequence_id": "nosuchid"},
        "sequence_of_other_reference": {"sequence_id": HOP_DEFAULT, "ref_id": other["_id"]},
        "unknown_accession": {"accession": "NC_999999", "ref_id": ref_id},
        "unknown_reference": {"accession": "NC_002552", "ref_id": "noref"},
    }[case]
    if case == "unready":
        sample_id = world["unready"]["_id"]
    assert error(start(world["owner"], sample_id, **body)) == (400, message)


def test_an_ambiguous_accession_asks_for_a_sequence_id(world, db):
    db.sequences.update_one({"_id": HOP_OTHER}, {"$set": {"accession": "NC_002552.1"}})
    twin = db.sequences.find_one({"_id": HOP_OTHER})
    db.sequences.insert_one({**twin, "_id": "twin0001"})
    status, message = error(
        start(world["owner"], world["sample"]["_id"], accession="NC_002552.1", ref_id=world["reference"]["_id"])
    )
    assert status == 400 and "matches several sequences" in message and "give a sequence_id" in message
    # The exact accession wins over one that differs only by its version.
    response = start(world["owner"], world["sample"]["_id"], accession="NC_002552", ref_id=world["reference"]["_id"])
    assert response.json["reference"]["sequence_id"] == HOP_DEFAULT


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "body"),
        ({"accession": "NC_002552"}, "body"),
        ({"sequence_id": HOP_DEFAULT, "accession": "NC_002552"}, "body"),
        ({"sequence_id": 5}, "sequence_id"),
        ({"sequence_id": HOP_DEFAULT, "colour": "red"}, "colour"),
    ],
)
def test_returns_422_for_invalid_body(world, body, field):
    response = world["owner"].post(f"/api/samples/{world['sample']['_id']}/alignments", json=body)
    assert response.status_code == 422
    assert field in response.json["errors"]


# ---------------------------------------------------------------- reading


def test_readers_of_the_sample_read_the_alignment(world, alignment):
    doc, _ = alignment
    for user in ("owner", "reader", "admin"):
        response = world[user].get(f"/api/alignments/{doc['id']}")
        assert response.status_code == 200 and response.json == doc


def test_returns_403_without_read_right_on_sample(world, db, alignment):
    doc, _ = alignment
    db.samples.update_one({"_id": world["sample"]["_id"]}, {"$set": {"all_read": False, "group_read": False}})
    assert world["stranger"].get(f"/api/alignments/{doc['id']}").status_code == 403
    for name in ("reference.fa", "alignment.bam", "coverage.png"):
        assert world["stranger"].get(f"/api/alignments/{doc['id']}/{name}").status_code == 403
    assert world["stranger"].delete(f"/api/alignments/{doc['id']}").status_code == 403


def test_returns_404_for_unknown_alignment(world):
    assert error(world["owner"].get("/api/alignments/nothere")) == (404, "Not found")


def test_requires_sign_in(world, client, alignment):
    doc, _ = alignment
    for path in (f"/api/alignments/{doc['id']}", "/api/alignments", f"/api/alignments/{doc['id']}/coverage.png"):
        assert client.get(path).status_code == 401


def test_lists_filter_by_sample_and_complete_and_hide_unreadable_samples(world, db, client, stub_broker):
    first = start(world["owner"], world["sample"]["_id"]).json
    hidden = start(world["owner"], world["private"]["_id"]).json
    done = start(world["owner"], world["sample"]["_id"]).json
    job = Job(client, job_id_of(done), job_key(stub_broker, "alignments", job_id_of(done)))
    upload_all(job, done["id"])
    assert job.patch(f"/api/alignments/{done['id']}", json={"statistics": STATISTICS}).status_code == 200

    def ids(user, query=""):
        body = world[user].get(f"/api/alignments{query}").json
        return [d["id"] for d in body["documents"]], body["found_count"]

    assert ids("owner") == ([done["id"], hidden["id"], first["id"]], 3)  # newest first
    assert ids("reader") == ([done["id"], first["id"]], 2)
    assert ids("stranger") == ([done["id"], first["id"]], 2)  # sample is readable by all, private is not
    assert ids("owner", f"?sample={world['private']['_id']}") == ([hidden["id"]], 1)
    assert ids("owner", "?complete=true") == ([done["id"]], 1)
    assert ids("owner", "?complete=false") == ([hidden["id"], first["id"]], 2)
    page = world["owner"].get("/api/alignments?per_page=2&page=2").json
    assert (page["page_count"], [d["id"] for d in page["documents"]]) == (2, [first["id"]])
    assert set(page["documents"][0]) >= SEED_PROPERTIES
    assert world["owner"].get("/api/alignments?complete=perhaps").status_code == 422


# ---------------------------------------------------------------- the Job API side


def test_job_reads_its_own_alignment_and_genome_only(world, client, stub_broker, db, alignment):
    doc, job = alignment
    assert job.get(f"/api/alignments/{doc['id']}").json["id"] == doc["id"]
    fasta = job.get(f"/api/alignments/{doc['id']}/reference.fa")
    assert fasta.status_code == 200 and fasta.data.startswith(b">NC_002552")
    assert job.get(f"/api/samples/{world['sample']['_id']}/reads/reads_1.fq.gz").status_code == 200
    other = start(world["owner"], world["sample"]["_id"]).json
    assert job.get(f"/api/alignments/{other['id']}").status_code == 403
    assert job.get(f"/api/alignments/{other['id']}/reference.fa").status_code == 403
    assert job.post(f"/api/alignments/{other['id']}/files?name=coverage.png", data=b"x").status_code == 403
    assert job.patch(f"/api/alignments/{other['id']}", json={"statistics": STATISTICS}).status_code == 403
    assert job.get(f"/api/samples/{world['private']['_id']}/reads/reads_1.fq.gz").status_code == 403
    # A job key is no user: the user API refuses it.
    assert job.get("/api/alignments").status_code == 403
    response = job.post(f"/api/samples/{world['sample']['_id']}/alignments", json={"sequence_id": HOP_DEFAULT})
    assert response.status_code == 403


def test_users_may_not_use_the_job_side(world, alignment):
    doc, _ = alignment
    owner = world["owner"]
    assert owner.post(f"/api/alignments/{doc['id']}/files?name=coverage.png", data=b"x").status_code == 403
    assert owner.patch(f"/api/alignments/{doc['id']}", json={"statistics": STATISTICS}).status_code == 403


def test_job_uploads_files_and_finalizes_once_users_download_them(world, alignment):
    doc, job = alignment
    response = job.post(f"/api/alignments/{doc['id']}/files?name=notes.txt", data=b"x")
    assert error(response) == (400, f"File name must be one of: {', '.join(FILES)}")
    assert world["owner"].get(f"/api/alignments/{doc['id']}/alignment.bam").status_code == 404
    contents = upload_all(job, doc["id"])
    contents["coverage.png"] = b"\x89PNG a retried job uploads again"
    again = job.post(f"/api/alignments/{doc['id']}/files?name=coverage.png", data=contents["coverage.png"])
    assert again.status_code == 201
    # Statistics are checked: the genome's length, fractions, no missing field.
    for bad in (
        {**STATISTICS, "breadth": 1.5},
        {**STATISTICS, "mapped_reads": -1},
        {k: v for k, v in STATISTICS.items() if k != "identity"},
    ):
        assert job.patch(f"/api/alignments/{doc['id']}", json={"statistics": bad}).status_code == 422
    response = job.patch(f"/api/alignments/{doc['id']}", json={"statistics": {**STATISTICS, "length": 10}})
    assert error(response) == (400, "length 10 is not the sequence's (8612)")

    response = job.patch(f"/api/alignments/{doc['id']}", json={"statistics": STATISTICS})
    assert response.status_code == 200
    done = response.json
    assert (done["complete"], done["success"], done["error_msg"]) == (True, True, None)
    assert done["statistics"] == STATISTICS and done["updated_at"] > done["created_at"]
    assert [f["name"] for f in done["files"]] == sorted(FILES)
    assert {f["name"]: f["download_url"] for f in done["files"]}[
        "coverage.svg"
    ] == f"/api/alignments/{doc['id']}/coverage.svg"
    assert error(job.patch(f"/api/alignments/{doc['id']}", json={"statistics": STATISTICS})) == (
        409,
        "Alignment is complete",
    )
    assert error(job.post(f"/api/alignments/{doc['id']}/files?name=coverage.svg", data=b"x")) == (
        409,
        "Alignment is complete",
    )

    for name, content in contents.items():
        response = world["reader"].get(f"/api/alignments/{doc['id']}/{name}")
        assert response.status_code == 200 and response.data == content
    assert world["reader"].get(f"/api/alignments/{doc['id']}/coverage.png").mimetype == "image/png"
    assert world["reader"].get(f"/api/alignments/{doc['id']}/coverage.svg").mimetype == "image/svg+xml"
    bam = world["reader"].get(f"/api/alignments/{doc['id']}/alignment.bam")
    assert "attachment" in bam.headers["Content-Disposition"]
    assert world["reader"].get(f"/api/alignments/{doc['id']}/reference.fa").data.startswith(b">NC_002552")
    assert world["reader"].get(f"/api/alignments/{doc['id']}/other.txt").status_code == 404


def test_finalize_needs_every_file(world, alignment):
    doc, job = alignment
    job.post(f"/api/alignments/{doc['id']}/files?name=alignment.bam", data=b"bam")
    status, message = error(job.patch(f"/api/alignments/{doc['id']}", json={"statistics": STATISTICS}))
    assert status == 409 and message.endswith(
        "Missing files: alignment.bam.bai, depth.json.gz, coverage.svg, coverage.png"
    )


def test_a_failed_job_leaves_the_alignment_complete_unsuccessful_with_its_error(world, db, settings, alignment):
    doc, job = alignment
    job.post(f"/api/alignments/{doc['id']}/files?name=alignment.bam", data=b"half")
    response = job.post(
        f"/api/jobs/{job_id_of(doc)}/status",
        json={"state": "error", "error": "bowtie2 exited with code 1: (ERR): reads file is broken"},
    )
    assert response.status_code == 201
    failed = world["owner"].get(f"/api/alignments/{doc['id']}").json
    assert (failed["complete"], failed["success"]) == (True, False)
    assert failed["error_msg"] == "The alignment job failed: bowtie2 exited with code 1: (ERR): reads file is broken"
    assert failed["files"] == [] and failed["statistics"] is None
    assert not Path(settings.data_path, "alignments", doc["id"]).exists()
    assert world["owner"].get(f"/api/alignments/{doc['id']}/alignment.bam").status_code == 404
    assert [d["id"] for d in world["owner"].get("/api/alignments?complete=true").json["documents"]] == [doc["id"]]


def test_a_cancelled_job_leaves_the_alignment_complete_unsuccessful(world, db, make_user, alignment):
    doc, _ = alignment
    canceller = make_user("canceller", permissions=["cancel_job"])
    assert canceller.put(f"/api/jobs/{job_id_of(doc)}/cancel").status_code == 200
    cancelled = world["owner"].get(f"/api/alignments/{doc['id']}").json
    assert (cancelled["complete"], cancelled["success"]) == (True, False)
    assert cancelled["error_msg"] == "The alignment job was cancelled"


def test_delete_waits_for_the_job_and_needs_write_right(world, db, settings, alignment):
    doc, job = alignment
    assert error(world["owner"].delete(f"/api/alignments/{doc['id']}")) == (409, "Alignment is still running")
    job.post(f"/api/jobs/{job_id_of(doc)}/status", json={"state": "error", "error": "boom"})
    assert world["reader"].delete(f"/api/alignments/{doc['id']}").status_code == 403
    assert world["owner"].delete(f"/api/alignments/{doc['id']}").status_code == 204
    assert db.alignments.find_one({"_id": doc["id"]}) is None
    assert world["owner"].get(f"/api/alignments/{doc['id']}").status_code == 404


def test_returns_400_when_parent_sample_is_gone(world, db, alignment):
    doc, _ = alignment
    db.samples.delete_one({"_id": world["sample"]["_id"]})
    assert error(world["owner"].get(f"/api/alignments/{doc['id']}")) == (400, "Parent sample does not exist")


# ---------------------------------------------------------------- coverage plots of Pathoscope hits


def insert_analysis(
    db, sample: dict, results: dict | str | None, *, ready: bool = True, workflow: str = "pathoscope_bowtie"
) -> dict:
    doc = {
        "_id": new_id(),
        "workflow": workflow,
        "ready": ready,
        "created_at": now(),
        "updated_at": now(),
        "job": {"id": new_id()},
        "sample": {"id": sample["_id"], "name": sample["name"]},
        "index": {"id": "i", "version": 0},
        "reference": {"id": "r", "name": "R"},
        "subtractions": [],
        "user": {"id": "owner"},
        "results": results,
        "files": [],
    }
    db.analyses.insert_one(doc)
    return doc


def hit(sequence_id: str, align: list[int]) -> dict:
    final = {"pi": 1.0, "best": 1, "reads": 5, "high": 1, "low": 0}
    return {
        "id": sequence_id,
        "otu": {"id": "o", "version": 0},
        "align": align,
        "coverage": 0.5,
        "depth": 1,
        "initial": final,
        "final": final,
    }


def png_pixels(data: bytes) -> np.ndarray:
    return mpimg.imread(io.BytesIO(data), format="png")


@pytest.fixture
def analysis(world, db):
    align = [0] * 100 + [3] * 500 + [7] * 300 + [0] * 100
    return insert_analysis(
        db,
        world["sample"],
        {"read_count": 5, "subtracted_count": 0, "hits": [hit(HOP_DEFAULT, align), hit("other001", [1, 2, 3])]},
    )


def test_hit_plots_are_drawn_once_and_kept_with_the_analysis(world, settings, analysis):
    path = f"/api/analyses/{analysis['_id']}/hits/{HOP_DEFAULT}/coverage"
    png = world["reader"].get(path + ".png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    pixels = png_pixels(png.data)
    assert pixels.shape[:2] == (300, 1000)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)) > 1
    svg = world["reader"].get(path + ".svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    text = svg.data.decode()
    # The title: the accession, breadth 80.0% and mean depth (1500 + 2100) / 1000 = 3.6.
    assert "NC_002552 · breadth 80.0% · mean depth 3.6×" in text
    stored = Path(settings.data_path, "analyses", analysis["_id"], "plots")
    assert sorted(p.name for p in stored.iterdir()) == [f"{HOP_DEFAULT}.coverage.png", f"{HOP_DEFAULT}.coverage.svg"]
    (stored / f"{HOP_DEFAULT}.coverage.svg").write_text("<svg>kept</svg>")
    assert world["reader"].get(path + ".svg").data == b"<svg>kept</svg>"  # served, not drawn again
    # A hit whose sequence the database does not know is titled by its id.
    other = world["owner"].get(f"/api/analyses/{analysis['_id']}/hits/other001/coverage.svg")
    assert other.status_code == 200 and "other001 · breadth 100.0%" in other.data.decode()


def test_hit_plots_of_results_kept_in_a_file(world, db, settings):
    align = [2] * 50
    doc = insert_analysis(db, world["sample"], "file")
    folder = Path(settings.data_path, "analyses", doc["_id"])
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"read_count": 1, "hits": [hit(HOP_DEFAULT, align)]}))
    response = world["owner"].get(f"/api/analyses/{doc['_id']}/hits/{HOP_DEFAULT}/coverage.svg")
    assert response.status_code == 200 and "breadth 100.0% · mean depth 2.0×" in response.data.decode()


def test_hit_plots_return_404_for_what_is_no_hit(world, db, analysis):
    base = f"/api/analyses/{analysis['_id']}/hits"
    assert error(world["owner"].get(f"{base}/{HOP_OTHER}/coverage.png")) == (
        404,
        "Sequence is not among the analysis's hits",
    )
    assert world["owner"].get(f"{base}/{HOP_DEFAULT}/coverage.pdf").status_code == 404
    assert world["owner"].get(f"/api/analyses/nothere/hits/{HOP_DEFAULT}/coverage.png").status_code == 404
    unready = insert_analysis(db, world["sample"], None, ready=False)
    nuvs = insert_analysis(db, world["sample"], {"hits": []}, workflow="nuvs")
    for doc in (unready, nuvs):
        assert error(world["owner"].get(f"/api/analyses/{doc['_id']}/hits/{HOP_DEFAULT}/coverage.png")) == (
            404,
            "Analysis has no Pathoscope hits",
        )


def test_hit_plots_need_sample_read_right(world, db):
    doc = insert_analysis(db, world["private"], {"read_count": 1, "hits": [hit(HOP_DEFAULT, [1, 1])]})
    assert world["stranger"].get(f"/api/analyses/{doc['_id']}/hits/{HOP_DEFAULT}/coverage.png").status_code == 403
    assert world["owner"].get(f"/api/analyses/{doc['_id']}/hits/{HOP_DEFAULT}/coverage.png").status_code == 200


def test_depth_file_is_gzipped_json(world, alignment):
    """The name promises gzipped JSON; the job writes it so (checked end to end in tests/tasks)."""
    doc, job = alignment
    depth = gzip.compress(json.dumps([0, 1, 2]).encode())
    job.post(f"/api/alignments/{doc['id']}/files?name=depth.json.gz", data=depth)
    assert world["owner"].get(f"/api/alignments/{doc['id']}/depth.json.gz").mimetype == "application/gzip"
