"""The alignment job end to end: an HTTP request starts it, a real worker runs bowtie2, samtools and
matplotlib through the Job API only, and every figure is recomputed here from the BAM it stored
with samtools (``view -c -F 4``, ``depth -a``) and from bowtie2 run by hand. The RpRSV sample
(isolate 13C209) against RNA1 of the reference's default isolate (NC_005266)."""

from __future__ import annotations

import gzip
import io
import json
import logging
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from ringspot.bio.alignments import alignment_flags
from ringspot.tasks import alignments as alignment_tasks  # noqa: F401  (binds the actor to the stub broker)

from ..analyses_data import RPRSV_READS, insert_otus, insert_reference, insert_sample, load_otus, repeated_reads
from ..conftest import wait_for

RPRSV = "9fe2f60d"
NC_005266 = "o6g9f7oq"
FINISHED = ("complete", "error", "cancelled")


@pytest.fixture(scope="module")
def rprsv_otu():
    return next(otu for otu in load_otus() if otu["_id"] == RPRSV)


@pytest.fixture
def world(db, settings, admin, rprsv_otu, live_server, stub_worker):
    reference = insert_reference(db)
    insert_otus(db, reference["_id"], [rprsv_otu])
    return {"reference": reference, "sample": insert_sample(db, settings.data_path, RPRSV_READS)}


def align(admin, db, sample_id: str, timeout: float = 90, **body) -> tuple[dict, dict]:
    """Start an alignment and wait for its job to end: (job document, alignment as the API shows it)."""
    response = admin.post(f"/api/samples/{sample_id}/alignments", json=body)
    assert response.status_code == 201, response.json
    job_id = response.json["job"]["$ref"].rsplit("/", 1)[1]

    def finished():
        job = db.processes.find_one({"_id": job_id})
        return job if job["state"] in FINISHED else None

    job = wait_for(finished, timeout=timeout, message="alignment job")
    # A failed job's clean-up follows its last status within the same Job API call.
    alignment = wait_for(
        lambda: (doc := admin.get(f"/api/alignments/{response.json['id']}").json)["complete"] and doc,
        timeout=10,
        message="alignment complete",
    )
    return job, alignment


def samtools(*args) -> str:
    return subprocess.run(["samtools", *map(str, args)], check=True, capture_output=True, text=True).stdout


def download(admin, alignment: dict, name: str, folder: Path) -> Path:
    response = admin.get(f"/api/alignments/{alignment['id']}/{name}")
    assert response.status_code == 200, name
    path = folder / name
    path.write_bytes(response.data)
    return path


def test_rprsv_reads_align_to_rna1_with_figures_recounted_from_the_bam(admin, db, settings, world, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ringspot.tasks.alignments")
    job, alignment = align(admin, db, world["sample"]["_id"], accession="NC_005266", ref_id=world["reference"]["_id"])
    assert job["state"] == "complete", job["error"]
    assert (job["step"], job["progress"]) == ("upload_results", 1)
    assert (alignment["complete"], alignment["success"], alignment["error_msg"]) == (True, True, None)
    assert alignment["reference"]["sequence_id"] == NC_005266
    stats = alignment["statistics"]

    bam = download(admin, alignment, "alignment.bam", tmp_path)
    download(admin, alignment, "alignment.bam.bai", tmp_path)
    # Sorted, indexed (idxstats reads the .bai), one reference named by its accession, 7,935 bases.
    assert "SO:coordinate" in samtools("view", "-H", bam)
    name, length, mapped, _ = samtools("idxstats", bam).splitlines()[0].split("\t")
    assert (name, int(length)) == ("NC_005266", 7935)
    count = int(samtools("view", "-c", "-F", "4", bam))
    assert stats["mapped_reads"] == count == int(mapped)

    # The same reads map when bowtie2 is run by hand on both mate files as unpaired reads.
    fasta = tmp_path / "rna1.fa"
    fasta.write_bytes(admin.get(f"/api/alignments/{alignment['id']}/reference.fa").data)
    subprocess.run(["bowtie2-build", "-q", str(fasta), str(tmp_path / "rna1")], check=True)
    sam = subprocess.run(
        [
            "bowtie2",
            *alignment_flags("normal"),
            "--no-unal",
            "--no-hd",
            "-p",
            "2",
            "-x",
            str(tmp_path / "rna1"),
            "-U",
            ",".join(map(str, RPRSV_READS)),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    by_hand = {line.split("\t")[0] for line in sam.splitlines() if not int(line.split("\t")[1]) & 4}
    assert len(by_hand) == count
    assert 3000 < count < 5000  # about a fifth of the 20,000 reads: 13C209 is not the default isolate

    # Breadth and mean depth from samtools depth -a; the stored depths are the same numbers.
    depth = np.array([int(line.split("\t")[2]) for line in samtools("depth", "-a", bam).splitlines()])
    assert len(depth) == stats["length"] == 7935
    assert stats["breadth"] == pytest.approx(np.count_nonzero(depth) / len(depth), abs=1e-6)
    assert stats["mean_depth"] == pytest.approx(depth.mean(), abs=1e-4)
    assert 0.85 < stats["breadth"] < 1 and 40 < stats["mean_depth"] < 90
    stored = json.loads(gzip.decompress(download(admin, alignment, "depth.json.gz", tmp_path).read_bytes()))
    assert stored == depth.tolist()
    # Identity from the NM tags against the alignment columns, recounted with samtools view.
    edits = columns = 0
    for line in samtools("view", "-F", "0x904", bam).splitlines():
        fields = line.split("\t")
        edits += next(int(f[5:]) for f in fields[11:] if f.startswith("NM:i:"))
        columns += sum(int(n) for n, op in _cigar(fields[5]) if op in "MIDX=")
    assert stats["identity"] == pytest.approx(100 * (1 - edits / columns), abs=1e-4)
    assert 85 < stats["identity"] < 95  # RNA1 of 13C209 against NC_005266

    # The plots: a 1000 x 300 PNG that is not blank, an SVG titled with the figures.
    png = admin.get(f"/api/alignments/{alignment['id']}/coverage.png")
    assert png.mimetype == "image/png"
    pixels = mpimg.imread(io.BytesIO(png.data), format="png")
    assert pixels.shape[:2] == (300, 1000)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)) > 1
    svg = admin.get(f"/api/alignments/{alignment['id']}/coverage.svg").data.decode()
    title = f"NC_005266 · breadth {stats['breadth']:.1%} · mean depth {stats['mean_depth']:.1f}×"
    assert title in svg
    assert not any(Path(settings.data_path, "work").iterdir())

    # A second sample against the same genome reuses the worker's Bowtie2 index of it.
    second = insert_sample(db, settings.data_path, RPRSV_READS[1:])
    job, again = align(admin, db, second["_id"], sequence_id=NC_005266)
    assert job["state"] == "complete", job["error"]
    assert 0 < again["statistics"]["mapped_reads"] < count
    events = [r.getMessage().split()[0] for r in caplog.records if r.name == "ringspot.tasks.alignments"]
    assert events.count("alignment_index_built") == 1 and events.count("alignment_index_reused") == 1
    assert len(list(Path(settings.data_path, "cache", "alignment-refs").iterdir())) == 1


def _cigar(cigar: str):
    number = ""
    for char in cigar:
        if char.isdigit():
            number += char
        else:
            yield int(number), char
            number = ""


def test_reads_that_map_nowhere_give_an_empty_but_successful_alignment(admin, db, settings, world, tmp_path):
    reads = tmp_path / "elsewhere.fq.gz"
    records = [f"@r{i}\n{'ACGT' * 25}\n+\n{'I' * 100}\n" for i in range(50)]
    reads.write_bytes(gzip.compress("".join(records).encode()))
    sample = insert_sample(db, settings.data_path, [reads])
    job, alignment = align(admin, db, sample["_id"], sequence_id=NC_005266)
    assert job["state"] == "complete", job["error"]
    assert alignment["success"] and alignment["statistics"] == {
        "mapped_reads": 0,
        "length": 7935,
        "breadth": 0.0,
        "mean_depth": 0.0,
        "identity": None,
    }
    pixels = mpimg.imread(io.BytesIO(admin.get(f"/api/alignments/{alignment['id']}/coverage.png").data), format="png")
    assert len(np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)) > 1  # axes and title, nothing plotted


def test_broken_reads_fail_the_alignment_visibly(admin, db, settings, world, tmp_path):
    broken = tmp_path / "broken.fq.gz"
    broken.write_bytes(gzip.compress(b"@r1\nACGT\n+\nII\n"))  # quality shorter than the sequence
    sample = insert_sample(db, settings.data_path, [broken])
    job, alignment = align(admin, db, sample["_id"], sequence_id=NC_005266)
    assert job["state"] == "error" and "bowtie2" in job["error"]
    assert (alignment["complete"], alignment["success"]) == (True, False)
    assert alignment["error_msg"].startswith("The alignment job failed: bowtie2")
    assert alignment["statistics"] is None and alignment["files"] == []
    assert not Path(settings.data_path, "alignments", alignment["id"]).exists()
    assert not any(Path(settings.data_path, "work").iterdir())


def test_cancelling_a_running_alignment_kills_bowtie2_and_says_so(admin, db, settings, world, make_user, tmp_path):
    # Enough reads that bowtie2 is still running when the cancel arrives.
    sample = insert_sample(db, settings.data_path, repeated_reads(tmp_path, 40, RPRSV_READS[:1]))
    response = admin.post(f"/api/samples/{sample['_id']}/alignments", json={"sequence_id": NC_005266})
    job_id = response.json["job"]["$ref"].rsplit("/", 1)[1]
    wait_for(lambda: db.processes.find_one({"_id": job_id, "step": "map_reads"}), timeout=60, message="mapping")
    canceller = make_user("canceller", permissions=["cancel_job"])
    cancelled_at = time.monotonic()
    assert canceller.put(f"/api/jobs/{job_id}/cancel").status_code == 200
    wait_for(
        lambda: subprocess.run(["pgrep", "-f", f"work/{job_id}/"], capture_output=True).returncode == 1,
        timeout=5,
        interval=0.1,
        message="bowtie2 to die",
    )
    assert time.monotonic() - cancelled_at < 5
    job = wait_for(
        lambda: db.processes.find_one({"_id": job_id, "state": {"$in": list(FINISHED)}}),
        timeout=30,
        message="cancelled",
    )
    assert job["state"] == "cancelled"
    alignment = wait_for(
        lambda: (doc := admin.get(f"/api/alignments/{response.json['id']}").json)["complete"] and doc,
        timeout=10,
        message="alignment marked",
    )
    assert (alignment["success"], alignment["error_msg"]) == (False, "The alignment job was cancelled")
    assert subprocess.run(["pgrep", "-f", f"work/{job_id}/"], capture_output=True).returncode == 1
