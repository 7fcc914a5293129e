"""``create_sample``: validate uploaded reads, compute their quality, store them — Job API only.

Validation and the quality statistics are one streaming pass (`bio.quality` reads every
record through `bio.fastq`'s validating parser), so a bad upload is caught before any
file is stored, and the reads are decompressed once for both.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pymongo.database import Database

from ..bio import fastq, quality
from ..bio.runner import run as run_tool
from ..core import processes, samples
from ..core.auth import Client
from ..core.settings import from_env
from ..core.utils import new_id
from ..workers import queues
from ..workers.runtime import StepFailed, actor, current
from .transfer import finalize_once, send_file
from .workdir import work_dir

STEPS = ["download_uploads", "assess_reads", "compress_reads", "upload_reads", "finalize"]


def start_create_sample(db: Database, client: Client, data: dict) -> dict:
    """Create the sample and its job, then enqueue; a failed enqueue undoes both."""
    job_id = new_id()
    sample = samples.create_sample(db, client, data, job_id)
    context = {"sample_id": sample["_id"], "upload_ids": [f["id"] for f in sample["files"]]}
    try:
        _, key = processes.create_process(
            db,
            "create_sample",
            user_id=client.user_id,
            context=context,
            steps=STEPS,
            workflow=True,
            args={
                "sample_id": sample["_id"],
                "files": sample["files"],
                "paired": sample["paired"],
                "library_type": sample["library_type"],
            },
            process_id=job_id,
        )
        create_sample.send(process_id=job_id, job_key=key)
    except Exception:
        if db.processes.find_one({"_id": job_id}, {"_id": 1}):
            processes.finish(db, job_id, "error", "Could not enqueue the job")
        samples.discard_failed_sample(db, from_env().data_path, sample["_id"], context["upload_ids"])
        raise
    return sample


def assess(files: list[tuple[Path, str]]) -> dict:
    """The quality document of one or two read files given as (path, the user's name).

    Every record is validated on the way; a bad file raises ``StepFailed`` whose message
    names the user's file (not the worker's path), the problem and the record or line.
    """
    try:
        return quality.quality_of_files([path for path, _ in files])
    except ValueError as error:
        message = str(error)
        for path, name in files:
            message = message.replace(str(path), name)
        raise StepFailed(message) from None


def gzip_reads(source: Path, target: Path, threads: int, timeout: float, cancel, keep: bool = False) -> None:
    """Make ``target`` a gzipped copy of ``source``: renamed if already gzipped, else pigz (or gzip).

    A plain ``source`` is removed afterwards unless ``keep``.
    """
    if fastq.is_gzipped(source):
        fastq.gzip_copy(source, target, move=True, check=False)  # already read to the end by assess_reads
        return
    partial = target.with_name(target.name + ".partial")
    if shutil.which("pigz"):
        with open(partial, "wb") as out:
            run_tool(["pigz", "-p", str(threads), "-6", "-c", str(source)], stdout=out, timeout=timeout, cancel=cancel)
        os.replace(partial, target)
    else:
        fastq.gzip_copy(source, target)
    if not keep:
        source.unlink()


@actor(queue_name=queues.SAMPLES, max_retries=2, time_limit=12 * 3600 * 1000)
def create_sample(process_id: str, job_key: str) -> None:
    run = current()
    job = run.job
    settings = from_env()
    sample_id = run.context["sample_id"]
    upload_ids = run.context["upload_ids"]

    if job.get(f"/api/samples/{sample_id}")["ready"]:
        return  # a redelivered message of a run that finished everything but its report

    with work_dir(settings, process_id) as work:
        uploads: list[tuple[Path, str]] = []  # (local copy, the user's file name)
        quality_document: dict = {}

        def download_uploads():
            """Download the uploaded read files."""
            names = [_upload_name(run, upload_id) for upload_id in upload_ids]
            for number, (upload_id, name) in enumerate(zip(upload_ids, names, strict=False), start=1):
                target = work / f"upload_{number}"
                job.download(f"/api/uploads/{upload_id}", target)
                uploads.append((target, name if names.count(name) == 1 else f"{name} (file {number})"))
                run.check_cancelled()

        def assess_reads():
            """Validate every record and compute the quality document in one pass."""
            quality_document.update(assess(uploads))

        def compress_reads():
            """Gzip the reads (or rename gzipped uploads) as reads_1.fq.gz and reads_2.fq.gz."""
            for (path, _), name in zip(uploads, samples.READ_NAMES, strict=False):
                gzip_reads(path, work / name, settings.proc, settings.tool_timeout, run.cancel)

        def upload_reads():
            """Upload the read files to the sample."""
            for _, name in zip(uploads, samples.READ_NAMES, strict=False):
                send_file(job, "PUT", f"/api/samples/{sample_id}/reads/{name}", work / name)
                run.check_cancelled()

        def finalize():
            """Record the quality and mark the sample ready."""
            finalize_once(job, f"/api/samples/{sample_id}", {"quality": quality_document})

        run.run_steps([download_uploads, assess_reads, compress_reads, upload_reads, finalize])


def _upload_name(run, upload_id: str) -> str:
    """The user's name of an upload, from the job's args, for error messages."""
    for entry in run.document.get("args", {}).get("files", []):
        if entry["id"] == upload_id:
            return entry["name"]
    return upload_id
