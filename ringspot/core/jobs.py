"""What happens on the server when a job ends or is cancelled: each workflow's clean-up."""

from __future__ import annotations

from pymongo.database import Database

from . import alignments, analyses, indexes, processes, samples, subtractions


def _cleanup(db: Database, data_path: str, job: dict) -> None:
    """Undo what a failed or cancelled job left half-made (a failed alignment is marked failed instead)."""
    context = job.get("context", {})
    if job["workflow"] == "build_index":
        indexes.discard_failed_build(db, data_path, context["index_id"])
    elif job["workflow"] == "create_sample":
        samples.discard_failed_sample(db, data_path, context["sample_id"], context.get("upload_ids", []))
    elif job["workflow"] == "create_subtraction":
        subtractions.discard_failed_subtraction(db, data_path, context["subtraction_id"], context.get("upload_ids", []))
    elif job["workflow"] in ("pathoscope_bowtie", "nuvs"):
        analyses.discard_unfinished(db, data_path, context["analysis_id"])
    elif job["workflow"] == "alignment":
        # Kept, not deleted: the seed's ``complete: true, success: false`` and the reason must stay visible.
        alignments.mark_failed(db, data_path, context["alignment_id"], alignments.failure_message(job))


def finish_job(db: Database, data_path: str, job_id: str, state: str, error: str | None) -> None:
    """End a process (job or not); a job that did not complete is cleaned up."""
    processes.finish(db, job_id, state, error)
    doc = processes.get_process_or_404(db, job_id)
    if state in ("error", "cancelled") and "workflow" in doc:
        _cleanup(db, data_path, doc)


def cancel(db: Database, data_path: str, process_id: str) -> dict:
    """Cancel a process; a job cancelled before it started is cleaned up at once."""
    doc = processes.request_cancel(db, process_id)
    if doc["state"] == "cancelled" and "workflow" in doc:
        _cleanup(db, data_path, doc)
    return doc
