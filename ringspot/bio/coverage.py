"""Depth arrays of a Pathoscope hit: compact coordinates for display and summary figures.

A hit's ``align`` is one depth per reference position. Virtool's server sends it as
change-point coordinates, simplified with Visvalingam-Wyatt (ratio 0.4) past 100 points
(``virtool/analyses/format.py`` ``transform_coverage_to_coordinates``); its UI sums up
isolates and OTUs with coverage fractions and median depths (``formatPathoscopeData``).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np

#: Coordinates past this many points are simplified.
MAX_COORDINATES = 100
#: Share of points Visvalingam-Wyatt keeps.
SIMPLIFY_RATIO = 0.4


def coverage_to_coordinates(depth: Sequence[int]) -> list[list[int]]:
    """Return ``[position, depth]`` points where the depth changes, plus both ends.

    Each change contributes the last position of the old depth and the first of the new,
    so a plot of straight segments between points redraws the steps; like Virtool's, the
    point before the last one is always there too.

    >>> coverage_to_coordinates([0, 0, 3, 3, 3, 1])
    [[0, 0], [1, 0], [2, 3], [4, 3], [5, 1]]
    >>> coverage_to_coordinates([4, 4, 4, 4])
    [[0, 4], [2, 4], [3, 4]]
    >>> coverage_to_coordinates([2])
    [[0, 2]]
    >>> coverage_to_coordinates([])
    []
    """
    values = np.asarray(depth, dtype=np.int64)
    if not len(values):
        return []
    changes = np.flatnonzero(values[1:] != values[:-1]) + 1
    # Virtool's loop also marks the position before the last one, changed or not.
    ends = [len(values) - 2, len(values) - 1] if len(values) > 1 else [0]
    positions = np.unique(np.concatenate(([0], changes - 1, changes, ends)))
    points = [[int(p), int(values[p])] for p in positions.tolist()]
    if len(points) > MAX_COORDINATES:
        return simplify(points, SIMPLIFY_RATIO)
    return points


def _area(a: Sequence[float], b: Sequence[float], c: Sequence[float]) -> float:
    return abs(a[0] * (b[1] - c[1]) + b[0] * (c[1] - a[1]) + c[0] * (a[1] - b[1])) / 2.0


def effective_areas(points: Sequence[Sequence[float]]) -> list[float]:
    """Visvalingam-Wyatt thresholds: the area at which each point would be removed.

    The ends are never removed (infinite); a point's threshold is at least that of any
    point removed before it, so thresholds can be compared to keep the most telling points.

    >>> effective_areas([[0, 0], [1, 1], [2, 0], [3, 0]])
    [inf, 1.5, 0.5, inf]
    """
    count = len(points)
    thresholds = [math.inf] * count
    if count < 3:
        return thresholds
    previous, following = list(range(-1, count - 1)), list(range(1, count + 1))
    areas = [math.inf] * count
    heap = []
    for i in range(1, count - 1):
        areas[i] = _area(points[i - 1], points[i], points[i + 1])
        heap.append((areas[i], i))
    heapq.heapify(heap)
    removed = [False] * count
    largest = 0.0
    while heap:
        area, i = heapq.heappop(heap)
        if removed[i] or area != areas[i]:
            continue  # a stale entry: the point's area changed when a neighbour went
        largest = max(largest, area)
        thresholds[i] = largest
        removed[i] = True
        before, after = previous[i], following[i]
        following[before], previous[after] = after, before
        for j in (before, after):
            if 0 < j < count - 1:
                areas[j] = _area(points[previous[j]], points[j], points[following[j]])
                heapq.heappush(heap, (areas[j], j))
    return thresholds


def simplify(points: Sequence[Sequence[int]], ratio: float) -> list[list[int]]:
    """Keep about ``ratio`` of ``points``, those of largest effective area (ends always kept).

    Like the ``visvalingamwyatt`` package Virtool uses: points whose threshold is above the
    ``int(ratio * n)``-th largest survive.

    >>> simplify([[0, 0], [1, 0], [2, 5], [3, 0], [4, 0], [5, 1], [6, 0], [7, 0]], 0.5)
    [[0, 0], [2, 5], [3, 0], [7, 0]]
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    thresholds = effective_areas(points)
    ranked = sorted(thresholds, reverse=True)
    number = int(ratio * len(points))
    if number >= len(ranked):
        return [list(p) for p in points]
    cut = ranked[number]
    return [list(p) for p, t in zip(points, thresholds, strict=False) if t > cut]


def covered_fraction(depth: np.ndarray) -> float:
    """Share of positions with any depth, to 3 places.

    >>> covered_fraction(np.array([0, 1, 2, 0]))
    0.5
    """
    if not len(depth):
        return 0.0
    return round(int(np.count_nonzero(depth)) / len(depth), 3)


def median_depth(depth: np.ndarray) -> int:
    """Median depth, a half rounded up (the UI's ``Math.round``).

    >>> median_depth(np.array([0, 1, 2, 4])), median_depth(np.array([3, 1, 2]))
    (2, 2)
    """
    if not len(depth):
        return 0
    return int(math.floor(float(np.median(depth)) + 0.5))
