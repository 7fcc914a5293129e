"""Pathoscope reassignment: parsers, subtraction, the vectorised EM against a literal
transcription of the spec's loop algorithm, the report and the hits."""

from __future__ import annotations

import doctest
import gzip
import io
import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest

from ringspot.bio import pathoscope
from ringspot.bio.pathoscope import (
    REPORT_HEADER,
    BestHits,
    EmResult,
    build_hits,
    build_matrix,
    calculate_coverage,
    compute_best_hit,
    eliminate_subtraction,
    em,
    find_sam_align_score,
    read_sam,
    read_subtraction_scores,
    read_vta,
    rewrite_align,
    run_pathoscope,
    select_report_rows,
    write_report,
)

DATA = Path("/work/shared/data/pathoscope")
CUTOFF = 0.01


# --------------------------------------------------------------------------------------------
# Reference implementation: the pseudo-code of spec/workflows.md 1.5, transcribed literally
# with dicts and loops, no NumPy in the arithmetic.
# --------------------------------------------------------------------------------------------


def reference_build_matrix(alignments, cutoff=CUTOFF):
    u, nu, read_ids, ref_ids = {}, {}, {}, {}
    min_score = max_score = 0
    for read_id, ref_id, _pos, _length, p in alignments:
        if p < cutoff:
            continue
        min_score = min(min_score, p)
        max_score = max(max_score, p)
        ref = ref_ids.setdefault(ref_id, len(ref_ids))
        if read_id not in read_ids:
            read = read_ids[read_id] = len(read_ids)
            u[read] = [[ref], [p], [p], p]
            continue
        read = read_ids[read_id]
        if read in u:
            if ref in u[read][0]:
                continue
            nu[read] = u.pop(read)
        if ref in nu[read][0]:
            continue
        nu[read][0].append(ref)
        nu[read][1].append(p)
        nu[read][3] = max(nu[read][3], p)

    scale = 100 / (max_score - min_score) if min_score < 0 else 100 / max_score
    for read in u:
        p = u[read][1][0]
        if min_score < 0:
            p = p - min_score
        u[read] = (u[read][0][0], math.exp(p * scale))
    for read in nu:
        scores = []
        for p in nu[read][1]:
            if min_score < 0:
                p = p - min_score
            scores.append(math.exp(p * scale))
        total = sum(scores)
        nu[read] = [nu[read][0], scores, [s / total for s in scores], max(scores)]
    return u, nu, list(ref_ids), list(read_ids)


def reference_em(u, nu, refs, max_iter=50, epsilon=1e-7, pi_prior=0, theta_prior=0):
    g_count = len(refs)
    pi = theta = [1 / g_count] * g_count
    init_pi = pi
    pi_sum_0 = [0] * g_count
    for ref, w in u.values():
        pi_sum_0[ref] += w
    u_total = sum(w for _, w in u.values())
    nu_total = sum(r[3] for r in nu.values())
    prior_weight = max([w for _, w in u.values()] + [r[3] for r in nu.values()] + [0])
    nu_len = len(nu) or 1
    for i in range(max_iter):
        pi_old = pi
        theta_sum = [0] * g_count
        for r in nu.values():
            ind, scores = r[0], r[1]
            x = [pi[ind[k]] * theta[ind[k]] * scores[k] for k in range(len(ind))]
            x_sum = sum(x)
            x = [0.0] * len(x) if x_sum == 0 else [v / x_sum for v in x]
            r[2] = x
            for k in range(len(ind)):
                theta_sum[ind[k]] += x[k] * r[3]
        pip = pi_prior * prior_weight
        pi = [(theta_sum[g] + pi_sum_0[g] + pip) / (u_total + nu_total + pip * g_count) for g in range(g_count)]
        if i == 0:
            init_pi = pi
        thp = theta_prior * prior_weight
        theta = [(theta_sum[g] + thp) / ((nu_total or 1) + thp * g_count) for g in range(g_count)]
        if sum(abs(pi_old[g] - pi[g]) for g in range(g_count)) <= epsilon or nu_len == 1:
            break
    return init_pi, pi


def reference_best_hit(u, nu, refs, reads):
    best_reads = [0.0] * len(refs)
    level1 = [0.0] * len(refs)
    level2 = [0.0] * len(refs)
    for ref, _ in u.values():
        best_reads[ref] += 1
        level1[ref] += 1
    for ind, _, x, _ in nu.values():
        b = max(x)
        n = sum(1 for v in x if v == b) or 1
        for k, v in enumerate(x):
            if v == b:
                best_reads[ind[k]] += 1 / n
                if v >= 0.5:
                    level1[ind[k]] += 1
                elif v >= 0.01:
                    level2[ind[k]] += 1
    r_count = len(reads)
    return (
        best_reads,
        [v / r_count for v in best_reads],
        [v / r_count for v in level1],
        [v / r_count for v in level2],
    )


def reference_report_rows(refs, init_pi, pi, initial, final):
    rows = sorted(
        zip(
            pi,
            refs,
            init_pi,
            initial[1],
            initial[0],
            final[1],
            final[0],
            initial[2],
            initial[3],
            final[2],
            final[3],
            strict=False,
        ),
        reverse=True,
    )
    kept = []
    for row in rows:
        if row[0] < 0.01 and row[9] <= 0 and row[10] <= 0:
            break
        kept.append(row)
    # Column order of report.tsv.
    return [(r[1], r[0], r[5], r[6], r[9], r[10], r[2], r[3], r[4], r[7], r[8]) for r in kept]


def reference_coverage(alignments, u, nu, ref_lengths, cutoff=CUTOFF):
    """rewrite_align + calculate_coverage: re-read the alignments, first-seen indexing."""
    read_ids, ref_ids, written_unique = {}, {}, set()
    coverage = {}
    for read_id, ref_id, pos, length, p in alignments:
        if p < cutoff:
            continue
        ref = ref_ids.setdefault(ref_id, len(ref_ids))
        read = read_ids.setdefault(read_id, len(read_ids))
        if read in u:
            if read in written_unique:
                continue
            written_unique.add(read)
        elif nu[read][2][nu[read][0].index(ref)] < cutoff:
            continue
        depth = coverage.setdefault(ref_id, np.zeros(ref_lengths[ref_id], dtype=np.int64))
        depth[pos - 1 : pos - 1 + length] += 1
    return coverage


def reference_run(alignments):
    u, nu, refs, reads = reference_build_matrix(alignments)
    initial = reference_best_hit(u, nu, refs, reads)
    init_pi, pi = reference_em(u, nu, refs)
    final = reference_best_hit(u, nu, refs, reads)
    return {
        "u": u,
        "nu": nu,
        "refs": refs,
        "reads": reads,
        "init_pi": init_pi,
        "pi": pi,
        "initial": initial,
        "final": final,
        "rows": reference_report_rows(refs, init_pi, pi, initial, final),
    }


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vta_alignments():
    with gzip.open(DATA / "test.vta.gz", "rt") as handle:
        return list(read_vta(handle))


@pytest.fixture(scope="module")
def subtraction_scores():
    return json.loads((DATA / "to_subtraction.json").read_text())


@pytest.fixture(scope="module")
def ref_lengths():
    return json.loads((DATA / "ref_lengths.json").read_text())


@pytest.fixture(scope="module")
def index():
    return json.loads((DATA / "index_fixture.json").read_text())


@pytest.fixture(scope="module")
def expected(vta_alignments):
    return reference_run(vta_alignments)


@pytest.fixture(scope="module")
def vectorised(vta_alignments):
    matrix = build_matrix(vta_alignments)
    initial = compute_best_hit(matrix, matrix.x0)
    result = em(matrix)
    final = compute_best_hit(matrix, result.x)
    return matrix, result, initial, final


def assert_close(actual, expected_values):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected_values, dtype=float), rtol=1e-9, atol=0)


# --------------------------------------------------------------------------------------------
# Parsers
# --------------------------------------------------------------------------------------------


def test_doctests_pass():
    failures, tried = doctest.testmod(pathoscope)
    assert tried >= 5 and failures == 0


def test_read_vta_yields_every_line_of_test_vta(vta_alignments):
    assert len(vta_alignments) == 30593
    assert len({a[0] for a in vta_alignments}) == 20276
    assert len({a[1] for a in vta_alignments}) == 40
    assert vta_alignments[0] == ("HWI-ST1410:82:C2VAGACXX:7:1101:20066:1892", "NC_016509", 2346, 101, 301.0)


def test_read_vta_accepts_bytes_lines():
    assert list(read_vta([b"r1,NC_1,3,101,250.0\r\n"])) == [("r1", "NC_1", 3, 101, 250.0)]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("r1,NC_1,1,101,250\nr2,NC_1,1,101\n", "VTA line 2: expected 5 comma-separated fields"),
        ("r1,NC_1,one,101,250\n", "VTA line 1: pos 'one'"),
        ("r1,NC_1,1,101,high\n", "VTA line 1:"),
        ("\nr1,NC_1,0,101,250\n", "VTA line 2: pos must be >= 1"),
        ("r1\tNC_1\t1\t101\t250\n", "is this a VTA file?"),
    ],
)
def test_read_vta_names_the_bad_line(text, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        list(read_vta(io.StringIO(text)))


def independent_sam_kept(path, cutoff=CUTOFF):
    """Count the SAM lines the spec keeps, with a regex for AS:i."""
    kept = []
    for line in path.read_text().splitlines():
        if line.startswith(("@", "#")):
            continue
        fields = line.split("\t")
        if int(fields[1]) & 4 or fields[2] == "*":
            continue
        score = int(re.search(r"\tAS:i:(-?\d+)", line).group(1)) + len(fields[9])
        if score >= cutoff:
            kept.append((fields[0], fields[2], int(fields[3]), len(fields[9]), float(score)))
    return kept


@pytest.mark.parametrize("name", ["sam_50.sam", "to_isolates_small.sam"])
def test_read_sam_keeps_the_mapped_lines(name):
    expected_lines = independent_sam_kept(DATA / name)
    with open(DATA / name) as handle:
        parsed = list(read_sam(handle))
    assert parsed == expected_lines
    assert len(parsed) == {"sam_50.sam": 50, "to_isolates_small.sam": 9}[name]


def test_read_sam_reads_bytes_like_text():
    with open(DATA / "sam_50.sam", "rb") as binary, open(DATA / "sam_50.sam") as text:
        assert list(read_sam(binary)) == list(read_sam(text))


def test_read_sam_p_score_is_alignment_score_plus_read_length():
    with open(DATA / "sam_50.sam") as handle:
        first = next(read_sam(handle))
    # AS:i:200 on a 101 bp read.
    assert first == ("HWI-ST1410:82:C2VAGACXX:7:1101:11037:2144", "NC_016509", 3637, 101, 301.0)


def test_read_sam_skips_unmapped_and_low_scores():
    seq = "ACGT"
    lines = [
        "\t".join(["r1", "4", "*", "0", "0", "*", "*", "0", "0", seq, "IIII"]),
        "\t".join(["r2", "0", "*", "0", "0", "*", "*", "0", "0", seq, "IIII", "AS:i:8"]),
        "\t".join(["r3", "0", "NC_1", "1", "0", "4M", "*", "0", "0", seq, "IIII", "AS:i:-4"]),
        "\t".join(["r4", "0", "NC_1", "1", "0", "4M", "*", "0", "0", seq, "IIII", "AS:i:-3"]),
    ]
    # r3 scores 0 (< 0.01), r4 scores 1.
    assert list(read_sam(lines)) == [("r4", "NC_1", 1, 4, 1.0)]


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("r1\t0\tNC_1\t1\n", "SAM line 3: expected at least 11 tab-separated fields, found 4"),
        ("r1\tzero\tNC_1\t1\t0\t4M\t*\t0\t0\tACGT\tIIII\tAS:i:8\n", "SAM line 3: FLAG 'zero'"),
        ("r1\t0\tNC_1\t1\t0\t4M\t*\t0\t0\tACGT\tIIII\tNM:i:0\n", "SAM line 3: no AS:i tag"),
        ("r1\t0\tNC_1\tx\t0\t4M\t*\t0\t0\tACGT\tIIII\tAS:i:8\n", "SAM line 3: POS 'x'"),
        (b"r1\t0\tNC_1\t1\t0\t4M\t*\t0\t0\tAC\xffT\tIIII\tAS:i:8\n", "SAM line 3: not ASCII"),
    ],
)
def test_read_sam_names_the_bad_line(line, fragment):
    header = ["@HD\tVN:1.0\n", "# comment\n"]
    if isinstance(line, bytes):
        header = [h.encode() for h in header]
    with pytest.raises(ValueError, match=re.escape(fragment)):
        list(read_sam([*header, line]))


def test_find_sam_align_score_adds_seq_length():
    fields = ["r", "0", "NC", "1", "0", "5M", "*", "0", "0", "ACGTA", "IIIII", "XS:i:3", "AS:i:7"]
    assert find_sam_align_score(fields) == 12.0


# --------------------------------------------------------------------------------------------
# Subtraction
# --------------------------------------------------------------------------------------------


def test_subtraction_removes_four_reads_of_test_vta(vta_alignments, subtraction_scores):
    kept, subtracted = eliminate_subtraction(iter(vta_alignments), subtraction_scores)
    kept = list(kept)
    # Independent count: alignments whose read scores at least as well on the host.
    dropped = [a for a in vta_alignments if subtraction_scores.get(a[0], -math.inf) >= a[4]]
    assert len(subtracted) == 4
    assert subtracted == {a[0] for a in dropped}
    assert len(kept) == len(vta_alignments) - len(dropped)


def test_subtraction_is_per_alignment_and_ties_eliminate():
    with open(DATA / "to_subtraction_small.sam", "rb") as handle:
        scores = read_subtraction_scores(handle)
    assert scores == {
        "HWI-ST1410:82:C2VAGACXX:7:1101:20066:1892": 291.0,
        "HWI-ST1410:82:C2VAGACXX:7:1101:11037:2144": 311.0,
        "HWI-ST1410:82:C2VAGACXX:7:1101:14679:2757": 254.0,
    }
    with open(DATA / "to_isolates_small.sam") as handle:
        alignments = list(read_sam(handle))
    kept, subtracted = eliminate_subtraction(alignments, scores)
    kept = [(a[0].rsplit(":", 2)[1:], a[1], a[4]) for a in kept]
    # 20066:1892 keeps NC_016509 (301 > 291) but loses NC_003347 (290 <= 291);
    # 11037:2144 loses its 301 (< 311); 14679:2757 loses its 254 (tie).
    assert (["20066", "1892"], "NC_016509", 301.0) in kept
    assert (["20066", "1892"], "NC_003347", 290.0) not in kept
    assert not [k for k in kept if k[0] in (["11037", "2144"], ["14679", "2757"])]
    assert len(kept) == 9 - 3
    assert len(subtracted) == 3


def test_read_subtraction_scores_last_line_wins():
    line = "r1\t0\tchr\t1\t0\t4M\t*\t0\t0\tACGT\tIIII\tAS:i:{}\n"
    assert read_subtraction_scores([line.format(8), line.format(2)]) == {"r1": 6.0}


# --------------------------------------------------------------------------------------------
# Matrix and EM against the reference implementation
# --------------------------------------------------------------------------------------------


def test_matrix_holds_test_vta_reads_and_refs(vectorised, expected):
    matrix = vectorised[0]
    assert len(matrix.reads) == 20276
    assert len(matrix.refs) == 40
    assert matrix.reads == expected["reads"] and matrix.refs == expected["refs"]
    assert len(matrix.u_ref) == len(expected["u"])
    assert matrix.nu_read.tolist() == list(expected["nu"])
    assert len(matrix.entry_ref) == sum(len(r[0]) for r in expected["nu"].values())


def test_em_matches_reference_pi(vectorised, expected):
    result = vectorised[1]
    assert_close(result.pi, expected["pi"])
    assert_close(result.init_pi, expected["init_pi"])
    assert result.iterations > 1


def test_best_hits_match_reference(vectorised, expected):
    _, _, initial, final = vectorised
    for mine, theirs in ((initial, expected["initial"]), (final, expected["final"])):
        assert_close(mine.reads, theirs[0])
        assert_close(mine.best, theirs[1])
        assert_close(mine.high, theirs[2])
        assert_close(mine.low, theirs[3])


def test_final_x_matches_reference(vectorised, expected):
    matrix, result = vectorised[:2]
    reference_x = [v for r in expected["nu"].values() for v in r[2]]
    assert_close(result.x, reference_x)


def test_em_reproduces_reference_bit_for_bit(vectorised, expected):
    # Spec section 7 item 11: sums run in arrival order, so the results repeat the loop
    # algorithm exactly (same libm exp, same summation order), not merely within tolerance.
    result, final = vectorised[1], vectorised[3]
    assert result.pi.tolist() == expected["pi"]
    assert result.init_pi.tolist() == expected["init_pi"]
    assert final.reads.tolist() == expected["final"][0]


def test_em_matches_reference_when_reads_arrive_interleaved(vta_alignments):
    # Shuffled lines: reads become multi-mapped in an order unlike their first appearance.
    shuffled = list(vta_alignments)
    random.Random(7).shuffle(shuffled)
    theirs = reference_run(shuffled)
    matrix = build_matrix(shuffled)
    assert matrix.nu_read.tolist() == list(theirs["nu"])
    result = em(matrix)
    assert_close(result.pi, theirs["pi"])
    assert_close(compute_best_hit(matrix, result.x).low, theirs["final"][3])


def test_duplicate_pair_keeps_first_score():
    matrix = build_matrix([("r1", "A", 1, 10, 100.0), ("r1", "B", 1, 10, 50.0), ("r1", "A", 5, 10, 50.0)])
    assert matrix.entry_ref.tolist() == [0, 1]
    np.testing.assert_allclose(matrix.entry_weight, [math.exp(100.0), math.exp(50.0)])


def test_em_stops_after_one_iteration_with_one_multi_read():
    alignments = [("r1", "A", 1, 10, 100.0), ("r2", "A", 1, 10, 100.0), ("r2", "B", 1, 10, 100.0)]
    result = em(build_matrix(alignments))
    assert result.iterations == 1
    np.testing.assert_array_equal(result.init_pi, result.pi)


def test_init_pi_is_pi_after_first_iteration_not_uniform(vectorised):
    result = vectorised[1]
    assert not np.allclose(result.init_pi, 1 / 40)
    assert not np.allclose(result.init_pi, result.pi)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def test_report_format_and_rows(tmp_path, vectorised, expected):
    matrix, result, initial, final = vectorised
    rows = write_report(tmp_path / "report.tsv", matrix, result, initial, final)
    raw = (tmp_path / "report.tsv").read_bytes()
    lines = raw.split(b"\r\n")
    assert lines[-1] == b"" and b"\n" not in raw.replace(b"\r\n", b"")
    assert lines[0] == b"Total Number of Aligned Reads:\t20276\tTotal Number of Mapped Genomes:\t40"
    assert lines[1].decode().split("\t") == REPORT_HEADER
    assert len(lines) == 2 + len(rows) + 1
    assert [r.ref_id for r in rows] == [r[0] for r in expected["rows"]]
    for mine, theirs in zip(rows, expected["rows"], strict=False):
        assert_close(mine[1:], theirs[1:])
    assert lines[2].decode().split("\t")[0] == rows[0].ref_id
    assert float(lines[2].decode().split("\t")[1]) == rows[0].final_pi


def test_report_leads_with_the_dominant_genome(vectorised, expected):
    matrix, result, initial, final = vectorised
    rows = write_report(io.StringIO(), matrix, result, initial, final)
    top = max(range(40), key=lambda g: expected["pi"][g])
    assert rows[0].ref_id == expected["refs"][top] == "NC_016509"
    assert rows[0].final_pi == pytest.approx(expected["pi"][top], rel=1e-9)
    # Every kept row is interesting and pi never rises down the report.
    assert all(r.final_pi >= 0.01 or r.final_high > 0 or r.final_low > 0 for r in rows)
    assert [r.final_pi for r in rows] == sorted((r.final_pi for r in rows), reverse=True)


def test_report_stops_at_first_uninteresting_row():
    refs = ["A", "B", "C", "D"]
    zeros = np.zeros(4)
    result = EmResult(init_pi=zeros, pi=np.array([0.5, 0.005, 0.004, 0.491]), theta=zeros, x=zeros, iterations=1)
    final = BestHits(reads=zeros, best=zeros, high=np.array([0, 0, 0.1, 0]), low=zeros)
    rows = select_report_rows(refs, result, BestHits(zeros, zeros, zeros, zeros), final)
    # B (pi < 0.01, no confident hit) ends the report, so C is cut despite its high hits.
    assert [r.ref_id for r in rows] == ["A", "D"]


def test_report_breaks_pi_ties_by_ref_id_descending():
    matrix = build_matrix([("r1", "A", 1, 10, 300.0), ("r2", "B", 1, 10, 300.0)])
    result = em(matrix)
    initial, final = compute_best_hit(matrix, matrix.x0), compute_best_hit(matrix, result.x)
    rows = write_report(io.StringIO(), matrix, result, initial, final)
    assert [(r.ref_id, r.final_pi) for r in rows] == [("B", 0.5), ("A", 0.5)]


# --------------------------------------------------------------------------------------------
# Coverage and hits
# --------------------------------------------------------------------------------------------


def test_coverage_matches_reference_rewrite(vta_alignments, vectorised, expected, ref_lengths):
    matrix, result = vectorised[:2]
    coverage = calculate_coverage(matrix, result.x, ref_lengths)
    theirs = reference_coverage(vta_alignments, expected["u"], expected["nu"], ref_lengths)
    assert set(theirs) <= set(coverage)
    for ref_id, depth in coverage.items():
        assert len(depth) == ref_lengths[ref_id]
        np.testing.assert_array_equal(depth, theirs.get(ref_id, np.zeros(ref_lengths[ref_id])))


def test_rewrite_keeps_first_line_of_unique_reads_and_every_line_of_held_refs():
    alignments = [
        ("u", "A", 1, 4, 100.0),
        ("u", "A", 3, 4, 100.0),  # unique read, second line: not written
        ("m", "A", 1, 4, 100.0),
        ("m", "B", 1, 4, 10.0),  # x ~ exp(-300): dropped
        ("m", "A", 7, 4, 100.0),  # duplicate pair, still written
    ]
    matrix = build_matrix(alignments)
    mask = rewrite_align(matrix, em(matrix).x)
    assert mask.tolist() == [True, False, True, False, True]
    coverage = calculate_coverage(matrix, em(matrix).x, {"A": 8, "B": 8})
    assert coverage["A"].tolist() == [2, 2, 2, 2, 0, 0, 1, 1]  # last alignment clipped at 8
    assert coverage["B"].tolist() == [0] * 8


def test_hits_coverage_and_depth_arithmetic(vta_alignments, vectorised, ref_lengths, index):
    matrix, result, initial, final = vectorised
    rows = write_report(io.StringIO(), matrix, result, initial, final)
    coverage = calculate_coverage(matrix, result.x, ref_lengths)
    hits = build_hits(rows, coverage, index["sequence_otu_map"], index["manifest"])
    assert [h["id"] for h in hits] == [r.ref_id for r in rows]
    hit = next(h for h in hits if h["id"] == "NC_003615")
    align = hit["align"]
    assert len(align) == ref_lengths["NC_003615"] and all(type(v) is int for v in align)
    assert hit["coverage"] == round(1 - align.count(0) / len(align), 3)
    assert hit["depth"] == round(sum(align) / len(align))
    assert hit["otu"] == {"id": "foobar", "version": 10}
    row = next(r for r in rows if r.ref_id == "NC_003615")
    assert hit["final"] == {
        "pi": row.final_pi,
        "best": row.final_best,
        "high": row.final_high,
        "low": row.final_low,
        "reads": int(row.final_reads),
    }
    assert type(hit["final"]["reads"]) is int and type(hit["final"]["pi"]) is float


# --------------------------------------------------------------------------------------------
# Whole step
# --------------------------------------------------------------------------------------------


def test_run_pathoscope_with_subtraction(tmp_path, vta_alignments, subtraction_scores, ref_lengths, index):
    results = run_pathoscope(
        iter(vta_alignments),
        ref_lengths,
        index["sequence_otu_map"],
        index["manifest"],
        tmp_path,
        subtraction_scores=subtraction_scores,
    )
    assert results["subtracted_count"] == 4
    kept = [a for a in vta_alignments if subtraction_scores.get(a[0], -math.inf) < a[4]]
    theirs = reference_run(kept)
    assert results["read_count"] == len(theirs["reads"])
    assert [h["id"] for h in results["hits"]] == [r[0] for r in theirs["rows"]]
    assert_close([h["final"]["pi"] for h in results["hits"]], [r[1] for r in theirs["rows"]])
    assert (
        (tmp_path / "report.tsv")
        .read_bytes()
        .startswith(f"Total Number of Aligned Reads:\t{len(theirs['reads'])}\t".encode())
    )
    json.dumps(results)  # plain Python types only


def test_run_pathoscope_without_subtraction_counts_every_read(tmp_path, vta_alignments, ref_lengths, index):
    results = run_pathoscope(vta_alignments, ref_lengths, index["sequence_otu_map"], index["manifest"], tmp_path)
    assert results["read_count"] == 20276 and results["subtracted_count"] == 0


def test_run_pathoscope_with_no_alignments(tmp_path):
    results = run_pathoscope([], {}, {}, {}, tmp_path)
    assert results == {"read_count": 0, "subtracted_count": 0, "hits": []}
    assert (tmp_path / "report.tsv").read_text().startswith("Total Number of Aligned Reads:\t0\t")
