"""create_subtraction runs through a real worker and the Job API: a host FASTA becomes a ready
subtraction whose count and nucleotide composition are right and whose Bowtie2 index works."""

from __future__ import annotations

import gzip
import subprocess
import time
from pathlib import Path

import pytest

from ringspot.bio import reference as reference_format
from tests.analyses_data import PLANT_REFERENCE, load_otus
from tests.common import upload, wait_finished
from tests.conftest import DATA, wait_for

HOST = DATA / "subtraction" / "host.fa"
BOWTIE2_FILES = [f"subtraction.{s}.bt2" for s in ("1", "2", "3", "4", "rev.1", "rev.2")]


@pytest.fixture
def worker(live_server, stub_worker):
    return stub_worker


def create_subtraction(user, db, name: str, file_name: str, content: bytes) -> tuple[dict, dict, str]:
    upload_id = upload(user, file_name, content, "subtraction")
    response = user.post("/api/subtractions", json={"name": name, "nickname": "host", "upload_id": upload_id})
    assert response.status_code == 201, response.json
    return response.json, wait_finished(db, response.json["job"]["id"]), upload_id


def composition(text: str) -> tuple[int, dict[str, float]]:
    """Count and a/t/g/c/n shares of a FASTA, computed here without ringspot."""
    lines = text.splitlines()
    counts = {letter: 0 for letter in "atgcn"}
    for line in lines:
        if not line.startswith(">"):
            for letter in counts:
                counts[letter] += line.lower().count(letter)
    total = sum(counts.values())
    return sum(line.startswith(">") for line in lines), {k: round(v / total, 3) for k, v in counts.items()}


@pytest.mark.parametrize("file_name, packed", [("host.fa", False), ("host.fa.gz", True)])
def test_host_fasta_becomes_a_usable_bowtie2_index(admin, db, settings, worker, tmp_path, file_name, packed):
    content = HOST.read_bytes()
    created, job, upload_id = create_subtraction(
        admin, db, "Host", file_name, gzip.compress(content) if packed else content
    )
    assert job["state"] == "complete", job["error"]

    subtraction = admin.get(f"/api/subtractions/{created['id']}").json
    count, gc = composition(content.decode())
    assert subtraction["ready"] is True
    assert subtraction["count"] == count == 6
    assert subtraction["gc"] == gc
    assert subtraction["file"] == {"id": upload_id, "name": file_name}
    assert sorted(f["name"] for f in subtraction["files"]) == sorted(["subtraction.fa.gz", *BOWTIE2_FILES])
    assert admin.get(f"/api/uploads/{upload_id}").status_code == 404  # consumed

    fasta = admin.get(f"/api/subtractions/{created['id']}/files/subtraction.fa.gz")
    assert gzip.decompress(fasta.data) == content
    for name in BOWTIE2_FILES:
        (tmp_path / name).write_bytes(admin.get(f"/api/subtractions/{created['id']}/files/{name}").data)
    # A 60 bp stretch of host_3 maps back to host_3 with the downloaded index.
    read = content.decode().splitlines()[5][20:80]
    sam = subprocess.run(
        ["bowtie2", "--no-hd", "-x", str(tmp_path / "subtraction"), "-c", read],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = sam.split("\t")
    assert (fields[2], fields[3], fields[5]) == ("host_3", "21", "60M")


def test_fastq_given_as_host_fails_and_keeps_the_upload(admin, db, settings, worker):
    reads = gzip.decompress((DATA / "samples" / "glrav1-grapevine-125reads.fq.gz").read_bytes())
    created, job, upload_id = create_subtraction(admin, db, "Not a host", "reads.fq", reads)
    assert job["state"] == "error"
    assert job["error"] == "reads.fq: line 1 starts with '@': this looks like FASTQ, not FASTA"
    wait_for(lambda: admin.get(f"/api/subtractions/{created['id']}").status_code == 404, message="removal")
    assert not (Path(settings.data_path) / "subtractions" / created["id"]).exists()
    assert not db.uploads.find_one({"_id": upload_id})["reserved"]
    assert admin.get(f"/api/uploads/{upload_id}").data == reads


def test_cancelling_a_running_build_kills_bowtie2_build_and_keeps_the_upload(admin, db, settings, worker, tmp_path):
    # Every default-isolate sequence of the plant-virus reference as a "host": bowtie2-build takes seconds.
    otus = load_otus(PLANT_REFERENCE)
    with open(tmp_path / "large.fa", "w") as handle:
        reference_format.write_fasta(reference_format.iter_default_isolate_fasta(otus), handle)
    response = admin.post(
        "/api/uploads?name=large.fa&type=subtraction",
        data=(tmp_path / "large.fa").read_bytes(),
        content_type="application/octet-stream",
    )
    upload_id = response.json["id"]
    created = admin.post("/api/subtractions", json={"name": "Large", "nickname": "", "upload_id": upload_id}).json
    job_id = created["job"]["id"]
    building = lambda: subprocess.run(["pgrep", "-f", f"bowtie2-build.*{job_id}"], capture_output=True).returncode == 0  # noqa: E731
    wait_for(building, timeout=60, interval=0.05, message="bowtie2-build to start")

    started = time.monotonic()
    assert admin.delete(f"/api/processes/{job_id}").status_code == 202
    wait_for(lambda: not building(), timeout=5, interval=0.05, message="bowtie2-build to die")
    assert time.monotonic() - started < 5
    wait_for(lambda: db.processes.find_one({"_id": job_id})["state"] == "cancelled", timeout=10, message="cancelled")
    wait_for(lambda: admin.get(f"/api/subtractions/{created['id']}").status_code == 404, message="removal")
    assert not (Path(settings.data_path) / "subtractions" / created["id"]).exists()
    assert not db.uploads.find_one({"_id": upload_id})["reserved"]  # free for another try
