"""The diagnosis on every real sample of ``../shared/data/samples``, the whole way a lab goes: the
reads uploaded and made a sample by ``create_sample`` (mates named apart, small RNAs trimmed),
then ``pathoscope_bowtie`` on the plant-virus reference (plus the measles genome it lacks) by a
real worker through the Job API, read back from ``GET /api/analyses/:id``.

The rule under test (data README): the virus each sample is known to hold is the first row,
``detected`` wherever its evidence suffices (the 125-read GLRaV-1 smoke sample, with 2 virus
reads, stays ``possible``), and nothing else is ``detected``. The figures behind each call are
checked against a recount from plain bowtie2 where the call depends on them.
"""

from __future__ import annotations

import gzip
import subprocess

import pytest

from ringspot.bio.diagnosis import DETECTED, NOT_DETECTED, POSSIBLE
from ringspot.tasks import analyses, samples  # noqa: F401  (bind the actors to the stub broker)

from ..analyses_data import insert_index, insert_reference, load_otus
from ..common import upload, wait_finished
from ..diagnosis_data import MEASLES_OTU_ID, add_missing_virus, sample_named

#: TruSeq's adapter (its reverse complement heads the PhRMV RefSeq, NC_055577.1, by mistake).
TRUSEQ_ADAPTER = "AGATCGGAAGAGCACACGTCTGAACTCCAGTCAC"


@pytest.fixture
def world(db, settings, admin, plant, live_server, stub_worker):
    reference = insert_reference(db)
    insert_index(db, settings.data_path, reference["_id"], plant["otus"], plant["files"])
    return {"reference": reference}


def diagnose(admin, db, world, name: str) -> dict:
    """Create the sample from its real files, run Pathoscope, return the analysis as users read it."""
    sample = sample_named(name)
    upload_ids = [upload(admin, path.name, path, "reads") for path in sample.reads]
    created = admin.post("/api/samples", json={"name": name, "files": upload_ids, "library_type": sample.library_type})
    assert created.status_code == 201, created.json
    job = wait_finished(db, created.json["job"]["id"], timeout=120)
    assert job["state"] == "complete", job["error"]
    started = admin.post(
        f"/api/samples/{created.json['id']}/analyses",
        json={"workflow": "pathoscope_bowtie", "ref_id": world["reference"]["_id"], "subtractions": []},
    )
    assert started.status_code == 201, started.json
    job = wait_finished(db, started.json["job"]["id"], timeout=240)
    assert job["state"] == "complete", job["error"]
    analysis = admin.get(f"/api/analyses/{started.json['id']}").json
    assert analysis["algorithm"] == analysis["workflow"] == "pathoscope_bowtie"
    return analysis


def detected_ids(analysis: dict) -> list[str]:
    return [row["id"] for row in analysis["diagnosis"] if row["call"] == DETECTED]


def test_raspberry_ringspot_virus_is_detected_alone(admin, db, world):
    sample = sample_named("rprsv-paired-nextseq")
    analysis = diagnose(admin, db, world, sample.name)
    first = analysis["diagnosis"][0]
    assert first["id"] == sample.otu_id and first["call"] == DETECTED
    assert detected_ids(analysis) == [sample.otu_id]
    # Both RNA segments of one isolate, covered end to end; every mate counts (20,000 reads).
    assert first["segments"] == {"covered": 2, "total": 2} and first["breadth"] > 0.99
    assert 9_000 < first["reads"] <= 20_000
    assert first["mean_depth"] > first["median_depth"] / 2 > 10
    assert all(row["reads"] > 0 for row in analysis["diagnosis"])  # OTUs left with none are not listed


def test_measles_is_detected_with_every_mate_counted(admin, db, world):
    analysis = diagnose(admin, db, world, "mev-d8-srr7517490")
    first = analysis["diagnosis"][0]
    assert first["id"] == MEASLES_OTU_ID and first["call"] == DETECTED
    assert detected_ids(analysis) == [MEASLES_OTU_ID]
    assert first["breadth"] == 1.0 and first["isolate"]["source_name"] == "D8"
    # 40,540 reads (20,270 pairs named alike in both files); end to end, 34,106 align (data README).
    assert 34_106 <= first["reads"] <= 40_540
    assert 250 < first["mean_depth"] < 450


def test_glrav1_smoke_sample_with_two_virus_reads_stays_possible(admin, db, world):
    sample = sample_named("glrav1-grapevine-125reads")
    analysis = diagnose(admin, db, world, sample.name)
    first = analysis["diagnosis"][0]
    assert (first["id"], first["call"], first["reads"]) == (sample.otu_id, POSSIBLE, 2)
    assert "reads 2 < 50" in first["reasons"]
    assert detected_ids(analysis) == []


def test_physalis_reads_are_adapter_on_a_contaminated_reference_and_not_detected(admin, db, world):
    """The README's "4.8 % of reads align to PhRMV" are adapter dimers: the RefSeq of PhRMV
    begins with the reverse complement of the TruSeq adapter, and every read lands there."""
    sample = sample_named("example-paired-50bp")
    analysis = diagnose(admin, db, world, sample.name)
    first = analysis["diagnosis"][0]
    assert first["id"] == sample.otu_id and first["call"] == NOT_DETECTED
    assert first["reads"] > 2_000 and first["breadth"] < 0.02
    assert any(reason.startswith("evenness") and "<" in reason for reason in first["reasons"])
    assert detected_ids(analysis) == []
    # Independently: the covered stretch is the adapter, and the reads carry it.
    otus = add_missing_virus(load_otus())
    genome = next(
        s["sequence"]
        for otu in otus
        if otu["_id"] == sample.otu_id
        for isolate in otu["isolates"]
        for s in isolate["sequences"]
    )
    head = genome[:50].translate(str.maketrans("ACGT", "TGCA"))[::-1]
    assert TRUSEQ_ADAPTER[1:] in head
    with gzip.open(sample.reads[1], "rt") as handle:  # mate 2 reads through short inserts into the adapter
        sequences = handle.read().splitlines()[1::4]
    assert sum(TRUSEQ_ADAPTER[:20] in read for read in sequences) > 20_000


def test_citrus_tristeza_virus_is_detected_in_the_small_rna_sample(admin, db, world):
    sample = sample_named("ctv-srna-qiaseq-lane1")
    analysis = diagnose(admin, db, world, sample.name)
    first = analysis["diagnosis"][0]
    assert first["id"] == sample.otu_id and first["call"] == DETECTED
    assert detected_ids(analysis) == [sample.otu_id]
    by_name = {row["name"]: row for row in analysis["diagnosis"]}
    # The host-like 70-nt stretch of TNRSV must not be called (data README).
    tnrsv = by_name.get("Tomato necrotic ringspot virus")
    assert tnrsv is None or tnrsv["call"] == NOT_DETECTED
    # CVEV: a possible co-infection the README leaves unconfirmed.
    cvev = by_name.get("Citrus vein enation virus")
    assert cvev is None or cvev["call"] != DETECTED
    assert first["reads"] > 300


def test_plain_bowtie2_recounts_the_covered_breadth(tmp_path, plant):
    """The breadth of a diagnosis row is what ``samtools depth`` counts on the same alignments."""
    from ringspot.bio import diagnosis
    from ringspot.bio.pathoscope import read_sam, run_pathoscope
    from ringspot.bio.reference import iter_all_isolate_fasta, write_fasta

    sample = sample_named("rprsv-paired-nextseq")
    otu = next(o for o in plant["otus"] if o["_id"] == sample.otu_id)
    with open(tmp_path / "rprsv.fa", "w") as handle:
        write_fasta(iter_all_isolate_fasta([otu], {otu["_id"]}), handle)
    subprocess.run(
        ["bowtie2-build", str(tmp_path / "rprsv.fa"), str(tmp_path / "rprsv")], check=True, capture_output=True
    )
    sam = tmp_path / "rprsv.sam"
    subprocess.run(
        ["bowtie2", "-p", "2", "--local", "--score-min", "L,20,1.0", "-N", "0", "-L", "15", "-k", "100"]
        + ["--no-unal", "-x", str(tmp_path / "rprsv"), "-U", ",".join(map(str, sample.reads)), "-S", str(sam)],
        check=True,
        capture_output=True,
    )
    lengths = {s["_id"]: len(s["sequence"]) for i in otu["isolates"] for s in i["sequences"]}
    sequence_otu_map = dict.fromkeys(lengths, otu["_id"])
    with open(sam) as handle:
        results = run_pathoscope(
            read_sam(handle),
            lengths,
            sequence_otu_map,
            {otu["_id"]: 0},
            tmp_path / "out",
            otus=diagnosis.catalog([otu]),
        )
    (row,) = results["diagnosis"]
    isolate = next(i for i in otu["isolates"] if i["id"] == row["isolate"]["id"])
    ids = [s["_id"] for s in isolate["sequences"]]
    subprocess.run(["samtools", "sort", "-o", str(tmp_path / "rprsv.bam"), str(sam)], check=True, capture_output=True)
    depth = subprocess.run(
        ["samtools", "depth", "-a", "-G", "0", "-Q", "0", str(tmp_path / "rprsv.bam")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    covered = sum(1 for line in depth if line.split("\t")[0] in ids and int(line.split("\t")[2]) > 0)
    total = sum(lengths[i] for i in ids)
    assert row["breadth"] == pytest.approx(covered / total, abs=0.005)
