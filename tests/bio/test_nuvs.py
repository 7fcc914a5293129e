"""NuVs read handling on the real RpRSV sample: skewer trimming, bowtie2 elimination with
Virtool's flags, and pairs reunited in step even though the mates are named ``x;1``/``x;2``."""

from __future__ import annotations

import doctest
import gzip
import itertools
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ringspot.bio import nuvs, runner
from ringspot.bio.nuvs import (
    count_reads,
    eliminate_reads,
    iter_reads,
    number_reads,
    reunite_pairs,
    surviving_ordinals,
    trim_reads,
    trimming_min_length,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
READS = [
    DATA / "samples" / "rprsv-paired-nextseq" / "paired_1.fq.gz",
    DATA / "samples" / "rprsv-paired-nextseq" / "paired_2.fq.gz",
]
REFERENCE = DATA / "reference" / "ref-plant-viruses-v1.5.0.reference.json.gz"
CTV_LANE = DATA / "samples" / "ctv-srna-qiaseq-lane1" / "reads.fastq.gz"


def test_doctests():
    assert doctest.testmod(nuvs).failed == 0


@pytest.fixture(scope="module")
def trimmed(tmp_path_factory) -> list[Path]:
    return trim_reads(READS, tmp_path_factory.mktemp("trim"), library_type="normal", max_length=151, proc=2)


@pytest.fixture(scope="module")
def rprsv_index(tmp_path_factory) -> Path:
    import json

    folder = tmp_path_factory.mktemp("rprsv")
    with gzip.open(REFERENCE, "rt") as handle:
        otus = json.load(handle)["otus"]
    otu = next(o for o in otus if o["name"] == "Raspberry ringspot virus")
    default = next(i for i in otu["isolates"] if i["default"])
    (folder / "rprsv.fa").write_text("".join(f">{s['accession']}\n{s['sequence']}\n" for s in default["sequences"]))
    subprocess.run(["bowtie2-build", str(folder / "rprsv.fa"), str(folder / "rprsv")], check=True, capture_output=True)
    return folder / "rprsv"


@pytest.mark.parametrize(
    "library_type, longest, expected",
    [
        ("normal", 151, 100),
        ("normal", 75, 35),
        ("normal", 250, 160),
        ("srna", 50, 35),
        ("amplicon", 200, 190),
    ],
)
def test_trimming_min_length_follows_virtool(library_type, longest, expected):
    assert trimming_min_length(library_type, longest) == expected


def test_skewer_keeps_pairs_and_drops_short_reads(trimmed):
    assert [p.name for p in trimmed] == ["reads_1.fq.gz", "reads_2.fq.gz"]
    first, second = (list(iter_reads(p)) for p in trimmed)
    # skewer's own log for these reads: 8,750 of 10,000 pairs left at -l 100 -Q 25.
    assert len(first) == len(second) == 8750
    assert min(len(r.sequence) for r in first + second) >= 100
    assert all(a.name.split(";")[0] == b.name.split(";")[0] for a, b in zip(first, second, strict=False))


def test_single_end_trimming_writes_one_file(tmp_path):
    (out,) = trim_reads(READS[:1], tmp_path, library_type="normal", max_length=151, proc=1)
    assert out.name == "reads_1.fq.gz" and 0 < count_reads(out) < 10_000


def test_elimination_drops_rprsv_reads_and_reunites_pairs_in_step(trimmed, rprsv_index, tmp_path):
    numbered = tmp_path / "numbered.fq"
    assert number_reads(trimmed, numbered) == 8750
    assert count_reads(numbered) == 17_500
    unmapped = tmp_path / "unmapped.fq"
    eliminate_reads(rprsv_index, numbered, unmapped, proc=2)
    survivors = surviving_ordinals(unmapped)
    # The sample's RpRSV is ~88% identical to the reference isolate: 13% of the reads align to it
    # (bowtie2 says 2,279 of 17,500). A pair goes only when both mates aligned.
    eliminated = 17_500 - count_reads(unmapped)
    assert 2000 < eliminated < 2600
    dropped = 8750 - len(survivors)
    assert 500 < dropped <= eliminated / 2

    targets = [tmp_path / "u1.fq", tmp_path / "u2.fq"]
    assert reunite_pairs(trimmed, survivors, targets) == len(survivors)
    first, second = (list(iter_reads(p)) for p in targets)
    assert len(first) == len(second) == len(survivors)
    assert all(a.name.endswith(";1") and b.name == a.name[:-1] + "2" for a, b in zip(first, second, strict=False))

    # No surviving pair aligns to RpRSV on both mates.
    again = tmp_path / "again.fq"
    eliminate_reads(rprsv_index, targets[0], again, proc=2)
    assert count_reads(again) > 0.9 * len(survivors)


def test_when_every_read_aligns_the_unmapped_file_is_empty(rprsv_index, tmp_path):
    reads = tmp_path / "rprsv_reads.fq"
    sequence = (rprsv_index.parent / "rprsv.fa").read_text().split("\n")[1][:3000]
    reads.write_text("".join(f"@{i}\n{sequence[i * 100 : i * 100 + 100]}\n+\n{'I' * 100}\n" for i in range(20)))
    unmapped = tmp_path / "un.fq"
    eliminate_reads(rprsv_index, reads, unmapped)
    assert unmapped.exists() and surviving_ordinals(unmapped) == set() and count_reads(unmapped) == 0


def test_spades_is_killed_on_cancel(trimmed, tmp_path):
    cancel = threading.Event()
    threading.Timer(1.5, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(runner.ToolCancelled):
        nuvs.assemble_reads(trimmed, tmp_path / "spades", library_type="normal", proc=2, mem_gb=4, cancel=cancel)
    assert time.monotonic() - started < 8
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path / "spades")], capture_output=True, text=True).stdout
    assert leftover == ""


def test_spades_progress_follows_its_kmer_passes(trimmed, tmp_path):
    reads = []
    for number, path in enumerate(trimmed, start=1):
        subsample = tmp_path / f"sub_{number}.fq"
        with open(subsample, "w") as out:
            for record in itertools.islice(iter_reads(path), 1500):
                out.write(f"@{record.name}\n{record.sequence}\n+\n{record.quality}\n")
        reads.append(subsample)
    seen: list[float] = []
    assembly = nuvs.assemble_reads(
        reads, tmp_path / "spades", library_type="normal", proc=2, mem_gb=4, on_progress=seen.append
    )
    assert assembly.note is None and assembly.scaffolds.stat().st_size > 0
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert any(0 < value < 1 for value in seen)  # read from the log while SPAdes ran
    log = (tmp_path / "spades" / "spades.log").read_text()
    assert nuvs.spades_progress(log, nuvs.DEFAULT_KMERS) == 1.0


def test_too_few_reads_to_assemble_end_in_an_empty_assembly_with_a_note(tmp_path):
    """131 reads left after elimination: SPAdes exits 21 on its k-mer coverage histogram."""
    reads = tmp_path / "left.fq"
    with open(reads, "w") as out:
        for record in itertools.islice(iter_reads(READS[0]), 131):
            out.write(f"@{record.name}\n{record.sequence}\n+\n{record.quality}\n")
    assembly = nuvs.assemble_reads([reads], tmp_path / "spades", library_type="normal", proc=2, mem_gb=4)
    assert assembly.scaffolds.read_text() == ""
    assert assembly.note == (
        "too few reads for SPAdes to estimate k-mer coverage (SPAdes: Invalid kmer coverage histogram)"
    )


def test_other_spades_failures_still_raise(tmp_path):
    reads = tmp_path / "reads.fq"
    reads.write_text("@a\nACGT\n+\nIIII\n")
    with pytest.raises(runner.ToolError):  # a memory limit of 0 GB: a failure that is not about the reads
        nuvs.assemble_reads([reads], tmp_path / "spades", library_type="normal", proc=1, mem_gb=0)


def test_small_rna_reads_are_cut_at_their_adapter_for_assembly(tmp_path):
    lane = tmp_path / "lane.fq"
    with open(lane, "w") as out:
        for record in itertools.islice(iter_reads(CTV_LANE), 3000):
            out.write(f"@{record.name}\n{record.sequence}\n+\n{record.quality}\n")
    (out,) = trim_reads([lane], tmp_path / "trimmed", library_type="srna", max_length=76, proc=1)
    trimmed = list(iter_reads(out))
    assert 2500 < len(trimmed) < 3000
    assert all(len(record.sequence) >= 18 for record in trimmed)
    assert not any("AACTGTAGGCACCATCAAT" in record.sequence for record in trimmed)
    assert nuvs.spades_argv([out], "spades", library_type="srna", proc=1, mem_gb=4)[6] == "17,21,23"


def test_small_rna_mates_come_back_as_single_reads_named_apart(tmp_path):
    lane = tmp_path / "lane.fq"
    with open(lane, "w") as out:
        for record in itertools.islice(iter_reads(CTV_LANE), 1000):
            out.write(f"@{record.name}\n{record.sequence}\n+\n{record.quality}\n")
    (single,) = trim_reads([lane, lane], tmp_path / "trimmed", library_type="srna", max_length=76, proc=1)
    names = [record.name for record in iter_reads(single)]
    assert len(names) == len(set(names)) > 1600
    assert sum(name.endswith("/1") for name in names) == sum(name.endswith("/2") for name in names)
