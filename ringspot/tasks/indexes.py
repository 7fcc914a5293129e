"""``build_index``: turn a reference's manifest into a Bowtie2 index, through the Job API only."""

from __future__ import annotations

import gzip
import json
import shutil
from concurrent.futures import ThreadPoolExecutor

from pymongo.database import Database

from ..bio import reference as reference_format
from ..bio.runner import run as run_tool
from ..core import indexes, processes
from ..core.settings import from_env
from ..core.utils import new_id
from ..workers import queues
from ..workers.runtime import actor, current
from .transfer import finalize_once, send_file
from .workdir import work_dir

STEPS = ["download_otus", "write_fasta", "bowtie_build", "upload_files", "finalize"]
#: gzip level of the files an index keeps: level 1 packs 26 MB of OTUs in 0.2 s (level 9: 9 s).
PACK_LEVEL = 1


def start_build(db: Database, ref_id: str, user_id: str) -> dict:
    """Create the index and its job, then enqueue; a failed enqueue undoes both."""
    job_id = new_id()
    reference = db.refs.find_one({"_id": ref_id}) or {}
    index = indexes.create_index(db, ref_id, user_id, job_id)
    context = {"ref_id": ref_id, "index_id": index["_id"]}
    _, key = processes.create_process(
        db,
        "build_index",
        user_id=user_id,
        context=context,
        steps=STEPS,
        workflow=True,
        args={
            "index_id": index["_id"],
            "ref_id": ref_id,
            "index_version": index["version"],
            "ref_name": reference.get("name"),
            "data_type": reference.get("data_type") or "genome",
            "organism": reference.get("organism") or "",
        },
        process_id=job_id,
    )
    try:
        build_index.send(process_id=job_id, job_key=key)
    except Exception:
        processes.finish(db, job_id, "error", "Could not enqueue the build")
        indexes.discard_failed_build(db, from_env().data_path, index["_id"])
        raise
    return index


@actor(queue_name=queues.INDEXES, max_retries=2, time_limit=12 * 3600 * 1000)
def build_index(process_id: str, job_key: str) -> None:
    run = current()
    job = run.job
    settings = from_env()
    index_id = run.context["index_id"]

    with work_dir(settings, process_id) as work:
        otus_path, fasta, json_path = work / "otus.json.gz", work / "reference.fa", work / "reference.json.gz"

        def download_otus():
            """Fetch the manifest's OTUs, patched to their manifest versions."""
            job.download(f"/api/indexes/{index_id}/files/otus.json.gz", otus_path)

        otus: list[dict] = []

        def write_fasta():
            """Write the default isolates' sequences as FASTA."""
            with gzip.open(otus_path, "rt") as handle:
                otus.extend(json.load(handle))
            with open(fasta, "w") as handle:
                reference_format.write_fasta(reference_format.iter_default_isolate_fasta(otus), handle)

        def pack_files():
            # Runs beside bowtie2-build: zlib releases the GIL, so packing costs no wall time.
            args = run.document["args"]
            exported = reference_format.export_reference(
                otus,
                args["data_type"],
                args["organism"],
                name=args["ref_name"],
                prefer_remote_ids=False,
            )
            reference_format.write_reference_file(exported, json_path, compresslevel=PACK_LEVEL)
            with open(fasta, "rb") as src, gzip.open(work / "reference.fa.gz", "wb", compresslevel=PACK_LEVEL) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)

        def bowtie_build():
            """Build the Bowtie2 index with bowtie2-build (reference.json.gz and reference.fa.gz are packed meanwhile)."""
            with ThreadPoolExecutor(1) as pool:
                packing = pool.submit(pack_files)
                run_tool(
                    ["bowtie2-build", "--threads", str(settings.proc), str(fasta), str(work / "reference")],
                    timeout=settings.tool_timeout,
                    cancel=run.cancel,
                )
                packing.result()

        def upload_files():
            """Upload reference.json.gz, reference.fa.gz and the six .bt2 files."""
            present = {f["name"] for f in job.get(f"/api/indexes/{index_id}").get("files", [])}
            for name in indexes.REQUIRED_FILES:
                if name not in present:  # a retried run keeps what an earlier one already uploaded
                    send_file(job, "POST", f"/api/indexes/{index_id}/files?name={name}", work / name)
                    run.check_cancelled()

        def finalize():
            """Mark the index ready."""
            finalize_once(job, f"/api/indexes/{index_id}")

        run.run_steps([download_otus, write_fasta, bowtie_build, upload_files, finalize])
