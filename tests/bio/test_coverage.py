"""Depth arrays for display: change-point coordinates as Virtool's server makes them, and the
Visvalingam-Wyatt simplification past 100 points, checked against plain re-implementations."""

from __future__ import annotations

import doctest
import math
import random
from operator import itemgetter

import numpy as np

from ringspot.bio import coverage
from ringspot.bio.coverage import (
    coverage_to_coordinates,
    effective_areas,
    median_depth,
    simplify,
)


def virtool_coordinates(depths: list[int]) -> list[list[int]]:
    """``transform_coverage_to_coordinates`` of virtool/analyses/format.py, before simplification."""
    previous = depths[0]
    points = {(0, previous)}
    last = len(depths) - 1
    for i, depth in enumerate(depths):
        if depth != previous or i == last:
            points.add((i - 1, previous))
            points.add((i, depth))
            previous = depth
    return [list(p) for p in sorted(points, key=itemgetter(0))]


def naive_areas(points: list[list[int]]) -> list[float]:
    """Visvalingam-Wyatt by repeated scans: remove the smallest triangle, keep the running maximum."""

    def area(a, b, c):
        return abs(a[0] * (b[1] - c[1]) + b[0] * (c[1] - a[1]) + c[0] * (a[1] - b[1])) / 2

    alive = list(range(len(points)))
    thresholds = [math.inf] * len(points)
    largest = 0.0
    while len(alive) > 2:
        areas = [
            (area(points[alive[k - 1]], points[alive[k]], points[alive[k + 1]]), alive[k])
            for k in range(1, len(alive) - 1)
        ]
        smallest, index = min(areas)
        largest = max(largest, smallest)
        thresholds[index] = largest
        alive.remove(index)
    return thresholds


def random_depths(rng: random.Random, length: int, changes: int) -> list[int]:
    depths, value = [], rng.randint(0, 5)
    for _ in range(changes):
        depths += [value] * rng.randint(1, max(1, length // changes))
        value = max(0, value + rng.randint(-3, 3))
    return depths


def test_doctests_pass():
    assert doctest.testmod(coverage).failed == 0


def test_coordinates_match_virtool_up_to_100_points():
    rng = random.Random(7)
    for _ in range(200):
        depths = random_depths(rng, rng.randint(1, 300), rng.randint(1, 30))
        expected = virtool_coordinates(depths)
        if len(expected) <= 100:
            assert coverage_to_coordinates(depths) == expected


def test_effective_areas_match_the_naive_algorithm():
    rng = random.Random(3)
    for _ in range(50):
        depths = random_depths(rng, 400, 60)
        points = virtool_coordinates(depths)
        # Ties may be removed in another order; thresholds of distinct-area data agree.
        fast, slow = effective_areas(points), naive_areas(points)
        assert sorted(fast) == sorted(slow)


def test_long_coverage_is_simplified_to_about_four_tenths():
    rng = random.Random(11)
    depths = random_depths(rng, 8000, 400)
    full = virtool_coordinates(depths)
    simplified = coverage_to_coordinates(depths)
    assert len(full) > 100
    assert simplified[0] == full[0] and simplified[-1] == full[-1]
    assert len(simplified) <= int(0.4 * len(full)) + 2
    assert len(simplified) >= 0.3 * len(full)
    assert all(point in full for point in simplified)
    assert simplify(full, 1.0) == full


def test_median_depth_rounds_halves_up():
    assert median_depth(np.array([1, 2])) == 2
    assert median_depth(np.array([0, 0, 1, 2])) == 1
    assert median_depth(np.array([], dtype=int)) == 0
