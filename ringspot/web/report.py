"""What the analysis report shows, drawn from the formatted analysis the API serves.

The diagnosis is the verdict where the analysis has one; an analysis finalized before
diagnoses existed shows its Pathoscope figures per OTU instead, without calls.
"""

from __future__ import annotations

#: Calls whose viruses get a coverage plot.
PLOTTED_CALLS = ("detected", "possible")
#: Without calls, the OTUs with most reads get a plot (a long tail of weak hits would bury them).
PLOTTED_WITHOUT_CALLS = 5
#: Width of the ORF map's drawing, in its own units.
MAP_WIDTH = 1000
LANE_HEIGHT = 14


def pathoscope_otus(analysis: dict) -> list[dict]:
    results = analysis.get("results")
    if analysis.get("workflow") != "pathoscope_bowtie" or not isinstance(results, dict):
        return []
    return results.get("hits") or []


def diagnosis_rows(analysis: dict) -> list[dict]:
    """Rows of the diagnosis table: the analysis's diagnosis, else one row per OTU of its hits."""
    if analysis.get("diagnosis"):
        return list(analysis["diagnosis"])
    rows = []
    for otu in pathoscope_otus(analysis):
        best = max(otu.get("isolates") or [{}], key=lambda isolate: isolate.get("pi", 0))
        rows.append(
            {
                "id": otu["id"],
                "name": otu.get("name") or otu["id"],
                "abbreviation": otu.get("abbreviation", ""),
                "call": None,
                "reasons": [],
                "pi": otu.get("pi"),
                "reads": otu.get("reads"),
                "breadth": otu.get("coverage"),
                "mean_depth": None,
                "median_depth": otu.get("depth"),
                "segments": None,
                "isolate": {"id": best.get("id"), "source_name": best.get("source_name", "")},
            }
        )
    return rows


def plotted_rows(analysis: dict) -> list[dict]:
    rows = diagnosis_rows(analysis)
    if analysis.get("diagnosis"):
        return [row for row in rows if row.get("call") in PLOTTED_CALLS]
    return sorted(rows, key=lambda row: -(row.get("reads") or 0))[:PLOTTED_WITHOUT_CALLS]


def coverage_panels(analysis: dict) -> list[dict]:
    """One panel per plotted virus: the plots of its isolate's sequences (one per segment)."""
    otus = {otu["id"]: otu for otu in pathoscope_otus(analysis)}
    panels = []
    for row in plotted_rows(analysis):
        otu = otus.get(row["id"])
        if not otu or not otu.get("isolates"):
            continue
        wanted = (row.get("isolate") or {}).get("id")
        isolate = next((i for i in otu["isolates"] if i.get("id") == wanted), None)
        isolate = isolate or max(otu["isolates"], key=lambda i: i.get("pi", 0))
        plots = [
            {
                "id": sequence["id"],
                "label": sequence.get("accession") or sequence["id"],
                "definition": sequence.get("definition") or "",
                "url": f"/api/analyses/{analysis['id']}/hits/{sequence['id']}/coverage.svg",
            }
            for sequence in isolate.get("sequences", [])
        ]
        panels.append({"name": row["name"], "call": row.get("call"), "isolate": isolate, "plots": plots})
    return panels


def orf_map(contig: dict) -> dict:
    """ORFs of a contig laid out in lanes by strand and frame, scaled to ``MAP_WIDTH``."""
    length = max(len(contig.get("sequence") or ""), 1)
    lanes: list[tuple[int, int]] = sorted(
        {(orf.get("strand", 1), orf.get("frame", 0)) for orf in contig.get("orfs", [])}, reverse=True
    )
    shapes = []
    for orf in contig.get("orfs", []):
        start, end = sorted(orf.get("pos") or [0, 0])
        lane = lanes.index((orf.get("strand", 1), orf.get("frame", 0)))
        names = [name for hit in orf.get("hits", []) for name in (hit.get("names") or [hit.get("hit")])]
        shapes.append(
            {
                "x": round(start / length * MAP_WIDTH, 1),
                "width": max(round((end - start) / length * MAP_WIDTH, 1), 2),
                "y": lane * LANE_HEIGHT + 4,
                "forward": orf.get("strand", 1) >= 0,
                "label": f"ORF {orf.get('index', '')}: {start + 1}–{end} ({'+' if orf.get('strand', 1) >= 0 else '−'})"
                + (f", {', '.join(str(n) for n in names[:3])}" if names else ""),
                "annotated": bool(names),
            }
        )
    return {"width": MAP_WIDTH, "height": max(len(lanes), 1) * LANE_HEIGHT + 8, "shapes": shapes, "length": length}
