"""``build_index``: turn a reference's manifest into a Bowtie2 index, through the Job API only."""

from __future__ import annotations

import gzip
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..bio import reference as reference_format
from ..bio.runner import run as run_tool
from ..core import indexes, references
from ..core.db import Database
from ..core.settings import from_env
from ..core.utils import new_id
from ..workers import queues
from ..workers.runtime import JobState, Workflow, actor, current, start_process
from .transfer import finalize_once, send_file
from .workdir import work_dir

#: gzip level of the files an index keeps: level 1 packs 26 MB of OTUs in 0.2 s (level 9: 9 s).
PACK_LEVEL = 1


@dataclass
class BuildRun(JobState):
    """A ``build_index`` run: the index it fills and the OTUs of its manifest."""

    index_id: str = ""
    otus: list[dict] = field(default_factory=list)

    def file(self, name: str) -> Path:
        """A file of the run's scratch folder."""
        return self.work / name


BUILD_INDEX: Workflow[BuildRun] = Workflow("build_index", job=True)


def start_build(db: Database, ref_id: str, user_id: str) -> dict:
    """Create the index and its job, then enqueue; a failed enqueue removes both."""
    job_id = new_id()
    reference = references.get_reference_or_404(db, ref_id)
    index = indexes.create_index(db, ref_id, user_id, job_id)
    start_process(
        db,
        build_index,
        BUILD_INDEX,
        process_id=job_id,
        user_id=user_id,
        context={"ref_id": ref_id, "index_id": index["_id"]},
        args={
            "index_id": index["_id"],
            "ref_id": ref_id,
            "index_version": index["version"],
            "ref_name": reference.get("name"),
            "data_type": reference.get("data_type") or "genome",
            "organism": reference.get("organism") or "",
        },
        undo=lambda: indexes.discard_failed_build(db, from_env().data_path, index["_id"]),
    )
    return index


@BUILD_INDEX.step
def download_otus(state: BuildRun) -> None:
    """Fetch the manifest's OTUs, patched to their manifest versions."""
    state.job.download(f"/api/indexes/{state.index_id}/files/otus.json.gz", state.file("otus.json.gz"))


@BUILD_INDEX.step
def write_fasta(state: BuildRun) -> None:
    """Write the default isolates' sequences as FASTA."""
    with gzip.open(state.file("otus.json.gz"), "rt") as handle:
        state.otus = json.load(handle)
    with open(state.file("reference.fa"), "w") as handle:
        reference_format.write_fasta(reference_format.iter_default_isolate_fasta(state.otus), handle)


def pack_files(state: BuildRun) -> None:
    """Write reference.json.gz and reference.fa.gz, the files an index keeps beside Bowtie2's."""
    args = state.args
    exported = reference_format.export_reference(
        state.otus, args["data_type"], args["organism"], name=args["ref_name"], prefer_remote_ids=False
    )
    reference_format.write_reference_file(exported, state.file("reference.json.gz"), compresslevel=PACK_LEVEL)
    with (
        open(state.file("reference.fa"), "rb") as src,
        gzip.open(state.file("reference.fa.gz"), "wb", compresslevel=PACK_LEVEL) as dst,
    ):
        shutil.copyfileobj(src, dst, 1 << 20)


@BUILD_INDEX.step
def bowtie_build(state: BuildRun) -> None:
    """Build the Bowtie2 index with bowtie2-build (reference.json.gz and reference.fa.gz are packed meanwhile)."""
    # zlib releases the GIL, so packing beside bowtie2-build costs no wall time.
    with ThreadPoolExecutor(1) as pool:
        packing = pool.submit(pack_files, state)
        run_tool(
            [
                "bowtie2-build",
                "--threads",
                str(state.settings.proc),
                str(state.file("reference.fa")),
                str(state.file("reference")),
            ],
            timeout=state.settings.tool_timeout,
            cancel=state.cancel,
        )
        packing.result()


@BUILD_INDEX.step
def upload_files(state: BuildRun) -> None:
    """Upload reference.json.gz, reference.fa.gz and the six .bt2 files."""
    present = {f["name"] for f in state.job.get(f"/api/indexes/{state.index_id}").get("files", [])}
    for name in indexes.REQUIRED_FILES:
        if name not in present:  # a retried run keeps what an earlier one already uploaded
            send_file(state.job, "POST", f"/api/indexes/{state.index_id}/files?name={name}", state.file(name))
            state.check_cancelled()


@BUILD_INDEX.step
def finalize(state: BuildRun) -> None:
    """Mark the index ready."""
    finalize_once(state.job, f"/api/indexes/{state.index_id}")


@actor(queue_name=queues.INDEXES, max_retries=2, time_limit=12 * 3600 * 1000)
def build_index(process_id: str, job_key: str) -> None:
    run, settings = current(), from_env()
    with work_dir(settings, process_id) as work:
        BUILD_INDEX.run(BuildRun(run, settings, work, index_id=run.context["index_id"]))
