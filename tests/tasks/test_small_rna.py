"""Small-RNA samples end to end on the real QIAseq citrus lane: Pathoscope cuts the adapter and maps the
siRNAs end to end, so Citrus tristeza virus gets the reads a plain cutadapt + bowtie2 run gives it; the
same reads declared a shotgun library, adapter and all, give it next to nothing."""

from __future__ import annotations

import gzip
import subprocess

import pytest

from ringspot.bio.alignments import pathoscope_flags
from ringspot.bio.reference import iter_all_isolate_fasta, write_fasta
from ringspot.tasks import analyses as analysis_tasks  # noqa: F401  (binds the actors to the stub broker)

from ..analyses_data import build_index_files, insert_index, insert_otus, insert_reference, insert_sample, load_otus
from ..conftest import DATA
from .test_pathoscope import run_analysis

LANE = DATA / "samples" / "ctv-srna-qiaseq-lane1" / "reads.fastq.gz"
READS = 40_000
CTV = "7cee0a88"
#: CTV, Citrus vein enation virus, Tomato necrotic ringspot virus (its 3' end draws host-like
#: siRNAs), and two citrus viroids.
OTUS = {CTV, "25ae5d0d", "50ae2bc3", "be143fe9", "k1kd54vk"}
QIASEQ = "AACTGTAGGCACCATCAAT"


@pytest.fixture(scope="module")
def citrus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("citrus")
    otus = [otu for otu in load_otus() if otu["_id"] in OTUS]
    reads = folder / "lane.fq.gz"
    with gzip.open(LANE, "rt") as source, gzip.open(reads, "wt", compresslevel=1) as target:
        target.write("".join(source.readline() for _ in range(4 * READS)))
    return {"otus": otus, "files": build_index_files(otus, folder / "index"), "reads": reads, "folder": folder}


@pytest.fixture(scope="module")
def plain_ctv_reads(citrus) -> int:
    """cutadapt, then bowtie2 end to end against every isolate: reads whose best hit is a CTV isolate."""
    folder = citrus["folder"]
    trimmed = folder / "trimmed.fq"
    subprocess.run(
        ["cutadapt", "-a", QIASEQ, "-m", "18", "-o", trimmed, citrus["reads"]], check=True, capture_output=True
    )
    records = list(iter_all_isolate_fasta(citrus["otus"], OTUS))
    with open(folder / "isolates.fa", "w") as handle:
        write_fasta(records, handle)
    subprocess.run(["bowtie2-build", "-q", folder / "isolates.fa", folder / "isolates"], check=True)
    ctv_sequences = {
        s["_id"] for otu in citrus["otus"] if otu["_id"] == CTV for i in otu["isolates"] for s in i["sequences"]
    }
    sam = subprocess.run(
        ["bowtie2", "-p", "2", *pathoscope_flags("srna"), "--no-unal", "--no-hd", "-x", folder / "isolates"]
        + ["-U", trimmed],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sum(line.split("\t")[2] in ctv_sequences for line in sam.splitlines())


@pytest.fixture
def world(db, settings, admin, citrus, live_server, stub_worker):
    reference = insert_reference(db, "Citrus")
    insert_otus(db, reference["_id"], citrus["otus"])
    insert_index(db, settings.data_path, reference["_id"], citrus["otus"], citrus["files"])
    return {"reference": reference}


def otu_reads(results: dict, otus: list[dict], otu_id: str) -> float:
    sequences = {s["_id"] for otu in otus if otu["_id"] == otu_id for i in otu["isolates"] for s in i["sequences"]}
    return sum(hit["final"]["reads"] for hit in results["hits"] if hit["id"] in sequences)


def test_small_rna_reads_are_trimmed_and_mapped_whole(admin, db, settings, world, citrus, plain_ctv_reads):
    ref_id = world["reference"]["_id"]
    small = insert_sample(db, settings.data_path, [citrus["reads"]])
    db.samples.update_one({"_id": small["_id"]}, {"$set": {"library_type": "srna"}})
    as_srna = run_analysis(admin, db, small["_id"], ref_id, [])["results"]
    shotgun = insert_sample(db, settings.data_path, [citrus["reads"]])
    as_shotgun = run_analysis(admin, db, shotgun["_id"], ref_id, [])["results"]

    ctv_srna, ctv_shotgun = otu_reads(as_srna, citrus["otus"], CTV), otu_reads(as_shotgun, citrus["otus"], CTV)
    print(f"\nCTV reads of {READS} raw: srna {ctv_srna:.0f}, plain run {plain_ctv_reads}, as shotgun {ctv_shotgun:.0f}")
    # The data README: about 530 of the lane's 125,000 reads best-hit CTV once cut at the adapter.
    assert plain_ctv_reads > 100
    assert ctv_srna == pytest.approx(plain_ctv_reads, rel=0.1)
    assert ctv_shotgun < 0.2 * ctv_srna
