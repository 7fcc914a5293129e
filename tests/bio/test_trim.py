"""Small-RNA trimming on the real QIAseq citrus lane: the kit is found, and cutadapt cuts where the adapter is."""

from __future__ import annotations

import doctest
import gzip
from pathlib import Path

import pytest

from ringspot.bio import trim
from ringspot.bio.fastq import read_fastq
from ringspot.bio.trim import (
    KIT_ADAPTERS,
    MIN_LENGTH,
    detect_adapter,
    reads_for_mapping,
    srna_warnings,
    trim_files,
    trim_small_rna,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "samples"
CTV_LANE = DATA / "ctv-srna-qiaseq-lane1" / "reads.fastq.gz"
RPRSV = DATA / "rprsv-paired-nextseq" / "paired_1.fq.gz"
QIASEQ = KIT_ADAPTERS["QIAseq miRNA"]
SUBSAMPLE = 4000


def test_doctests():
    assert doctest.testmod(trim).failed == 0


@pytest.fixture(scope="module")
def lane(tmp_path_factory) -> Path:
    """The first reads of the citrus lane, as uploaded (insert + adapter + UMI)."""
    path = tmp_path_factory.mktemp("lane") / "lane.fq"
    with gzip.open(CTV_LANE, "rt") as source, open(path, "w") as target:
        for _ in range(4 * SUBSAMPLE):
            target.write(source.readline())
    return path


@pytest.fixture(scope="module")
def inserts(lane) -> list[tuple[str, str, str]]:
    """(name, insert, quality) of the lane's reads that carry the whole QIAseq adapter after 18+ nt."""
    with open(lane, "rb") as handle:
        found = []
        for record in read_fastq(handle):
            cut = record.sequence.find(QIASEQ)
            if cut >= MIN_LENGTH:
                found.append((record.name, record.sequence[:cut], record.quality[:cut]))
    return found


def test_the_qiaseq_adapter_is_found_in_the_citrus_lane():
    detection = detect_adapter(CTV_LANE)
    assert detection.kit == "QIAseq miRNA"
    assert detection.adapter == QIASEQ
    assert detection.fraction > 0.8
    assert srna_warnings(detection) == []


def test_long_reads_without_adapter_warn():
    detection = detect_adapter(RPRSV)
    assert detection.adapter is None
    assert detection.long_fraction > 0.99
    assert "longer than 50 nt" in srna_warnings(detection)[0]


@pytest.mark.parametrize("kit", list(KIT_ADAPTERS))
def test_each_kit_is_detected_and_cut_back_to_the_real_inserts(kit, inserts, tmp_path):
    """Real inserts given each kit's adapter (and a UMI after it, A to the end for poly-A) come back exactly."""
    reads = tmp_path / "reads.fq"
    adapter, tail = KIT_ADAPTERS[kit], ("A" * 12 if kit == "poly-A" else "GATCGTACGTAC")
    with open(reads, "w") as handle:
        for name, insert, quality in inserts:
            sequence = insert + adapter + tail
            handle.write(f"@{name}\n{sequence}\n+\n{quality}{'I' * (len(sequence) - len(quality))}\n")
    detection = detect_adapter(reads)
    assert detection.kit == kit
    summary = trim_small_rna(reads, tmp_path / "trimmed.fq", adapter=detection.adapter, kit=detection.kit)
    with open(tmp_path / "trimmed.fq", "rb") as handle:
        trimmed = {record.name: record.sequence for record in read_fastq(handle)}
    expected = {name: insert for name, insert, _ in inserts}
    if kit == "poly-A":  # an insert's own final A cannot be told from the tail
        expected = {name: insert.rstrip("A") for name, insert in expected.items()}
        expected = {name: insert for name, insert in expected.items() if len(insert) >= MIN_LENGTH}
    assert trimmed == expected
    assert summary.reads_in == len(inserts)
    assert summary.reads_with_adapter == len(inserts)
    assert summary.reads_out == len(trimmed)


def test_trimming_the_lane_keeps_small_rna_lengths(lane, inserts, tmp_path):
    summary = trim_small_rna(lane, tmp_path / "trimmed.fq", adapter=QIASEQ, kit="QIAseq miRNA")
    with open(tmp_path / "trimmed.fq", "rb") as handle:
        trimmed = {record.name: record.sequence for record in read_fastq(handle)}
    assert summary.reads_in == SUBSAMPLE
    assert summary.reads_out == len(trimmed) == SUBSAMPLE - summary.too_short
    assert sum(count for _, count in summary.lengths) == summary.reads_out
    assert min(length for length, _ in summary.lengths) >= MIN_LENGTH
    # Every read that carries the whole adapter is cut exactly where it starts.
    assert all(trimmed[name] == insert for name, insert, _ in inserts)
    # siRNA peaks: 21 and 24 nt are the two most common lengths of the lane's inserts.
    by_count = sorted(summary.lengths, key=lambda pair: -pair[1])
    assert {by_count[0][0], by_count[1][0]} == {21, 24}


def test_paired_small_rna_reads_are_trimmed_then_named_apart(lane, tmp_path):
    (mates,) = reads_for_mapping([lane, lane], tmp_path, library_type="srna")
    with open(mates, "rb") as handle:
        records = list(read_fastq(handle))
    names = [record.name for record in records]
    assert len(names) == len(set(names))
    assert not any(QIASEQ in record.sequence for record in records)
    summary = trim_files([lane, lane], tmp_path / "again", adapter=trim.DETECT)[1]
    assert summary.kit == "QIAseq miRNA" and summary.reads_in == 2 * SUBSAMPLE
    assert len(records) == summary.reads_out == sum(count for _, count in summary.lengths)


def test_shotgun_single_reads_go_to_mapping_as_they_are(tmp_path):
    assert reads_for_mapping([RPRSV], tmp_path, library_type="normal") == [RPRSV]
