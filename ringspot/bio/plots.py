"""Coverage and quality plots as SVG or PNG bytes, drawn with matplotlib's Agg canvas.

Pure functions of a depth array and a title. The figure is a ``Figure`` with its own canvas,
never ``pyplot``, so no global state is touched and threads of a web process may draw at once.
Past ``MAX_BINS`` positions the genome is cut into bins; each bin shows the range of its depths
(a light band from minimum to maximum, so a short gap still reaches zero) and the area under
their mean, which keeps an SVG of a long genome small and looks the same at the plot's resolution.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FORMATS = ("png", "svg")
#: Figure size in inches and PNG resolution: 1000 x 300 pixels.
SIZE = (10.0, 3.0)
DPI = 100
#: Positions drawn one by one up to this length; longer genomes are binned.
MAX_BINS = 1000
LINE_COLOUR = "#1f5f99"
FILL_COLOUR = "#8fb8de"
BAND_COLOUR = "#d3e3f2"

#: Depths per position: a list or a NumPy array.
Depth = Sequence[int] | np.ndarray

# Text layout and font lookup in matplotlib share caches that are not thread-safe.
_lock = threading.Lock()


def coverage_summary(depth: Depth) -> tuple[float, float]:
    """(breadth, mean depth): the share of positions with any depth and the average depth.

    >>> coverage_summary([0, 2, 4, 0])
    (0.5, 1.5)
    >>> coverage_summary([])
    (0.0, 0.0)
    """
    values = np.asarray(depth)
    if not len(values):
        return 0.0, 0.0
    return float(np.count_nonzero(values)) / len(values), float(values.mean())


def coverage_title(label: str, depth: Depth) -> str:
    """The plot's title: ``label``, breadth of coverage and mean depth.

    >>> coverage_title("NC_005266", [0, 3, 3, 3])
    'NC_005266 · breadth 75.0% · mean depth 2.2×'
    """
    breadth, mean = coverage_summary(depth)
    return f"{label} · breadth {breadth:.1%} · mean depth {mean:.1f}×"


def binned(depth: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(first position, min, max, mean) of ``bins`` near-equal runs of positions.

    >>> [a.tolist() for a in binned(np.array([0, 4, 2, 2, 6, 1]), 2)]
    [[0, 3], [0, 1], [4, 6], [2.0, 3.0]]
    """
    edges = np.linspace(0, len(depth), bins + 1).astype(np.int64)
    starts = edges[:-1]
    counts = np.diff(edges)
    mins = np.minimum.reduceat(depth, starts)
    maxs = np.maximum.reduceat(depth, starts)
    means = np.add.reduceat(depth.astype(np.float64), starts) / counts
    return starts, mins, maxs, means


def coverage_plot(depth: Depth, title: str, fmt: str = "png") -> bytes:
    """Depth along the genome (positions from 1) as ``png`` (1000 x 300 pixels) or ``svg`` bytes.

    >>> coverage_plot([0, 1, 2, 1], "tiny")[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    >>> b"<svg" in coverage_plot([0, 1, 2, 1], "tiny", "svg")[:400]
    True
    """
    if fmt not in FORMATS:
        raise ValueError(f"plot format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    values = np.asarray(depth, dtype=np.int64)
    if values.ndim != 1:
        raise ValueError(f"depth must be one-dimensional, got shape {values.shape}")
    if (values < 0).any():
        raise ValueError("depth must not be negative")
    figure = Figure(figsize=SIZE, dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if len(values) > MAX_BINS:
        starts, mins, maxs, means = binned(values, MAX_BINS)
        x = starts + 1
        axes.fill_between(x, mins, maxs, step="post", color=BAND_COLOUR, linewidth=0)
        axes.fill_between(x, means, step="post", color=FILL_COLOUR, linewidth=0)
        axes.step(x, means, where="post", color=LINE_COLOUR, linewidth=0.8)
    elif len(values):
        x = np.arange(1, len(values) + 1)
        axes.fill_between(x, values, step="mid", color=FILL_COLOUR, linewidth=0)
        axes.step(x, values, where="mid", color=LINE_COLOUR, linewidth=0.8)
    axes.set_xlim(1, max(len(values), 2))
    axes.set_ylim(0, max(int(values.max()) if len(values) else 0, 1) * 1.05)
    axes.set_xlabel("position")
    axes.set_ylabel("depth")
    axes.set_title(title, fontsize=11)
    axes.spines[["top", "right"]].set_visible(False)
    figure.subplots_adjust(left=0.07, right=0.98, top=0.88, bottom=0.16)
    buffer = io.BytesIO()
    # No creation date in the file: the same depths give the same bytes.
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with _lock, rc_context({"svg.hashsalt": "ringspot"}):  # fixed ids inside the SVG too
        figure.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
    return buffer.getvalue()


def quality_plot(bases: Sequence[Sequence[float]], title: str = "Quality per cycle") -> bytes:
    """Per-cycle quality (rows of mean, median, lower/upper quartile, 10th/90th percentile) as PNG.

    >>> quality_plot([[30, 31, 28, 33, 20, 35], [29, 30, 27, 32, 19, 34]])[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    rows = np.asarray(bases, dtype=np.float64).reshape(-1, 6)
    figure = Figure(figsize=SIZE, dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    cycles = np.arange(1, len(rows) + 1)
    axes.fill_between(cycles, rows[:, 4], rows[:, 5], color=BAND_COLOUR, linewidth=0, label="10th–90th percentile")
    axes.fill_between(cycles, rows[:, 2], rows[:, 3], color=FILL_COLOUR, linewidth=0, label="quartiles")
    axes.plot(cycles, rows[:, 0], color=LINE_COLOUR, linewidth=1.2, label="mean")
    axes.set_xlim(1, max(len(rows), 2))
    axes.set_ylim(0, max(float(rows.max()) if len(rows) else 0.0, 40.0) * 1.05)
    axes.set_xlabel("cycle")
    axes.set_ylabel("Phred quality")
    axes.set_title(title, fontsize=11)
    axes.legend(loc="lower left", fontsize=8, frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    figure.subplots_adjust(left=0.07, right=0.98, top=0.88, bottom=0.16)
    buffer = io.BytesIO()
    with _lock:
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def cluster_order(values: np.ndarray) -> list[int]:
    """Row order that puts rows of similar values together (average-linkage clustering).

    >>> cluster_order(np.array([[9.0, 0.0], [0.0, 9.0], [8.0, 1.0]]))
    [1, 0, 2]
    """
    if len(values) < 3:
        return list(range(len(values)))
    from scipy.cluster.hierarchy import leaves_list, linkage

    return [int(i) for i in leaves_list(linkage(values, method="average", metric="euclidean"))]


#: Marks drawn in a heatmap cell for each call.
CALL_MARKS = {"detected": "●", "possible": "○"}


def diagnosis_heatmap(
    viruses: Sequence[str], samples: Sequence[str], reads: np.ndarray, calls: Sequence[Sequence[str]], fmt: str = "png"
) -> bytes:
    """Viruses (rows, clustered) by samples (columns), cells coloured by log10 reads and marked by call.

    >>> png = diagnosis_heatmap(["A virus"], ["s1", "s2"], np.array([[120, 0]]), [["detected", "not_detected"]])
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    if fmt not in FORMATS:
        raise ValueError(f"plot format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    shading = np.log10(np.asarray(reads, dtype=np.float64).reshape(len(viruses), len(samples)) + 1)
    order = cluster_order(shading)
    width = min(4.0 + 0.6 * len(samples), 30.0)
    height = min(1.5 + 0.3 * len(viruses), 40.0)
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(shading[order] if len(order) else shading, cmap="Blues", aspect="auto", vmin=0)
    for row, virus_index in enumerate(order):
        for column in range(len(samples)):
            mark = CALL_MARKS.get(calls[virus_index][column], "")
            if mark:
                colour = "white" if shading[virus_index, column] > shading.max() * 0.6 else "black"
                axes.text(column, row, mark, ha="center", va="center", color=colour, fontsize=9)
    axes.set_xticks(range(len(samples)), labels=list(samples), rotation=45, ha="right", fontsize=8)
    axes.set_yticks(range(len(order)), labels=[viruses[i] for i in order], fontsize=8)
    colourbar = figure.colorbar(image, ax=axes, fraction=0.03)
    colourbar.set_label("log10(reads + 1)")
    axes.set_title("● detected   ○ possible", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with _lock, rc_context({"svg.hashsalt": "ringspot"}):
        figure.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
    return buffer.getvalue()
