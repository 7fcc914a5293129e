"""A diagnosis per OTU from Pathoscope's reassignment: a call a lab can sign, with its evidence.

pi says how the EM shares reads out; it is not a verdict. A virus that is really in a sample
leaves reads along its whole genome, so the call rests on three figures of the OTU's best
isolate (the one holding most of the OTU's reads), all segments end to end:

* ``reads``: reads actually assigned to the OTU after reassignment (best hits, a read tied
  between references split between them), never pi times the read count;
* ``breadth``: the fraction of the isolate's genome covered by at least one read;
* ``evenness``: that breadth over the breadth reads of the same number and length would
  reach if they fell at random (Lander-Waterman: ``1 - exp(-mean_depth)``; inStrain weighs
  breadth against a like expectation). Near 1, reads spread like a real genome's; near 0 they
  stack on a few stretches, as reads of a conserved or host-like region do.

The rule (thresholds in :class:`Thresholds`, settings of the server):

* ``detected``: reads >= ``min_reads``, breadth >= ``min_breadth`` and evenness >=
  ``min_evenness``;
* ``not_detected``: fewer than ``min_possible_reads`` reads, or reads stacked (evenness <
  ``min_evenness``) on less than ``min_breadth`` of the genome;
* ``possible``: reads spread like a real genome's but too few, or too little of it covered,
  to call it (a low-titre virus, or a relative of the reference isolate).

Every row carries the reasons behind its call, in words a lab can check.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np

DETECTED, POSSIBLE, NOT_DETECTED = "detected", "possible", "not_detected"
CALL_ORDER = {DETECTED: 0, POSSIBLE: 1, NOT_DETECTED: 2}


@dataclass(frozen=True)
class Thresholds:
    """The figures a call needs; defaults measured on the real samples (see the README)."""

    #: Reads assigned to the OTU for a ``detected`` call.
    min_reads: int = 50
    #: Fraction of the best isolate's genome covered for a ``detected`` call.
    min_breadth: float = 0.1
    #: Observed over expected breadth: below it reads are stacked, not spread along a genome.
    min_evenness: float = 0.3
    #: Reads for a ``possible`` call: one read alone is a chance hit, not evidence.
    min_possible_reads: int = 2

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Isolate:
    id: str
    source_name: str
    sequence_ids: tuple[str, ...]


@dataclass(frozen=True)
class Otu:
    id: str
    name: str
    abbreviation: str
    isolates: tuple[Isolate, ...]


def catalog(otus: Iterable[Mapping]) -> dict[str, Otu]:
    """Return ``{otu_id: Otu}`` from OTU documents of a reference file (isolates with sequences).

    >>> otu = {"_id": "o1", "name": "Tobacco mosaic virus", "abbreviation": "TMV",
    ...        "isolates": [{"id": "i1", "source_type": "isolate", "source_name": "A",
    ...                      "sequences": [{"_id": "s1"}, {"_id": "s2"}]}]}
    >>> catalog([otu])["o1"].isolates
    (Isolate(id='i1', source_name='A', sequence_ids=('s1', 's2')),)
    """
    return {
        otu["_id"]: Otu(
            id=otu["_id"],
            name=otu.get("name") or "",
            abbreviation=otu.get("abbreviation") or "",
            isolates=tuple(
                Isolate(
                    id=isolate["id"],
                    source_name=isolate.get("source_name") or "",
                    sequence_ids=tuple(sequence["_id"] for sequence in isolate["sequences"]),
                )
                for isolate in otu["isolates"]
            ),
        )
        for otu in otus
    }


@dataclass(frozen=True)
class Evidence:
    """What the call of one OTU rests on: its best isolate's figures."""

    reads: int
    pi: float
    isolate: Isolate
    breadth: float
    evenness: float
    mean_depth: float
    median_depth: float
    segments_covered: int
    segments_total: int


def expected_breadth(mean_depth: float) -> float:
    """Breadth that reads falling at random reach at ``mean_depth`` (Lander-Waterman).

    >>> round(expected_breadth(1.0), 3), expected_breadth(0.0)
    (0.632, 0.0)
    """
    return 1.0 - math.exp(-mean_depth)


def evenness(breadth: float, mean_depth: float) -> float:
    """Observed over expected breadth, at most 1 (0 without depth).

    >>> evenness(0.012, 0.23) < 0.1, evenness(0.0101, 0.0101) == 1.0
    (True, True)
    """
    expected = expected_breadth(mean_depth)
    if expected <= 0:
        return 0.0
    return min(1.0, breadth / expected)


def isolate_depth(isolate: Isolate, coverage: Mapping[str, np.ndarray], lengths: Mapping[str, int]) -> list[np.ndarray]:
    """Depth along each sequence of ``isolate``; a sequence no read reached is all zeros."""
    return [
        np.asarray(coverage[sequence_id]) if sequence_id in coverage else np.zeros(int(lengths[sequence_id]), np.int64)
        for sequence_id in isolate.sequence_ids
    ]


def gather_evidence(
    otu: Otu,
    reads_by_ref: Mapping[str, float],
    pi_by_ref: Mapping[str, float],
    coverage: Mapping[str, np.ndarray],
    lengths: Mapping[str, int],
) -> Evidence:
    """Sum the OTU's reads and pi; measure its best isolate (most reads, then widest cover)."""

    def isolate_reads(isolate: Isolate) -> float:
        return sum(reads_by_ref.get(sequence_id, 0.0) for sequence_id in isolate.sequence_ids)

    depths = {isolate.id: isolate_depth(isolate, coverage, lengths) for isolate in otu.isolates}

    def covered(isolate: Isolate) -> int:
        return sum(int(np.count_nonzero(depth)) for depth in depths[isolate.id])

    best = max(otu.isolates, key=lambda isolate: (isolate_reads(isolate), covered(isolate)))
    segments = depths[best.id]
    genome = np.concatenate(segments) if segments else np.zeros(0, np.int64)
    size = len(genome) or 1
    breadth = int(np.count_nonzero(genome)) / size
    mean_depth = float(genome.sum()) / size
    sequence_ids = [sequence_id for isolate in otu.isolates for sequence_id in isolate.sequence_ids]
    return Evidence(
        reads=round(sum(reads_by_ref.get(sequence_id, 0.0) for sequence_id in sequence_ids)),
        pi=sum(pi_by_ref.get(sequence_id, 0.0) for sequence_id in sequence_ids),
        isolate=best,
        breadth=breadth,
        evenness=evenness(breadth, mean_depth),
        mean_depth=mean_depth,
        median_depth=float(np.median(genome)) if len(genome) else 0.0,
        segments_covered=sum(1 for depth in segments if np.any(depth)),
        segments_total=len(segments),
    )


def _percent(fraction: float) -> str:
    """``0.0081`` -> ``'0.8 %'``."""
    return f"{fraction * 100:.1f} %"


def call(evidence: Evidence, thresholds: Thresholds) -> tuple[str, list[str]]:
    """Return the call and its reasons (each figure against its threshold)."""
    if evidence.reads < thresholds.min_possible_reads:
        return NOT_DETECTED, [f"reads {evidence.reads} < {thresholds.min_possible_reads}"]
    enough_reads = evidence.reads >= thresholds.min_reads
    wide = evidence.breadth >= thresholds.min_breadth
    spread = evidence.evenness >= thresholds.min_evenness
    reasons = [
        f"reads {evidence.reads} {'>=' if enough_reads else '<'} {thresholds.min_reads}",
        f"breadth {_percent(evidence.breadth)} {'>=' if wide else '<'} {_percent(thresholds.min_breadth)}",
        f"evenness {evidence.evenness:.2f} {'>=' if spread else '<'} {thresholds.min_evenness:.2f}",
    ]
    if evidence.segments_covered < evidence.segments_total:
        reasons.append(f"{evidence.segments_covered} of {evidence.segments_total} segments covered")
    if enough_reads and wide and spread:
        return DETECTED, reasons
    if not spread and not wide:
        return NOT_DETECTED, reasons
    return POSSIBLE, reasons


def diagnosis_row(otu: Otu, evidence: Evidence, thresholds: Thresholds) -> dict:
    """The row of one OTU as the analysis document carries it."""
    verdict, reasons = call(evidence, thresholds)
    return {
        "id": otu.id,
        "name": otu.name,
        "abbreviation": otu.abbreviation,
        "call": verdict,
        "reasons": reasons,
        "pi": evidence.pi,
        "reads": evidence.reads,
        "breadth": round(evidence.breadth, 4),
        "evenness": round(evidence.evenness, 3),
        "mean_depth": round(evidence.mean_depth, 2),
        "median_depth": evidence.median_depth,
        "segments": {"covered": evidence.segments_covered, "total": evidence.segments_total},
        "isolate": {"id": evidence.isolate.id, "source_name": evidence.isolate.source_name},
    }


def order_rows(rows: list[dict]) -> list[dict]:
    """Detected first, then possible, then not detected; most reads first within each."""
    return sorted(rows, key=lambda row: (CALL_ORDER[row["call"]], -row["reads"], -row["pi"], row["id"]))


def diagnose(
    otus: Mapping[str, Otu],
    sequence_otu_map: Mapping[str, str],
    reads_by_ref: Mapping[str, float],
    pi_by_ref: Mapping[str, float],
    coverage: Mapping[str, np.ndarray],
    lengths: Mapping[str, int],
    thresholds: Thresholds | None = None,
) -> list[dict]:
    """One row per OTU any read aligned to, ordered as :func:`order_rows` says.

    ``reads_by_ref``/``pi_by_ref``/``coverage`` hold the reassignment's figures per reference
    sequence; ``lengths`` the length of every sequence of the OTUs' isolates.
    """
    thresholds = thresholds or Thresholds()
    otu_ids = {sequence_otu_map[ref] for ref in coverage if ref in sequence_otu_map}
    rows = []
    for otu_id in otu_ids:
        otu = otus[otu_id]
        evidence = gather_evidence(otu, reads_by_ref, pi_by_ref, coverage, lengths)
        rows.append(diagnosis_row(otu, evidence, thresholds))
    return order_rows(rows)
