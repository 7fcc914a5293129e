"""``create_subtraction``: turn an uploaded host FASTA into a Bowtie2 index — Job API only."""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..bio import fasta, fastq
from ..bio.runner import run as run_tool
from ..core import subtractions
from ..core.auth import Client
from ..core.db import Database
from ..core.settings import from_env
from ..core.utils import new_id
from ..workers import queues
from ..workers.runtime import JobState, StepFailed, Workflow, actor, current, start_process
from .samples import gzip_reads
from .transfer import finalize_once, send_file
from .workdir import work_dir


@dataclass
class SubtractionRun(JobState):
    """A ``create_subtraction`` run: the upload it reads and what it counts in it."""

    subtraction_id: str = ""
    upload_id: str = ""
    count: int = 0
    gc: dict = field(default_factory=dict)

    @property
    def upload(self) -> Path:
        return self.work / "upload"

    @property
    def plain(self) -> Path:
        return self.work / "subtraction.fa"

    @property
    def packed(self) -> Path:
        return self.work / subtractions.FASTA_NAME


CREATE_SUBTRACTION: Workflow[SubtractionRun] = Workflow("create_subtraction", job=True)


def start_create_subtraction(db: Database, client: Client, name: str, nickname: str, upload_id: str) -> dict:
    """Create the subtraction and its job, then enqueue; a failed enqueue removes both."""
    job_id = new_id()
    doc = subtractions.create_subtraction(db, client, name, nickname, upload_id, job_id)
    start_process(
        db,
        create_subtraction,
        CREATE_SUBTRACTION,
        process_id=job_id,
        user_id=client.user_id,
        context={"subtraction_id": doc["_id"], "upload_ids": [upload_id]},
        args={"subtraction_id": doc["_id"], "file": doc["file"]},
        undo=lambda: subtractions.discard_failed_subtraction(db, from_env().data_path, doc["_id"], [upload_id]),
    )
    return doc


@CREATE_SUBTRACTION.step
def download_upload(state: SubtractionRun) -> None:
    """Download the uploaded FASTA."""
    state.job.download(f"/api/uploads/{state.upload_id}", state.upload)


@CREATE_SUBTRACTION.step
def compute_gc_and_count(state: SubtractionRun) -> None:
    """Validate the FASTA and count its sequences and a, t, g, c, n shares."""
    try:
        state.count, state.gc = fasta.nucleotide_composition(state.upload)
    except ValueError as error:
        name = state.args.get("file", {}).get("name", state.upload_id)
        raise StepFailed(str(error).replace(str(state.upload), name)) from None


@CREATE_SUBTRACTION.step
def prepare_fasta(state: SubtractionRun) -> None:
    """Write subtraction.fa for bowtie2-build and subtraction.fa.gz for download."""
    if fastq.is_gzipped(state.upload):
        with gzip.open(state.upload, "rb") as src, open(state.plain, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        state.upload.replace(state.packed)
    else:
        state.upload.replace(state.plain)
        settings = state.settings
        gzip_reads(state.plain, state.packed, settings.proc, settings.tool_timeout, state.cancel, keep=True)


@CREATE_SUBTRACTION.step
def bowtie_build(state: SubtractionRun) -> None:
    """Build the Bowtie2 index with bowtie2-build."""
    run_tool(
        [
            "bowtie2-build",
            "--threads",
            str(state.settings.proc),
            "-f",
            str(state.plain),
            str(state.work / "subtraction"),
        ],
        timeout=state.settings.tool_timeout,
        cancel=state.cancel,
    )


@CREATE_SUBTRACTION.step
def upload_files(state: SubtractionRun) -> None:
    """Upload subtraction.fa.gz and the six Bowtie2 files."""
    for path in [state.packed] + sorted(_index_files(state.work)):
        send_file(state.job, "POST", f"/api/subtractions/{state.subtraction_id}/files?name={path.name}", path)
        state.check_cancelled()


@CREATE_SUBTRACTION.step
def finalize(state: SubtractionRun) -> None:
    """Record count and gc and mark the subtraction ready."""
    finalize_once(state.job, f"/api/subtractions/{state.subtraction_id}", {"count": state.count, "gc": state.gc})


def _index_files(work: Path) -> list[Path]:
    names = set(subtractions.FILE_NAMES) - {subtractions.FASTA_NAME}
    return [path for path in work.iterdir() if path.name in names]


@actor(queue_name=queues.SUBTRACTIONS, max_retries=2, time_limit=24 * 3600 * 1000)
def create_subtraction(process_id: str, job_key: str) -> None:
    run, settings = current(), from_env()
    (upload_id,) = run.context["upload_ids"]
    with work_dir(settings, process_id) as work:
        state = SubtractionRun(run, settings, work, subtraction_id=run.context["subtraction_id"], upload_id=upload_id)
        if state.job.get(f"/api/subtractions/{state.subtraction_id}")["ready"]:
            return  # a redelivered message of a run that finished everything but its report
        CREATE_SUBTRACTION.run(state)
