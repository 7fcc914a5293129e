"""What a scheduler scales worker pools by: jobs per workflow and state."""

from __future__ import annotations

from pymongo.database import Database

from .processes import STATES, WORKFLOWS


def job_counts(db: Database) -> dict[str, dict[str, int]]:
    """``{workflow: {state: n}}`` for every workflow and state, zeros included (a scaler reads a fixed path)."""
    counts = {}
    for workflow in WORKFLOWS:
        # One group per workflow: nx-27017 does not evaluate a compound ``_id`` in ``$group``.
        pipeline: list[dict] = [{"$match": {"workflow": workflow}}, {"$group": {"_id": "$state", "n": {"$sum": 1}}}]
        found = {row["_id"]: row["n"] for row in db.processes.aggregate(pipeline)}
        counts[workflow] = {state: found.get(state, 0) for state in STATES}
    return counts


def reruns(db: Database) -> dict[str, int]:
    """``{process type: runs beyond the first}``: how often work was redone after a worker died."""
    pipeline: list[dict] = [
        {"$match": {"attempts": {"$gt": 1}}},
        {"$group": {"_id": "$type", "attempts": {"$sum": "$attempts"}, "n": {"$sum": 1}}},
    ]
    return {row["_id"]: row["attempts"] - row["n"] for row in db.processes.aggregate(pipeline)}
