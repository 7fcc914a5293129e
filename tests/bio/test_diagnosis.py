"""The diagnosis rule on depth arrays whose answer is known by construction, and on the real
grapevine alignments (``test.vta``): reads are the reads assigned, breadth spans every segment of
the best isolate, stacked reads are not a virus."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from ringspot.bio import diagnosis
from ringspot.bio.diagnosis import DETECTED, NOT_DETECTED, POSSIBLE, Thresholds
from ringspot.bio.pathoscope import read_vta, run_pathoscope

from ..conftest import DATA

GENOME = 10_000


def two_isolate_otu() -> diagnosis.Otu:
    """An OTU of two isolates; the first has two segments."""
    return diagnosis.Otu(
        id="otu1",
        name="Test virus",
        abbreviation="TV",
        isolates=(
            diagnosis.Isolate(id="a", source_name="A", sequence_ids=("a1", "a2")),
            diagnosis.Isolate(id="b", source_name="B", sequence_ids=("b1",)),
        ),
    )


def reads_along(length: int, starts, read_length: int) -> np.ndarray:
    depth = np.zeros(length, dtype=np.int64)
    for start in starts:
        depth[start : start + read_length] += 1
    return depth


def rows_for(coverage: dict, reads_by_ref: dict, thresholds: Thresholds | None = None) -> list[dict]:
    otu = two_isolate_otu()
    lengths = {"a1": GENOME, "a2": GENOME, "b1": 2 * GENOME}
    sequence_otu_map = dict.fromkeys(lengths, otu.id)
    pi = {ref: 0.1 for ref in coverage}
    return diagnosis.diagnose({otu.id: otu}, sequence_otu_map, reads_by_ref, pi, coverage, lengths, thresholds)


def test_reads_spread_over_both_segments_are_detected_with_the_isolate_and_its_figures():
    starts = range(0, GENOME - 100, 50)  # 198 reads of 100 nt, every 50 nt: depth 2 nearly everywhere
    coverage = {"a1": reads_along(GENOME, starts, 100), "a2": reads_along(GENOME, starts, 100)}
    (row,) = rows_for(coverage, {"a1": 198.0, "a2": 197.6})
    assert row["call"] == DETECTED and row["reads"] == 396
    assert row["isolate"] == {"id": "a", "source_name": "A"}
    assert row["segments"] == {"covered": 2, "total": 2}
    genome = np.concatenate([coverage["a1"], coverage["a2"]])
    assert row["breadth"] == pytest.approx(np.count_nonzero(genome) / genome.size, abs=1e-4)
    assert row["mean_depth"] == pytest.approx(genome.mean(), abs=0.01)
    assert row["median_depth"] == float(np.median(genome)) == 2.0
    assert row["pi"] == pytest.approx(0.2)


def test_one_covered_segment_of_two_halves_the_breadth_and_says_so():
    starts = range(0, GENOME - 100, 50)
    (row,) = rows_for({"a1": reads_along(GENOME, starts, 100)}, {"a1": 198.0})
    assert row["breadth"] == pytest.approx(0.5, abs=0.01)
    assert row["segments"] == {"covered": 1, "total": 2}
    assert "1 of 2 segments covered" in row["reasons"]
    assert row["call"] == DETECTED  # half of the genome, evenly: still a virus


def test_reads_stacked_on_one_stretch_are_not_a_virus_however_many():
    """Thousands of reads on one 50-nt stretch (adapter on a contaminated reference, a host-like motif)."""
    (row,) = rows_for({"b1": reads_along(2 * GENOME, [0] * 2_400, 50)}, {"b1": 2_400.0})
    assert row["reads"] == 2_400 and row["breadth"] == 0.0025
    assert row["call"] == NOT_DETECTED
    assert row["evenness"] < 0.01
    assert any(reason.startswith("evenness 0.00 < 0.30") for reason in row["reasons"])


def test_few_reads_spread_apart_are_possible_and_one_read_is_nothing():
    two = rows_for({"b1": reads_along(2 * GENOME, [100, 9_000], 100)}, {"b1": 2.0})[0]
    assert (two["call"], two["reads"], two["evenness"]) == (POSSIBLE, 2, 1.0)
    assert "reads 2 < 50" in two["reasons"]
    one = rows_for({"b1": reads_along(2 * GENOME, [100], 100)}, {"b1": 1.0})[0]
    assert one["call"] == NOT_DETECTED and one["reasons"] == ["reads 1 < 2"]


def test_the_isolate_with_most_reads_is_measured_and_reads_sum_over_isolates():
    coverage = {"a1": reads_along(GENOME, [0], 100), "b1": reads_along(2 * GENOME, range(0, 2 * GENOME, 200), 100)}
    (row,) = rows_for(coverage, {"a1": 0.4, "b1": 100.3})
    assert row["isolate"]["id"] == "b" and row["reads"] == 101  # 100.7 assigned reads, rounded
    assert row["breadth"] == 0.5


def test_thresholds_decide_and_are_reported():
    starts = range(0, GENOME - 100, 400)
    coverage = {"a1": reads_along(GENOME, starts, 100), "a2": reads_along(GENOME, starts, 100)}
    strict = Thresholds(min_reads=10, min_breadth=0.5, min_evenness=0.3, min_possible_reads=2)
    (row,) = rows_for(coverage, {"a1": 25.0, "a2": 25.0}, strict)
    assert row["call"] == POSSIBLE and "breadth 25.0 % < 50.0 %" in row["reasons"]
    lenient = Thresholds(min_reads=10, min_breadth=0.2, min_evenness=0.3, min_possible_reads=2)
    assert rows_for(coverage, {"a1": 25.0, "a2": 25.0}, lenient)[0]["call"] == DETECTED


def test_rows_come_detected_then_possible_then_by_reads():
    rows = [
        {"id": "x", "call": NOT_DETECTED, "reads": 5000, "pi": 0.9},
        {"id": "y", "call": POSSIBLE, "reads": 3, "pi": 0.01},
        {"id": "z", "call": DETECTED, "reads": 60, "pi": 0.05},
        {"id": "w", "call": DETECTED, "reads": 900, "pi": 0.04},
    ]
    assert [row["id"] for row in diagnosis.order_rows(rows)] == ["w", "z", "y", "x"]


def test_real_grapevine_alignments_give_integer_assigned_reads_matching_the_best_hits(tmp_path):
    """On the real VTA, each OTU's reads are its sequences' final best-hit reads summed (never
    fewer than the report's truncated ones), and breadth never passes 1."""
    index = json.loads((DATA / "pathoscope" / "index_fixture.json").read_text())
    lengths = json.loads((DATA / "pathoscope" / "ref_lengths.json").read_text())
    sequence_otu_map = index["sequence_otu_map"]
    otus = {
        otu_id: diagnosis.Otu(
            otu_id,
            otu_id,
            "",
            (
                diagnosis.Isolate(
                    "all", "", tuple(sorted(ref for ref, owner in sequence_otu_map.items() if owner == otu_id))
                ),
            ),
        )
        for otu_id in set(sequence_otu_map.values())
    }
    with gzip.open(DATA / "pathoscope" / "test.vta.gz", "rt") as handle:
        results = run_pathoscope(read_vta(handle), lengths, sequence_otu_map, index["manifest"], tmp_path, otus=otus)
    rows = results["diagnosis"]
    assert all(isinstance(row["reads"], int) and 0 <= row["breadth"] <= 1 for row in rows)
    # 15 of the 40 sequences belong to no OTU of the fixture's map: their reads are no row's.
    assert sum(row["reads"] for row in rows) <= results["read_count"]
    report_reads: dict[str, float] = {}
    for hit in results["hits"]:
        report_reads[hit["otu"]["id"]] = report_reads.get(hit["otu"]["id"], 0) + hit["final"]["reads"]
    top = rows[0]
    assert top["call"] == DETECTED
    assert top["reads"] >= report_reads[top["id"]]  # hits truncate each sequence's reads to an integer
    assert results["thresholds"] == Thresholds().as_dict()


def test_doctests_pass():
    import doctest

    assert doctest.testmod(diagnosis).failed == 0
