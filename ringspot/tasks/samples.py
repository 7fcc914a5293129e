"""``create_sample``: validate uploaded reads, compute their quality, store them — Job API only.

Validation and the quality statistics are one streaming pass (`bio.quality` reads every
record through `bio.fastq`'s validating parser), so a bad upload is caught before any
file is stored, and the reads are decompressed once for both. Two files declared mates must
share read names. A small-RNA library's adapter is found (or taken from the sample) and the
reads trimmed once, so the quality document says what trimming leaves before any analysis runs;
the reads are stored untrimmed and trimmed again before each mapping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..bio import fastq, quality, trim
from ..bio.runner import run as run_tool
from ..core import samples
from ..core.auth import Client
from ..core.db import Database
from ..core.settings import from_env
from ..core.utils import new_id
from ..workers import queues
from ..workers.runtime import JobState, StepFailed, Workflow, actor, current, start_process
from .transfer import finalize_once, send_file
from .workdir import work_dir


@dataclass
class SampleRun(JobState):
    """A ``create_sample`` run: the uploads to read and the quality found in them."""

    sample_id: str = ""
    upload_ids: list[str] = field(default_factory=list)
    #: Local copies of the uploads, with the user's file names for messages.
    uploads: list[tuple[Path, str]] = field(default_factory=list)
    quality: dict = field(default_factory=dict)


CREATE_SAMPLE: Workflow[SampleRun] = Workflow("create_sample", job=True)


def start_create_sample(db: Database, client: Client, data: dict) -> dict:
    """Create the sample and its job, then enqueue; a failed enqueue removes both."""
    job_id = new_id()
    sample = samples.create_sample(db, client, data, job_id)
    upload_ids = [f["id"] for f in sample["files"]]
    start_process(
        db,
        create_sample,
        CREATE_SAMPLE,
        process_id=job_id,
        user_id=client.user_id,
        context={"sample_id": sample["_id"], "upload_ids": upload_ids},
        args={
            "sample_id": sample["_id"],
            "files": sample["files"],
            "paired": sample["paired"],
            "library_type": sample["library_type"],
            "adapter": sample.get("adapter"),
        },
        undo=lambda: samples.discard_failed_sample(db, from_env().data_path, sample["_id"], upload_ids),
    )
    return sample


def assess(files: list[tuple[Path, str]], after_block: Callable[[], None] | None = None) -> dict:
    """The quality document of one or two read files given as (path, the user's name).

    Every record is validated on the way; a bad file raises ``StepFailed`` whose message
    names the user's file (not the worker's path), the problem and the record or line.
    """
    try:
        return quality.quality_of_files([path for path, _ in files], after_block)
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


@CREATE_SAMPLE.step
def download_uploads(state: SampleRun) -> None:
    """Download the uploaded read files."""
    names = [_upload_name(state, upload_id) for upload_id in state.upload_ids]
    for number, (upload_id, name) in enumerate(zip(state.upload_ids, names, strict=False), start=1):
        target = state.work / f"upload_{number}"
        state.job.download(f"/api/uploads/{upload_id}", target)
        state.uploads.append((target, name if names.count(name) == 1 else f"{name} (file {number})"))
        state.check_cancelled()


@CREATE_SAMPLE.step
def assess_reads(state: SampleRun) -> None:
    """Validate every record and compute the quality document in one pass; mates must share read names."""
    state.quality = assess(state.uploads, state.check_cancelled)
    if len(state.uploads) == 2:
        check_mates(state.uploads)


def check_mates(uploads: list[tuple[Path, str]]) -> None:
    """Fail, naming both files, when two files declared mates share no read name (two lanes, two samples)."""
    (path_1, name_1), (path_2, name_2) = uploads
    try:
        fastq.check_mates_share_names(path_1, path_2, labels=(name_1, name_2))
    except ValueError as error:
        raise StepFailed(str(error)) from None


@CREATE_SAMPLE.step
def summarize_trimming(state: SampleRun) -> None:
    """Small-RNA libraries: find the adapter, trim the reads once and record what trimming leaves."""
    if state.args.get("library_type") != "srna":
        return
    paths = [path for path, _ in state.uploads]
    given = state.args.get("adapter")
    detection = trim.detect_adapter(paths[0])
    adapter = given or detection.adapter
    _, summary = trim.trim_files(
        paths,
        state.work / "trimming",
        adapter=adapter,
        cores=state.settings.proc,
        timeout=state.settings.tool_timeout,
        cancel=state.cancel,
    )
    summary.kit = trim.GIVEN if given else detection.kit
    state.quality["trimming"] = summary.as_dict()
    state.quality["warnings"] = [] if given else trim.srna_warnings(detection)
    shutil.rmtree(state.work / "trimming", ignore_errors=True)


@CREATE_SAMPLE.step
def compress_reads(state: SampleRun) -> None:
    """Gzip the reads (or rename gzipped uploads) as reads_1.fq.gz and reads_2.fq.gz."""
    settings = state.settings
    for (path, _), name in zip(state.uploads, samples.READ_NAMES, strict=False):
        gzip_reads(path, state.work / name, settings.proc, settings.tool_timeout, state.cancel)


@CREATE_SAMPLE.step
def upload_reads(state: SampleRun) -> None:
    """Upload the read files to the sample."""
    for _, name in zip(state.uploads, samples.READ_NAMES, strict=False):
        send_file(state.job, "PUT", f"/api/samples/{state.sample_id}/reads/{name}", state.work / name)
        state.check_cancelled()


@CREATE_SAMPLE.step
def finalize(state: SampleRun) -> None:
    """Record the quality and mark the sample ready."""
    finalize_once(state.job, f"/api/samples/{state.sample_id}", {"quality": state.quality})


def _upload_name(state: SampleRun, upload_id: str) -> str:
    """The user's name of an upload, from the job's args, for error messages."""
    for entry in state.args.get("files", []):
        if entry["id"] == upload_id:
            return entry["name"]
    return upload_id


@actor(queue_name=queues.SAMPLES, max_retries=2, time_limit=12 * 3600 * 1000)
def create_sample(process_id: str, job_key: str) -> None:
    run, settings = current(), from_env()
    with work_dir(settings, process_id) as work:
        state = SampleRun(run, settings, work, sample_id=run.context["sample_id"], upload_ids=run.context["upload_ids"])
        if state.job.get(f"/api/samples/{state.sample_id}")["ready"]:
            return  # a redelivered message of a run that finished everything but its report
        CREATE_SAMPLE.run(state)
