"""Figures of a BAM against one genome (``bio.bam``) checked against samtools on reads with every
CIGAR operation, and coverage plots (``bio.plots``): sizes, not blank, titles, bad input."""

from __future__ import annotations

import doctest
import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from ringspot.bio import bam, plots
from ringspot.bio.bam import depth_and_statistics
from ringspot.bio.plots import coverage_plot, coverage_title

HEADER = "@HD\tVN:1.6\tSO:unsorted\n@SQ\tSN:g1\tLN:40\n"
#: name, flag, pos, CIGAR, NM: soft clips, an insertion, a deletion, a skip, a secondary,
#: a duplicate and an unmapped record (the last three count for nothing).
RECORDS = [
    ("r1", 0, 1, "10M", 0),
    ("r2", 16, 5, "2S8M", 1),
    ("r3", 0, 11, "4M2I4M", 3),
    ("r4", 0, 21, "5M3D5M", 3),
    ("r5", 0, 25, "3M5N3M", 0),
    ("r6", 256, 1, "10M", 0),
    ("r7", 1024, 1, "10M", 0),
    ("r8", 4, 0, "*", None),
]


def write_bam(folder: Path, records=RECORDS) -> Path:
    lines = []
    for name, flag, pos, cigar, nm in records:
        length = sum(int(n) for n, op in _ops(cigar) if op in "MIS=X") if cigar != "*" else 6
        tags = f"\tNM:i:{nm}" if nm is not None else ""
        rname = "*" if flag & 4 else "g1"
        lines.append(
            f"{name}\t{flag}\t{rname}\t{pos}\t{0 if flag & 4 else 42}\t{cigar}\t*\t0\t0\t{'A' * length}\t"
            f"{'I' * length}{tags}\n"
        )
    sam = folder / "reads.sam"
    sam.write_text(HEADER + "".join(lines))
    path = folder / "reads.bam"
    subprocess.run(["samtools", "sort", "-o", str(path), str(sam)], check=True, capture_output=True)
    return path


def _ops(cigar: str):
    number = ""
    for char in cigar:
        if char.isdigit():
            number += char
        else:
            yield int(number), char
            number = ""


def test_doctests_pass():
    assert doctest.testmod(bam).failed == 0
    assert doctest.testmod(plots).failed == 0


def test_depth_is_samtools_depth_and_identity_counts_columns(tmp_path):
    path = write_bam(tmp_path)
    depth, stats = depth_and_statistics(path)
    expected = [
        int(line.split("\t")[2])
        for line in subprocess.run(
            ["samtools", "depth", "-a", str(path)], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    ]
    assert depth.tolist() == expected and len(expected) == 40
    assert (
        stats.mapped_reads
        == 5
        == int(
            subprocess.run(
                ["samtools", "view", "-c", "-F", "0xF04", str(path)], capture_output=True, text=True, check=True
            ).stdout
        )
    )
    # Columns M/I/D: 10 + 8 + 10 + 13 + 6 = 47; edits 0 + 1 + 3 + 3 + 0 = 7.
    assert stats.identity == pytest.approx(100 * (1 - 7 / 47), abs=1e-4)
    assert stats.length == 40
    assert stats.breadth == pytest.approx(np.count_nonzero(expected) / 40, abs=1e-6)
    assert stats.mean_depth == pytest.approx(np.mean(expected), abs=1e-4)


def test_nothing_mapped_gives_zeros_and_no_identity(tmp_path):
    depth, stats = depth_and_statistics(write_bam(tmp_path, [r for r in RECORDS if r[1] & 4]))
    assert not depth.any() and len(depth) == 40
    assert stats.as_dict() == {"mapped_reads": 0, "length": 40, "breadth": 0.0, "mean_depth": 0.0, "identity": None}


def test_names_a_missing_reference(tmp_path):
    path = write_bam(tmp_path)
    with pytest.raises(ValueError, match="reference 'g2' is not in the BAM header"):
        depth_and_statistics(path, "g2")


@pytest.mark.parametrize("length", [1, 500, 7935, 250_000])
def test_png_has_its_size_and_is_not_blank_at_any_genome_length(length):
    rng = np.random.default_rng(length)
    depth = rng.poisson(20, length)
    data = coverage_plot(depth, coverage_title("NC_1", depth), "png")
    pixels = mpimg.imread(io.BytesIO(data), format="png")
    assert pixels.shape[:2] == (plots.SIZE[1] * plots.DPI, plots.SIZE[0] * plots.DPI) == (300, 1000)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)) > 10


def test_long_genomes_are_binned_so_the_svg_stays_small():
    depth = np.full(250_000, 30)
    depth[100_000:100_010] = 0  # a 10-base gap still reaches zero in its bin
    svg = coverage_plot(depth, "long", "svg")
    assert len(svg) < 300_000
    starts, mins, maxs, means = plots.binned(depth, plots.MAX_BINS)
    assert mins.min() == 0 and maxs.max() == 30 and len(starts) == plots.MAX_BINS


def test_same_depths_give_the_same_bytes():
    depth = [0, 1, 5, 5, 2]
    for fmt in plots.FORMATS:
        assert coverage_plot(depth, "t", fmt) == coverage_plot(depth, "t", fmt)


@pytest.mark.parametrize(
    "depth, fmt, message",
    [
        ([1, 2], "pdf", "plot format must be one of png, svg"),
        ([[1, 2]], "png", "depth must be one-dimensional"),
        ([1, -2], "png", "depth must not be negative"),
    ],
)
def test_bad_input_is_a_value_error(depth, fmt, message):
    with pytest.raises(ValueError, match=message):
        coverage_plot(depth, "t", fmt)
