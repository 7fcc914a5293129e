"""Alignments: ``start_alignment`` and the ``alignment`` job, through the Job API only.

The job maps a sample's reads to one genome and measures how well they cover it:

* the reads and the genome's FASTA come from the Job API; the genome's Bowtie2 index is built
  once per sequence content on each worker (``DATA_PATH/cache/alignment-refs/<sha256>``, the
  same ``cached`` folders as the analyses' isolate indexes), so aligning many samples to one
  top hit builds it once;
* ``bowtie2`` maps the reads, streamed straight into ``samtools sort`` (never a SAM file), then
  ``samtools index``; local alignments scored as Pathoscope scores them (at least 20 + 1 per
  base), so both count the same reads and an exact 21-nt read aligns
  (``bio.alignments.alignment_flags``). Both mates go in as unpaired reads, as in
  Pathoscope and prepared the same way (``bio.trim.reads_for_mapping``: named ``x/1``, ``x/2``;
  small-RNA reads cut at their adapter and mapped end to end): pairing would only add
  concordance constraints (insert size, orientation) that a virus genome diverging from the
  sample's strain breaks; every mate is counted on its own. ``--no-unal`` keeps the BAM to the
  reads of this genome (a sample is mostly host reads);
* depth, breadth, mean depth, identity and mapped reads come from the BAM in one pass
  (``bio.bam``); the plots are drawn once here (``bio.plots``) and stored with the BAM.
"""

from __future__ import annotations

import gzip
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bio.alignments import alignment_flags
from ..bio.bam import AlignmentStatistics, depth_and_statistics
from ..bio.plots import coverage_plot, coverage_title
from ..bio.runner import ToolError, pipeline
from ..bio.runner import run as run_tool
from ..bio.trim import DETECT, reads_for_mapping
from ..core import alignments, samples
from ..core.auth import Client
from ..core.db import Database
from ..core.settings import from_env
from ..core.utils import new_id
from ..workers import queues
from ..workers.runtime import FINAL_ERRORS, JobState, Workflow, actor, current, start_process
from .cache import cache_root, cached
from .transfer import finalize_once, send_file
from .workdir import work_dir

log = logging.getLogger("ringspot.tasks.alignments")


def bowtie2_flags(library_type: str) -> list[str]:
    """The alignment job's bowtie2 flags: scoring by library type, and only aligned reads kept."""
    return [*alignment_flags(library_type), "--no-unal"]


@dataclass
class AlignmentRun(JobState):
    """An ``alignment`` run: the reads, the genome's index, and what the BAM says."""

    alignment_id: str = ""
    sample_id: str = ""
    reads: list[Path] | None = None
    index: Path | None = None
    depth: np.ndarray | None = None
    statistics: AlignmentStatistics | None = None

    @property
    def bam(self) -> Path:
        return self.work / "alignment.bam"


ALIGNMENT: Workflow[AlignmentRun] = Workflow("alignment", job=True)


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
    """Check the inputs, create the alignment and its job, then enqueue; a failed enqueue removes both."""
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
        "aligner": "bowtie2 " + " ".join(bowtie2_flags(sample.get("library_type", "normal"))),
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
        user_id=client.user,
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
        "library_type": sample.get("library_type", "normal"),
        "adapter": samples.mapping_adapter(sample),
        "sample_name": sample.get("name"),
        "name": alignments.fasta_name(sequence),
        "length": alignment["reference"]["length"],
        "sha256": alignment["reference"]["sha256"],
    }
    start_process(
        db,
        align_reads,
        ALIGNMENT,
        process_id=job_id,
        user_id=client.user_id,
        context=context,
        args=args,
        undo=lambda: alignments.remove_alignment(db, settings.data_path, alignment),
    )
    return alignment


# ---------------------------------------------------------------- the alignment job


@ALIGNMENT.step
def download_inputs(state: AlignmentRun) -> None:
    """Download the sample's reads while the genome's Bowtie2 index is built (cached per sequence)."""
    job, args, work = state.job, state.args, state.work
    proc, timeout = str(state.settings.proc), state.settings.tool_timeout
    state.reads = [work / name for name in args["read_files"]]

    def download_reads():
        for name, path in zip(args["read_files"], state.reads or [], strict=False):
            job.download(f"/api/samples/{state.sample_id}/reads/{name}", path)
            state.check_cancelled()

    def fill(folder: Path) -> None:
        job.download(f"/api/alignments/{state.alignment_id}/reference.fa", folder / "reference.fa")
        run_tool(
            ["bowtie2-build", "--quiet", "--threads", proc, str(folder / "reference.fa"), str(folder / "reference")],
            timeout=timeout,
            cancel=state.cancel,
        )

    with ThreadPoolExecutor(1) as pool:
        downloading = pool.submit(download_reads)
        folder, reused = cached(cache_root(state.settings, "alignment-refs"), args["sha256"], fill)
        downloading.result()
    state.index = folder / "reference"
    log.info(
        "alignment_index_%s alignment_id=%s sha256=%s",
        "reused" if reused else "built",
        state.alignment_id,
        args["sha256"],
    )


@ALIGNMENT.step
def map_reads(state: AlignmentRun) -> None:
    """Map the reads with bowtie2 (mates named apart, small-RNA reads trimmed), streamed into samtools sort."""
    reads = state.reads or []
    library_type = state.args.get("library_type", "normal")
    mapping_reads = reads_for_mapping(
        reads,
        state.work / "mapping",
        library_type=library_type,
        adapter=state.args.get("adapter", DETECT),
        cores=state.settings.proc,
        timeout=state.settings.tool_timeout,
        cancel=state.cancel,
    )
    pipeline(
        [
            [
                "bowtie2",
                *bowtie2_flags(library_type),
                "-p",
                str(state.settings.proc),
                "-x",
                str(state.index),
                "-U",
                ",".join(map(str, mapping_reads)),
            ],
            ["samtools", "sort", "-T", str(state.work / "sort"), "-o", str(state.bam), "-"],
        ],
        timeout=state.settings.tool_timeout,
        cancel=state.cancel,
    )
    for path in {*reads, *mapping_reads}:
        path.unlink()


@ALIGNMENT.step
def compute_coverage(state: AlignmentRun) -> None:
    """Index the BAM; compute depth, breadth, mean depth, identity and mapped reads."""
    args = state.args
    run_tool(["samtools", "index", str(state.bam)], timeout=state.settings.tool_timeout, cancel=state.cancel)
    depth, statistics = depth_and_statistics(state.bam, args["name"])
    if statistics.length != args["length"]:
        raise ValueError(f"the BAM's reference has {statistics.length} positions, the sequence {args['length']}")
    with gzip.open(state.work / "depth.json.gz", "wt", compresslevel=6) as handle:
        json.dump(depth.tolist(), handle, separators=(",", ":"))
    state.depth, state.statistics = depth, statistics


@ALIGNMENT.step
def plot_coverage(state: AlignmentRun) -> None:
    """Draw the coverage plot as SVG and PNG."""
    assert state.depth is not None
    title = coverage_title(state.args["name"], state.depth)
    for fmt in ("svg", "png"):
        (state.work / f"coverage.{fmt}").write_bytes(coverage_plot(state.depth, title, fmt))


@ALIGNMENT.step
def upload_results(state: AlignmentRun) -> None:
    """Upload the BAM, its index, the depths and the plots; finalize with the statistics."""
    assert state.statistics is not None
    alignment_id = state.alignment_id
    for name in alignments.FILE_NAMES:
        send_file(state.job, "POST", f"/api/alignments/{alignment_id}/files?name={name}", state.work / name)
        state.check_cancelled()
    statistics = state.statistics.as_dict()
    finalize_once(state.job, f"/api/alignments/{alignment_id}", {"statistics": statistics}, done="complete")
    log.info(
        "alignment_finalized alignment_id=%s mapped_reads=%d breadth=%.4f mean_depth=%.2f identity=%s",
        alignment_id,
        statistics["mapped_reads"],
        statistics["breadth"],
        statistics["mean_depth"],
        statistics["identity"],
    )


#: A tool that fails on its input fails again: only other errors (the API unreachable ...) are retried.
@actor(queue_name=queues.ALIGNMENTS, max_retries=1, time_limit=24 * 3600 * 1000, throws=FINAL_ERRORS + (ToolError,))
def align_reads(process_id: str, job_key: str) -> None:
    run, settings = current(), from_env()
    args = run.document["args"]
    with work_dir(settings, process_id) as work:
        state = AlignmentRun(run, settings, work, alignment_id=args["alignment_id"], sample_id=args["sample_id"])
        if state.job.get(f"/api/alignments/{state.alignment_id}")["complete"]:
            return  # a redelivered message of a run that finalized but could not report it
        ALIGNMENT.run(state)
