"""create_sample runs through a real worker and the Job API: real reads become a ready sample with
their quality; bad reads fail the job with a message naming the problem and where, leaving no sample
and the upload intact."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest

from tests.common import upload, wait_finished
from tests.conftest import DATA, wait_for

SAMPLES = DATA / "samples"


def create_sample(user, db, name: str, files: list[tuple[str, bytes]], **fields) -> tuple[dict, dict, list[str]]:
    """Upload ``files``, create a sample from them and wait for its job: (sample, job, upload ids)."""
    upload_ids = [upload(user, file_name, content, "reads") for file_name, content in files]
    response = user.post("/api/samples", json={"name": name, "files": upload_ids, **fields})
    assert response.status_code == 201, response.json
    job = wait_finished(db, response.json["job"]["id"])
    return response.json, job, upload_ids


def independent_stats(*paths: Path) -> tuple[int, int, int, list[int]]:
    """(reads, shortest, longest, FastQC's integer %GC per file), counted without ringspot."""
    count, lengths, gcs = 0, [], []
    for path in paths:
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        bases = {letter: 0 for letter in "ACGT"}
        for sequence in lines[1::4]:
            lengths.append(len(sequence))
            for letter in bases:
                bases[letter] += sequence.upper().count(letter)
        count += len(lines) // 4
        gcs.append((bases["G"] + bases["C"]) * 100 // sum(bases.values()))
    return count, min(lengths), max(lengths), gcs


@pytest.fixture
def worker(live_server, stub_worker):
    return stub_worker


def test_paired_sample_becomes_ready_with_its_quality(admin, db, settings, worker):
    mates = [SAMPLES / "example-paired-50bp" / "reads_1.fq.gz", SAMPLES / "example-paired-50bp" / "reads_2.fq.gz"]
    created, job, upload_ids = create_sample(admin, db, "example", [(p.name, p.read_bytes()) for p in mates])
    assert job["state"] == "complete", job["error"]
    assert (job["step"], job["progress"]) == ("finalize", 1)

    sample = admin.get(f"/api/samples/{created['id']}").json
    assert sample["ready"] is True and sample["paired"] is True
    count, shortest, longest, gcs = independent_stats(*mates)
    assert (count, gcs) == (50_000, [46, 47])
    quality = sample["quality"]
    # Virtool sums the mates' counts and averages their %GC.
    assert quality["count"] == 50_000
    assert quality["gc"] == 46.5
    assert quality["length"] == [shortest, longest] == [50, 50]
    assert quality["encoding"] == "Sanger / Illumina 1.9"
    assert len(quality["bases"]) == len(quality["composition"]) == 50
    assert sum(quality["sequences"]) == 50_000 and len(quality["sequences"]) == 50
    assert all(len(row) == 6 for row in quality["bases"]) and all(len(row) == 4 for row in quality["composition"])

    # Gzipped uploads are stored as they came, under the standard names.
    assert [r["name"] for r in sample["reads"]] == ["reads_1.fq.gz", "reads_2.fq.gz"]
    for mate, read in zip(mates, sample["reads"], strict=False):
        stored = Path(settings.data_path) / "samples" / sample["id"] / read["name"]
        assert stored.read_bytes() == mate.read_bytes()
        assert admin.get(read["download_url"]).data == mate.read_bytes()
    # The uploads were consumed.
    for upload_id in upload_ids:
        assert admin.get(f"/api/uploads/{upload_id}").status_code == 404
        assert not (Path(settings.data_path) / "uploads" / upload_id).exists()


def test_nextseq_sample_with_variable_read_lengths(admin, db, worker):
    mates = [SAMPLES / "rprsv-paired-nextseq" / "paired_1.fq.gz", SAMPLES / "rprsv-paired-nextseq" / "paired_2.fq.gz"]
    created, job, _ = create_sample(admin, db, "rprsv", [(p.name, p.read_bytes()) for p in mates])
    assert job["state"] == "complete", job["error"]
    quality = admin.get(f"/api/samples/{created['id']}").json["quality"]
    count, shortest, longest, gcs = independent_stats(*mates)
    assert quality["count"] == count == 20_000
    assert quality["length"] == [shortest, longest] == [36, 151]
    assert quality["gc"] == sum(gcs) / 2 == 45.0
    assert len(quality["bases"]) == 151  # FastQC's ranges (10-14, ...) expanded per position


def test_single_end_plain_fastq_is_gzipped(admin, db, settings, worker):
    path = SAMPLES / "glrav1-grapevine-125reads.fq.gz"
    plain = gzip.decompress(path.read_bytes())
    created, job, _ = create_sample(admin, db, "glrav1", [("grapevine.fastq", plain)], library_type="srna")
    assert job["state"] == "complete", job["error"]
    sample = admin.get(f"/api/samples/{created['id']}").json
    assert sample["paired"] is False and sample["library_type"] == "srna"
    assert (sample["quality"]["count"], sample["quality"]["length"], sample["quality"]["gc"]) == (125, [101, 101], 46.0)
    assert [r["name"] for r in sample["reads"]] == ["reads_1.fq.gz"]
    stored = Path(settings.data_path) / "samples" / sample["id"] / "reads_1.fq.gz"
    assert gzip.decompress(stored.read_bytes()) == plain
    assert admin.get(f"/api/samples/{sample['id']}/reads/reads_2.fq.gz").status_code == 404


def _records(path: Path, count: int) -> bytes:
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    return b"".join(lines[: 4 * count])


def _bad_length() -> list[tuple[str, bytes]]:
    lines = _records(SAMPLES / "glrav1-grapevine-125reads.fq.gz", 5).splitlines(keepends=True)
    lines[4 * 2 + 3] = lines[4 * 2 + 3][:-6] + b"\n"  # record 3: quality 5 characters short
    return [("short_quality.fq", b"".join(lines))]


def _pair_mismatch() -> list[tuple[str, bytes]]:
    folder = SAMPLES / "example-paired-50bp"
    return [
        ("mate_1.fq", _records(folder / "reads_1.fq.gz", 100)),
        ("mate_2.fq", _records(folder / "reads_2.fq.gz", 99)),
    ]


def _two_lanes() -> list[tuple[str, bytes]]:
    return [
        ("lane_1.fq", _records(SAMPLES / "example-paired-50bp" / "reads_1.fq.gz", 100)),
        ("lane_2.fq", _records(SAMPLES / "rprsv-paired-nextseq" / "paired_2.fq.gz", 100)),
    ]


BAD_INPUTS = {
    "truncated gzip": (
        lambda: [("cut.fq.gz", (SAMPLES / "example-paired-50bp" / "reads_1.fq.gz").read_bytes()[:300_000])],
        ["cut.fq.gz", "gzip data is truncated or corrupt", "record "],
    ),
    "fasta as reads": (
        lambda: [("host.fa", (DATA / "subtraction" / "host.fa").read_bytes())],
        ["host.fa", "line 1", "FASTA, not FASTQ"],
    ),
    "sequence and quality lengths differ": (
        _bad_length,
        ["short_quality.fq", "record 3 (line 10)", "sequence has 101 letters but quality has 96"],
    ),
    "mate counts differ": (
        _pair_mismatch,
        ["mate files differ in record count", "mate_2.fq ran out first, at record 100"],
    ),
    "empty file": (
        lambda: [("empty.fq.gz", gzip.compress(b""))],
        ["empty.fq.gz", "file is empty"],
    ),
    "two lanes as mates": (
        _two_lanes,
        [
            "lane_1.fq and lane_2.fq are not mates of one pair",
            "'GWNJ-0965:628:GW2007103249th:7:1101:3102:1309' in lane_1.fq",
            "'NS500598:7:H37Y5BGXX:1:11101:16849:1079;2' in lane_2.fq",
        ],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_reads_fail_the_job_and_keep_the_uploads(admin, db, settings, worker, case):
    make_files, expected = BAD_INPUTS[case]
    files = make_files()
    created, job, upload_ids = create_sample(admin, db, f"bad {case}", files)

    assert job["state"] == "error"
    for fragment in expected:
        assert fragment in job["error"], job["error"]
    assert str(settings.data_path) not in job["error"]  # the user's file names, not worker paths

    # The clean-up follows the error report (core.jobs.finish_job) within moments.
    wait_for(lambda: admin.get(f"/api/samples/{created['id']}").status_code == 404, message="sample removal")
    assert db.samples.count_documents({"ready": True}) == 0
    assert not (Path(settings.data_path) / "samples" / created["id"]).exists()
    for upload_id, (_, content) in zip(upload_ids, files, strict=False):
        doc = admin.get("/api/uploads?type=reads").json["documents"]
        assert any(d["id"] == upload_id and d["reserved"] is False for d in doc)
        assert admin.get(f"/api/uploads/{upload_id}").data == content
    # The uploads can be used again straight away.
    assert admin.post("/api/samples", json={"name": f"retry {case}", "files": upload_ids}).status_code == 201


def test_cancelling_a_running_create_sample_leaves_no_sample_and_keeps_the_uploads(admin, db, settings, worker):
    # 1.5 M real reads (150 gzip members of 10,000): long enough to be cancelled in the middle of
    # its quality pass, which checks for a cancel after every block.
    content = (DATA / "samples" / "rprsv-paired-nextseq" / "paired_1.fq.gz").read_bytes() * 150
    upload_id = upload(admin, "big_1.fq.gz", content, "reads")
    response = admin.post("/api/samples", json={"name": "to cancel", "files": [upload_id]})
    job_id, sample_id = response.json["job"]["id"], response.json["id"]
    wait_for(
        lambda: db.processes.find_one({"_id": job_id})["step"] in ("assess_reads", "compress_reads"),
        timeout=60,
        interval=0.05,
        message="the quality pass",
    )
    started = time.monotonic()
    assert admin.delete(f"/api/processes/{job_id}").status_code == 202
    job = wait_finished(db, job_id)
    assert job["state"] == "cancelled"
    assert time.monotonic() - started < 10
    wait_for(lambda: admin.get(f"/api/samples/{sample_id}").status_code == 404, message="sample removal")
    assert not (Path(settings.data_path) / "samples" / sample_id).exists()
    listed = admin.get("/api/uploads?type=reads").json["documents"]
    assert any(d["id"] == upload_id and d["reserved"] is False for d in listed)


def test_gzip_bomb_of_non_reads_fails_fast_without_filling_memory(admin, db, settings, worker):
    bomb = gzip.compress(b"\0" * (256 << 20), compresslevel=9)  # 256 MiB that packs to ~250 KiB
    assert len(bomb) < 1 << 20
    started = time.monotonic()
    created, job, upload_ids = create_sample(admin, db, "bomb", [("bomb_1.fq.gz", bomb)])
    assert job["state"] == "error"
    assert "bomb_1.fq.gz" in job["error"]
    assert time.monotonic() - started < 30
    wait_for(lambda: admin.get(f"/api/samples/{created['id']}").status_code == 404, message="sample removal")


def test_small_rna_sample_records_its_adapter_and_what_trimming_leaves(admin, db, worker):
    lane = _records(SAMPLES / "ctv-srna-qiaseq-lane1" / "reads.fastq.gz", 20_000)
    created, job, _ = create_sample(admin, db, "citrus", [("lane1.fq", lane)], library_type="srna")
    assert job["state"] == "complete", job["error"]
    quality = admin.get(f"/api/samples/{created['id']}").json["quality"]
    trimming = quality["trimming"]
    assert (trimming["adapter"], trimming["kit"]) == ("AACTGTAGGCACCATCAAT", "QIAseq miRNA")
    assert trimming["reads_in"] == quality["count"] == 20_000
    assert trimming["reads_out"] == 20_000 - trimming["too_short"] == sum(n for _, n in trimming["lengths"])
    # Counted without ringspot: reads holding the whole adapter all had it cut.
    sequences = lane.decode().splitlines()[1::4]
    assert trimming["reads_with_adapter"] >= sum("AACTGTAGGCACCATCAAT" in s for s in sequences) > 15_000
    assert min(length for length, _ in trimming["lengths"]) == 18
    assert quality["warnings"] == []


def test_small_rna_sample_of_long_reads_without_adapter_is_warned(admin, db, worker):
    reads = _records(SAMPLES / "rprsv-paired-nextseq" / "paired_1.fq.gz", 2_000)
    created, job, _ = create_sample(admin, db, "not small", [("long.fq", reads)], library_type="srna")
    assert job["state"] == "complete", job["error"]
    quality = admin.get(f"/api/samples/{created['id']}").json["quality"]
    assert quality["trimming"]["adapter"] is None and quality["trimming"]["kit"] is None
    assert len(quality["warnings"]) == 1 and "longer than 50 nt and no small-RNA adapter" in quality["warnings"][0]


def test_an_adapter_given_on_the_sample_is_the_one_cut(admin, db, worker):
    lane = _records(SAMPLES / "ctv-srna-qiaseq-lane1" / "reads.fastq.gz", 2_000)
    created, job, _ = create_sample(
        admin, db, "given", [("lane1.fq", lane)], library_type="srna", adapter="TGGAATTCTCGGGTGCCAAGG"
    )
    assert job["state"] == "complete", job["error"]
    trimming = admin.get(f"/api/samples/{created['id']}").json["quality"]["trimming"]
    # The kit's adapter is not the lane's: almost nothing is cut.
    assert (trimming["adapter"], trimming["kit"]) == ("TGGAATTCTCGGGTGCCAAGG", "given on the sample")
    assert trimming["reads_with_adapter"] < 200
