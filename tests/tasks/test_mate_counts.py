"""Every mate is a read, whatever the naming convention.

The 50-bp paired sample (Casava 1.8 names, both mates under one name) renamed as /1 /2, ;1 ;2 and
SRA gives the same Pathoscope read count, reads per sequence and depth, and the same alignment job
figures, all equal to a plain bowtie2 + samtools run. Its reads pile on the first 50 bases of
Physalis rugose mosaic virus NC_055577.1, which are Illumina adapter: no depth to compare there.
Depths are compared on the measles sample (SRA names, the same in both files), whose genome is
covered end to end: Pathoscope, the alignment job and samtools agree within 5 %."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from ringspot.bio.alignments import pathoscope_flags
from ringspot.tasks import alignments as alignment_tasks  # noqa: F401  (binds the actors to the stub broker)
from ringspot.tasks import analyses as analysis_tasks  # noqa: F401

from ..analyses_data import build_index_files, insert_index, insert_otus, insert_reference, insert_sample, load_otus
from ..conftest import DATA
from ..mate_names import write_pair
from .test_alignment import align
from .test_pathoscope import run_analysis

PAIRED_50 = DATA / "samples" / "example-paired-50bp"
MATES = (PAIRED_50 / "reads_1.fq.gz", PAIRED_50 / "reads_2.fq.gz")
PHRMV = "73him4fh"
ACCESSION = "NC_055577.1"
CONVENTIONS = ("casava", "slash", "semicolon", "sra")


@pytest.fixture(scope="module")
def phrmv(tmp_path_factory):
    otus = [otu for otu in load_otus() if otu["_id"] == PHRMV]
    return {"otus": otus, "files": build_index_files(otus, tmp_path_factory.mktemp("phrmv"))}


@pytest.fixture(scope="module")
def plain(phrmv, tmp_path_factory):
    """bowtie2 by hand on the original files (mates as unpaired reads), then samtools: reads and mean depth."""
    folder = tmp_path_factory.mktemp("plain")
    bam = folder / "plain.bam"
    bowtie2 = subprocess.Popen(
        ["bowtie2", "-p", "2", *pathoscope_flags("normal"), "--no-unal"]
        + ["-x", phrmv["files"] / "reference", "-U", ",".join(map(str, MATES))],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    subprocess.run(["samtools", "sort", "-o", bam, "-"], stdin=bowtie2.stdout, check=True, capture_output=True)
    assert bowtie2.wait() == 0
    reads = int(subprocess.run(["samtools", "view", "-c", "-F", "0x904", bam], capture_output=True, text=True).stdout)
    depth = subprocess.run(["samtools", "depth", "-a", bam], capture_output=True, text=True, check=True).stdout
    depths = np.array([int(line.split("\t")[2]) for line in depth.splitlines()])
    return {"reads": reads, "mean_depth": depths.mean(), "breadth": np.count_nonzero(depths) / len(depths)}


@pytest.fixture
def world(db, settings, admin, phrmv, live_server, stub_worker):
    reference = insert_reference(db, "PhRMV")
    insert_otus(db, reference["_id"], phrmv["otus"])
    insert_index(db, settings.data_path, reference["_id"], phrmv["otus"], phrmv["files"])
    return {"reference": reference}


def test_every_mate_counts_once_whatever_the_naming(admin, db, settings, world, plain, tmp_path):
    figures = {}
    for convention in CONVENTIONS:
        folder = tmp_path / convention
        folder.mkdir()
        sample = insert_sample(db, settings.data_path, write_pair(MATES, folder, convention))
        results = run_analysis(admin, db, sample["_id"], world["reference"]["_id"], [])["results"]
        (hit,) = results["hits"]
        job, alignment = align(admin, db, sample["_id"], accession=ACCESSION, ref_id=world["reference"]["_id"])
        assert job["state"] == "complete", job["error"]
        statistics = alignment["statistics"]
        figures[convention] = {
            "read_count": results["read_count"],
            "sequence_reads": hit["final"]["reads"],
            "depth": hit["depth"],
            "coverage": hit["coverage"],
            "mapped_reads": statistics["mapped_reads"],
            "mean_depth": statistics["mean_depth"],
        }
    print(f"\nmates: plain {plain}, per convention {figures}")
    # The same figures whatever the names: each mate is a read of its own.
    assert all(f == figures["casava"] for f in figures.values())
    counted = figures["casava"]
    # Both mates count: the plain run's aligned records (2,416), not one per pair.
    assert counted["read_count"] == counted["sequence_reads"] == counted["mapped_reads"] == plain["reads"] > 2000
    assert counted["mean_depth"] == pytest.approx(plain["mean_depth"], abs=0.01)


MEASLES = DATA / "samples" / "mev-d8-srr7517490"
#: Every fifth pair of the 20,270: the file is in genome order, so its first pairs cover a quarter of it.
MEASLES_EVERY = 5
MEASLES_PAIRS = 4054


@pytest.fixture(scope="module")
def measles(tmp_path_factory):
    """MH356245.1 as an OTU of its own, its index, and every fifth pair of the sample (SRA names)."""
    folder = tmp_path_factory.mktemp("measles")
    sequence = "".join((MEASLES / "MH356245.1.reference.fasta").read_text().splitlines()[1:]).strip()
    otu = {
        "_id": "measlesd",
        "name": "Measles virus",
        "abbreviation": "MeV",
        "schema": [{"molecule": "ssRNA-", "name": "Genome", "required": True}],
        "taxid": None,
        "isolates": [
            {
                "id": "mevd8iso",
                "default": True,
                "source_type": "strain",
                "source_name": "MVi/Calcutta.IND/17.14/1[D8]",
                "sequences": [
                    {
                        "_id": "mevd8seq",
                        "accession": "MH356245.1",
                        "definition": "Measles virus genotype D8, complete genome",
                        "host": "Homo sapiens",
                        "segment": "Genome",
                        "sequence": sequence,
                    }
                ],
            }
        ],
    }
    reads = write_pair(
        (MEASLES / "SRR7517490_R1.fastq.gz", MEASLES / "SRR7517490_R2.fastq.gz"), folder, "sra", every=MEASLES_EVERY
    )
    return {"otus": [otu], "files": build_index_files([otu], folder / "index"), "reads": reads, "length": len(sequence)}


def test_measles_depth_agrees_between_pathoscope_the_alignment_job_and_samtools(
    admin, db, settings, measles, live_server, stub_worker, tmp_path
):
    reference = insert_reference(db, "Measles")
    insert_otus(db, reference["_id"], measles["otus"])
    insert_index(db, settings.data_path, reference["_id"], measles["otus"], measles["files"])
    sample = insert_sample(db, settings.data_path, measles["reads"])
    results = run_analysis(admin, db, sample["_id"], reference["_id"], [])["results"]
    (hit,) = results["hits"]
    job, alignment = align(admin, db, sample["_id"], accession="MH356245.1", ref_id=reference["_id"])
    assert job["state"] == "complete", job["error"]
    statistics = alignment["statistics"]
    bam = tmp_path / "plain.bam"
    bowtie2 = subprocess.Popen(
        ["bowtie2", "-p", "2", *pathoscope_flags("normal"), "--no-unal"]
        + ["-x", measles["files"] / "reference", "-U", ",".join(map(str, measles["reads"]))],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    subprocess.run(["samtools", "sort", "-o", bam, "-"], stdin=bowtie2.stdout, check=True, capture_output=True)
    assert bowtie2.wait() == 0
    reads = int(subprocess.run(["samtools", "view", "-c", "-F", "0x904", bam], capture_output=True, text=True).stdout)
    depth = subprocess.run(["samtools", "depth", "-a", bam], capture_output=True, text=True, check=True).stdout
    plain_depth = np.mean([int(line.split("\t")[2]) for line in depth.splitlines()])
    print(
        f"\nmeasles: pathoscope reads {results['read_count']} depth {hit['depth']} coverage {hit['coverage']}; "
        f"alignment reads {statistics['mapped_reads']} mean depth {statistics['mean_depth']} "
        f"breadth {statistics['breadth']}; plain reads {reads} mean depth {plain_depth:.1f}"
    )
    # Both mates of a pair count: well over the 4,054 pairs.
    assert results["read_count"] == hit["final"]["reads"] == statistics["mapped_reads"] == reads > 1.5 * MEASLES_PAIRS
    assert hit["coverage"] >= 0.9 and statistics["breadth"] >= 0.9
    assert hit["depth"] == pytest.approx(statistics["mean_depth"], rel=0.05)
    assert statistics["mean_depth"] == pytest.approx(plain_depth, rel=0.01)
