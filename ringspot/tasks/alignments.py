"""Alignments: ``start_alignment`` and the ``alignment`` job, through the Job API only.

The job maps a sample's reads to one genome and measures how well they cover it:

* the reads and the genome's FASTA come from the Job API; the genome's Bowtie2 index is built
  once per sequence content on each worker (``DATA_PATH/cache/alignment-refs/<sha256>``, the
  same ``cached`` folders as the analyses' isolate indexes), so aligning many samples to one
  top hit builds it once;
* ``bowtie2 --local`` maps the reads, streamed straight into ``samtools sort`` (never a SAM
  file), then ``samtools index``. Both mates go in as unpaired reads (``-U r1,r2``), as in
  Pathoscope: pairing would only add concordance constraints (insert size, orientation) that a
  virus genome diverging from the sample's strain breaks, and mate files of uploaded samples
  need not be in step; every read is counted on its own. ``--no-unal`` keeps the BAM to the
  reads of this genome (a sample is mostly host reads);
* depth, breadth, mean depth, identity and mapped reads come from the BAM in one pass
  (``bio.bam``); the plots are drawn once here (``bio.plots``) and stored with the BAM.
"""

from __future__ import annotations

import gzip
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pymongo.database import Database

from ..bio.bam import depth_and_statistics
from ..bio.plots import coverage_plot, coverage_title
from ..bio.runner import ToolError, pipeline
from ..bio.runner import run as run_tool
from ..core import alignments, processes, samples
from ..core.auth import Client
from ..core.settings import from_env
from ..core.utils import new_id
from ..workers import queues
from .cache import cache_root, cached
from ..workers.runtime import FINAL_ERRORS, actor, current
from .transfer import finalize_once, send_file
from .workdir import work_dir

log = logging.getLogger("ringspot.tasks.alignments")

WORKFLOW = "alignment"
STEPS = ["download_inputs", "map_reads", "compute_coverage", "plot_coverage", "upload_results"]
BOWTIE2_FLAGS = ["--local", "--no-unal"]


# ---------------------------------------------------------------- server side


def start_alignment(
    db: Database,
    client: Client,
    sample: dict,
    *,
    sequence_id: str | None = None,
    accession: str | None = None,
    ref_id: str | None = None,
) -> dict:
    """Check the inputs, create the alignment and its job, then enqueue; a failed enqueue undoes both."""
    settings = from_env()
    sequence, reference = alignments.check_inputs(
        db, client, sample, sequence_id=sequence_id, accession=accession, ref_id=ref_id
    )
    job_id, alignment_id = new_id(), new_id()
    read_files = list(samples.read_names(sample))
    job_args = {
        "ref_id": reference["_id"],
        "sequence_id": sequence["_id"],
        "accession": sequence.get("accession"),
        "aligner": "bowtie2 " + " ".join(BOWTIE2_FLAGS),
        "read_files": read_files,
    }
    alignment = alignments.create_alignment(
        db,
        settings.data_path,
        alignment_id=alignment_id,
        job_id=job_id,
        sample=sample,
        sequence=sequence,
        reference=reference,
        user_id=client.user_id,
        job_args=job_args,
    )
    context = {
        "alignment_id": alignment_id,
        "sample_id": sample["_id"],
        "ref_id": reference["_id"],
        "sequence_id": sequence["_id"],
    }
    args = {
        **context,
        "read_files": read_files,
        "sample_name": sample.get("name"),
        "name": alignments.fasta_name(sequence),
        "length": alignment["reference"]["length"],
        "sha256": alignment["reference"]["sha256"],
    }
    try:
        _, key = processes.create_process(
            db,
            WORKFLOW,
            user_id=client.user_id,
            context=context,
            steps=STEPS,
            workflow=True,
            args=args,
            process_id=job_id,
        )
        align_reads.send(process_id=job_id, job_key=key)
    except Exception:
        if db.processes.find_one({"_id": job_id}, {"_id": 1}):
            processes.finish(db, job_id, "error", "Could not enqueue the job")
        alignments.remove_alignment(db, settings.data_path, alignment)
        raise
    return alignment


# ---------------------------------------------------------------- the alignment job


#: A tool that fails on its input fails again: only other errors (the API unreachable ...) are retried.
@actor(queue_name=queues.ALIGNMENTS, max_retries=1, time_limit=24 * 3600 * 1000, throws=FINAL_ERRORS + (ToolError,))
def align_reads(process_id: str, job_key: str) -> None:
    run = current()
    job = run.job
    settings = from_env()
    args = run.document["args"]
    alignment_id, sample_id = args["alignment_id"], args["sample_id"]
    proc, timeout, cancel = str(settings.proc), settings.tool_timeout, run.cancel

    if job.get(f"/api/alignments/{alignment_id}")["complete"]:
        return  # a redelivered message of a run that finalized but could not report it

    with work_dir(settings, process_id) as work:
        reads = [work / name for name in args["read_files"]]
        bam, depth_file = work / "alignment.bam", work / "depth.json.gz"
        state: dict = {}

        def download_inputs():
            """Download the sample's reads while the genome's Bowtie2 index is built (cached per sequence)."""

            def download_reads():
                for name, path in zip(args["read_files"], reads, strict=False):
                    job.download(f"/api/samples/{sample_id}/reads/{name}", path)
                    run.check_cancelled()

            def fill(folder: Path) -> None:
                job.download(f"/api/alignments/{alignment_id}/reference.fa", folder / "reference.fa")
                run_tool(
                    ["bowtie2-build", "--quiet", "--threads", proc, folder / "reference.fa", folder / "reference"],
                    timeout=timeout,
                    cancel=cancel,
                )

            with ThreadPoolExecutor(1) as pool:
                downloading = pool.submit(download_reads)
                folder, reused = cached(cache_root(settings, "alignment-refs"), args["sha256"], fill)
                downloading.result()
            state["index"] = folder / "reference"
            log.info(
                "alignment_index_%s alignment_id=%s sha256=%s",
                "reused" if reused else "built",
                alignment_id,
                args["sha256"],
            )

        def map_reads():
            """Map the reads with bowtie2 --local, streamed into samtools sort."""
            pipeline(
                [
                    ["bowtie2", *BOWTIE2_FLAGS, "-p", proc, "-x", state["index"], "-U", ",".join(map(str, reads))],
                    ["samtools", "sort", "-T", work / "sort", "-o", bam, "-"],
                ],
                timeout=timeout,
                cancel=cancel,
            )
            for path in reads:
                path.unlink()

        def compute_coverage():
            """Index the BAM; compute depth, breadth, mean depth, identity and mapped reads."""
            run_tool(["samtools", "index", bam], timeout=timeout, cancel=cancel)
            depth, statistics = depth_and_statistics(bam, args["name"])
            if statistics.length != args["length"]:
                raise ValueError(
                    f"the BAM's reference has {statistics.length} positions, the sequence {args['length']}"
                )
            with gzip.open(depth_file, "wt", compresslevel=6) as handle:
                json.dump(depth.tolist(), handle, separators=(",", ":"))
            state["depth"], state["statistics"] = depth, statistics

        def plot_coverage():
            """Draw the coverage plot as SVG and PNG."""
            title = coverage_title(args["name"], state["depth"])
            for fmt in ("svg", "png"):
                (work / f"coverage.{fmt}").write_bytes(coverage_plot(state["depth"], title, fmt))

        def upload_results():
            """Upload the BAM, its index, the depths and the plots; finalize with the statistics."""
            for name in alignments.FILE_NAMES:
                send_file(job, "POST", f"/api/alignments/{alignment_id}/files?name={name}", work / name)
                run.check_cancelled()
            statistics = state["statistics"].as_dict()
            finalize_once(job, f"/api/alignments/{alignment_id}", {"statistics": statistics}, done="complete")
            log.info(
                "alignment_finalized alignment_id=%s mapped_reads=%d breadth=%.4f mean_depth=%.2f identity=%s",
                alignment_id,
                statistics["mapped_reads"],
                statistics["breadth"],
                statistics["mean_depth"],
                statistics["identity"],
            )

        run.run_steps([download_inputs, map_reads, compute_coverage, plot_coverage, upload_results])
