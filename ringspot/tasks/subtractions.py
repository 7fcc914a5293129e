"""``create_subtraction``: turn an uploaded host FASTA into a Bowtie2 index — Job API only."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from pymongo.database import Database

from ..bio import fasta, fastq
from ..bio.runner import run as run_tool
from ..core import processes, subtractions
from ..core.auth import Client
from ..core.settings import from_env
from ..core.utils import new_id
from ..workers import queues
from ..workers.runtime import StepFailed, actor, current
from .samples import gzip_reads
from .transfer import finalize_once, send_file
from .workdir import work_dir

STEPS = ["download_upload", "compute_gc_and_count", "prepare_fasta", "bowtie_build", "upload_files", "finalize"]


def start_create_subtraction(db: Database, client: Client, name: str, nickname: str, upload_id: str) -> dict:
    """Create the subtraction and its job, then enqueue; a failed enqueue undoes both."""
    job_id = new_id()
    doc = subtractions.create_subtraction(db, client, name, nickname, upload_id, job_id)
    context = {"subtraction_id": doc["_id"], "upload_ids": [upload_id]}
    try:
        _, key = processes.create_process(
            db,
            "create_subtraction",
            user_id=client.user_id,
            context=context,
            steps=STEPS,
            workflow=True,
            args={"subtraction_id": doc["_id"], "file": doc["file"]},
            process_id=job_id,
        )
        create_subtraction.send(process_id=job_id, job_key=key)
    except Exception:
        if db.processes.find_one({"_id": job_id}, {"_id": 1}):
            processes.finish(db, job_id, "error", "Could not enqueue the job")
        subtractions.discard_failed_subtraction(db, from_env().data_path, doc["_id"], [upload_id])
        raise
    return doc


@actor(queue_name=queues.SUBTRACTIONS, max_retries=2, time_limit=24 * 3600 * 1000)
def create_subtraction(process_id: str, job_key: str) -> None:
    run = current()
    job = run.job
    settings = from_env()
    subtraction_id = run.context["subtraction_id"]
    (upload_id,) = run.context["upload_ids"]

    if job.get(f"/api/subtractions/{subtraction_id}")["ready"]:
        return  # a redelivered message of a run that finished everything but its report

    with work_dir(settings, process_id) as work:
        upload = work / "upload"
        plain, packed = work / "subtraction.fa", work / subtractions.FASTA_NAME
        stats: dict = {}

        def download_upload():
            """Download the uploaded FASTA."""
            job.download(f"/api/uploads/{upload_id}", upload)

        def compute_gc_and_count():
            """Validate the FASTA and count its sequences and a, t, g, c, n shares."""
            try:
                stats["count"], stats["gc"] = fasta.nucleotide_composition(upload)
            except ValueError as error:
                name = run.document.get("args", {}).get("file", {}).get("name", upload_id)
                raise StepFailed(str(error).replace(str(upload), name)) from None

        def prepare_fasta():
            """Write subtraction.fa for bowtie2-build and subtraction.fa.gz for download."""
            if fastq.is_gzipped(upload):
                with gzip.open(upload, "rb") as src, open(plain, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                upload.replace(packed)
            else:
                upload.replace(plain)
                gzip_reads(plain, packed, settings.proc, settings.tool_timeout, run.cancel, keep=True)

        def bowtie_build():
            """Build the Bowtie2 index with bowtie2-build."""
            run_tool(
                ["bowtie2-build", "--threads", str(settings.proc), "-f", str(plain), str(work / "subtraction")],
                timeout=settings.tool_timeout,
                cancel=run.cancel,
            )

        def upload_files():
            """Upload subtraction.fa.gz and the six Bowtie2 files."""
            for path in [packed] + sorted(_index_files(work)):
                send_file(job, "POST", f"/api/subtractions/{subtraction_id}/files?name={path.name}", path)
                run.check_cancelled()

        def finalize():
            """Record count and gc and mark the subtraction ready."""
            finalize_once(job, f"/api/subtractions/{subtraction_id}", {"count": stats["count"], "gc": stats["gc"]})

        run.run_steps([download_upload, compute_gc_and_count, prepare_fasta, bowtie_build, upload_files, finalize])


def _index_files(work: Path) -> list[Path]:
    names = set(subtractions.FILE_NAMES) - {subtractions.FASTA_NAME}
    return [path for path in work.iterdir() if path.name in names]
