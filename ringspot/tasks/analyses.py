"""Analyses: ``start_analysis`` and the ``pathoscope_bowtie`` job, through the Job API only.

``pathoscope_bowtie`` follows ``workflows.md`` section 1 to the letter: map all reads to the
index's default isolates, build a Bowtie2 index of every isolate of the OTUs hit, map again
with ``-k 100``, drop alignments that score at least as well on each subtraction, reassign
with PathoScope's EM and upload ``report.tsv``, the aligned reads and the results.

Before mapping, the reads are prepared for the library (``bio.trim.reads_for_mapping``): a
small-RNA sample's reads are cut at their adapter and mapped end to end, and the mates of a pair
are renamed ``x/1`` and ``x/2``, so every mate is a read of its own in ``read_count``, in the
reads of each sequence, in pi and in depth, whatever the naming convention of the files.

bowtie2's SAM is streamed and parsed as it arrives, a few megabytes at a time with NumPy
(``bio.sam_blocks``), into compact arrays (``bio.alignments``) that the EM and the coverage take
whole; no SAM file is written and no Python code runs per SAM line. Worker-side caches under
``DATA_PATH/cache/`` make repeated analyses cheap: index files per index id, subtraction files
per subtraction id (both immutable once ready) and isolate indexes per SHA-256 of their FASTA,
so the same candidate OTUs never go through ``bowtie2-build`` twice. Cache entries are built in
a scratch folder and renamed into place, so concurrent runs never see half an entry.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from isal import igzip

from ..bio import diagnosis
from ..bio.alignments import AlignmentTable, pathoscope_flags, remove_reads
from ..bio.pathoscope import run_pathoscope
from ..bio.reference import iter_all_isolate_fasta
from ..bio.runner import ToolError, stream_chunks
from ..bio.runner import run as run_tool
from ..bio.sam_blocks import best_scores, line_blocks, mapped_ref_names
from ..bio.trim import DETECT, reads_for_mapping
from ..core import analyses, samples
from ..core.db import Database
from ..core.errors import BadRequest
from ..core.settings import Settings, from_env
from ..core.utils import new_id
from ..workers import queues
from ..workers.runtime import FINAL_ERRORS, JobState, Workflow, actor, current, start_process
from . import nuvs
from .cache import cache_root, cached, cached_mapping_files
from .transfer import finalize_once, send_file
from .workdir import work_dir

log = logging.getLogger("ringspot.tasks.analyses")

BOWTIE2_SUFFIXES = ("1", "2", "3", "4", "rev.1", "rev.2")
ALIGNED_READS = "isolate_mapped.fq"


@dataclass
class PathoscopeRun(JobState):
    """A ``pathoscope_bowtie`` run: its inputs, then what each step found."""

    analysis_id: str = ""
    sample_id: str = ""
    index_id: str = ""
    reads: list[Path] | None = None
    #: The reads as bowtie2 gets them: trimmed for small-RNA libraries, mates named apart.
    mapping_reads: list[Path] | None = None
    index_dir: Path | None = None
    manifest: dict | None = None
    #: Reference sequences the default isolates' mapping hit.
    candidates: set[str] | None = None
    isolate_index: Path | None = None
    ref_lengths: dict[str, int] | None = None
    sequence_otu_map: dict[str, str] | None = None
    #: Names, isolates and sequences of the candidate OTUs: what the diagnosis reports on.
    catalog: dict[str, diagnosis.Otu] | None = None
    table: AlignmentTable | None = None
    subtracted_count: int = 0

    @property
    def aligned_reads(self) -> Path:
        return self.work / ALIGNED_READS

    def tool_options(self) -> dict:
        return {"timeout": self.settings.tool_timeout, "cancel": self.cancel}

    @property
    def mapping_flags(self) -> list[str]:
        """bowtie2 scoring of both mapping passes, by library type (spec 1.1 for shotgun reads)."""
        return pathoscope_flags(self.args.get("library_type", "normal"))

    @property
    def subtraction_flags(self) -> list[str]:
        """bowtie2 scoring against a host: spec 1.4's local defaults, small-RNA reads as they were mapped."""
        return self.mapping_flags if self.args.get("library_type") == "srna" else ["--local", "-N", "0"]


PATHOSCOPE: Workflow[PathoscopeRun] = Workflow("pathoscope_bowtie", job=True)


# ---------------------------------------------------------------- server side


def workflow_actor(workflow: str):
    """The actor of a workflow and its steps."""
    if workflow == "pathoscope_bowtie":
        return pathoscope_bowtie, PATHOSCOPE
    if workflow == "nuvs":
        return nuvs.nuvs, nuvs.NUVS
    raise BadRequest(f"Unknown workflow: {workflow}")


def start_analysis(
    db: Database, sample: dict, ref_id: str, subtraction_ids: list[str] | None, workflow: str, user_id: str
) -> dict:
    """Create the analysis and its job on the reference's latest ready index, then enqueue.

    ``subtraction_ids`` None means the sample's subtractions. A failed enqueue removes both.
    """
    task, steps = workflow_actor(workflow)
    reference, index, subtractions = analyses.check_inputs(db, sample, ref_id, subtraction_ids, workflow)
    job_id, analysis_id = new_id(), new_id()
    analysis = analyses.create_analysis(
        db,
        analysis_id=analysis_id,
        job_id=job_id,
        workflow=workflow,
        sample=sample,
        reference=reference,
        index=index,
        subtractions=subtractions,
        user_id=user_id,
    )
    context = {
        "analysis_id": analysis_id,
        "sample_id": sample["_id"],
        "index_id": index["_id"],
        "ref_id": ref_id,
        "subtraction_ids": [s["_id"] for s in subtractions],
    }
    args = {
        **context,
        "sample_name": sample.get("name"),
        "paired": bool(sample.get("paired")),
        "library_type": sample.get("library_type", "normal"),
        "adapter": samples.mapping_adapter(sample),
        "index_version": index["version"],
        "read_files": list(samples.read_names(sample)),
    }
    start_process(
        db,
        task,
        steps,
        process_id=job_id,
        user_id=user_id,
        context=context,
        args=args,
        undo=lambda: analyses.discard_unfinished(db, from_env().data_path, analysis_id),
    )
    return analysis


# ---------------------------------------------------------------- worker-side caches


def write_isolate_fasta(otus: list[dict], otu_ids: set[str], path: Path) -> tuple[str, dict[str, int]]:
    """Write every isolate of ``otu_ids`` (spec 1.3); return the file's SHA-256 and the sequence lengths."""
    digest, lengths = hashlib.sha256(), {}
    with open(path, "wb") as handle:
        for sequence_id, sequence in iter_all_isolate_fasta(otus, otu_ids):
            if not sequence_id or any(c.isspace() for c in sequence_id):
                raise ValueError(f"sequence id {sequence_id!r} is empty or contains whitespace")
            record = f">{sequence_id}\n{sequence}\n".encode()
            digest.update(record)
            handle.write(record)
            lengths[sequence_id] = len(sequence)
    return digest.hexdigest(), lengths


def index_otus(
    settings: Settings, index_dir: Path, index_id: str
) -> tuple[dict[str, str], Callable[[set[str]], list[dict]]]:
    """The index's sequence-to-OTU map, and a loader of the OTUs of given ids (in the index's order).

    The index's ``reference.json.gz`` holds every OTU with its sequences; parsing it whole took
    most of a warm small analysis. It is split once per index on this worker (immutable, like the
    index) into the map and one JSON file per OTU, so a run reads the map and its candidates only.
    """

    def split(folder: Path) -> None:
        with gzip.open(index_dir / "reference.json.gz", "rb") as handle:
            otus = json.load(handle)["otus"]
        files = {}
        for number, otu in enumerate(otus):
            (folder / f"{number}.json").write_text(json.dumps(otu))
            files[otu["_id"]] = number
        sequences = {s["_id"]: otu["_id"] for otu in otus for i in otu["isolates"] for s in i["sequences"]}
        (folder / "map.json").write_text(json.dumps({"sequence_otu_map": sequences, "otu_files": files}))

    folder, _ = cached(cache_root(settings, "index-otus"), index_id, split)
    index = json.loads((folder / "map.json").read_text())

    def load(otu_ids: set[str]) -> list[dict]:
        numbers = sorted(index["otu_files"][otu_id] for otu_id in otu_ids)
        return [json.loads((folder / f"{number}.json").read_text()) for number in numbers]

    return index["sequence_otu_map"], load


def pack_reads(source: Path, target: Path) -> Path:
    """gzip ``source`` into ``target`` (appearing only when complete) with ISA-L at level 2.

    About as small as zlib's level 4 in a seventh of the CPU, which a 2-core worker would
    otherwise take from bowtie2 (the packing runs beside the reassignment and the next job).
    """
    partial = target.with_name(target.name + ".partial")
    with open(source, "rb") as reader, igzip.open(partial, "wb", compresslevel=2) as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
    partial.replace(target)
    return target


# ---------------------------------------------------------------- the pathoscope_bowtie job


@PATHOSCOPE.step
def download_inputs(state: PathoscopeRun) -> None:
    """Download the sample's reads and the index (cached per index on this worker)."""
    job, read_files = state.job, state.args["read_files"]
    state.reads = [state.work / name for name in read_files]
    for name, path in zip(read_files, state.reads, strict=False):
        job.download(f"/api/samples/{state.sample_id}/reads/{name}", path)
        state.check_cancelled()
    state.index_dir, reused, index = cached_mapping_files(job, state.run, state.settings, "indexes", state.index_id)
    state.manifest = index["manifest"]
    log.info("index_ready index_id=%s cached=%s", state.index_id, reused)


@PATHOSCOPE.step
def prepare_reads(state: PathoscopeRun) -> None:
    """Cut small-RNA adapters and name the mates of a pair apart, so each mate counts as a read."""
    assert state.reads is not None
    state.mapping_reads = reads_for_mapping(
        state.reads,
        state.work / "mapping",
        library_type=state.args.get("library_type", "normal"),
        adapter=state.args.get("adapter", DETECT),
        cores=state.settings.proc,
        **state.tool_options(),
    )


@PATHOSCOPE.step
def map_default_isolates(state: PathoscopeRun) -> None:
    """Map all reads to the default isolates; the references hit are the candidates."""
    assert state.index_dir is not None and state.mapping_reads is not None
    argv = [
        "bowtie2",
        "-p",
        str(state.settings.proc),
        *state.mapping_flags,
        "--no-unal",
        "--no-hd",
        "--no-sq",
        "-x",
        str(state.index_dir / "reference"),
        "-U",
        ",".join(map(str, state.mapping_reads)),
    ]
    state.candidates = mapped_ref_names(line_blocks(stream_chunks(argv, **state.tool_options())))
    log.info("default_isolates_mapped analysis_id=%s candidates=%d", state.analysis_id, len(state.candidates))


@PATHOSCOPE.step
def build_isolate_index(state: PathoscopeRun) -> None:
    """Build a Bowtie2 index of all isolates of the candidate OTUs (cached by content)."""
    assert state.index_dir is not None and state.candidates is not None
    sequence_otu_map, load_otus = index_otus(state.settings, state.index_dir, state.index_id)
    otu_ids = {sequence_otu_map[ref] for ref in state.candidates if ref in sequence_otu_map}
    otus = load_otus(otu_ids)
    fasta = state.work / "isolate_index.fa"
    sha, state.ref_lengths = write_isolate_fasta(otus, otu_ids, fasta)
    state.sequence_otu_map = sequence_otu_map
    state.catalog = diagnosis.catalog(otu for otu in otus if otu["_id"] in otu_ids)
    del otus
    if not otu_ids:
        state.isolate_index = None
        return

    def fill(folder: Path) -> None:
        argv = ["bowtie2-build", "--threads", str(state.settings.proc), str(fasta), str(folder / "isolates")]
        run_tool(argv, **state.tool_options())

    folder, reused = cached(cache_root(state.settings, "isolates"), sha, fill)
    state.isolate_index = folder / "isolates"
    log.info(
        "isolate_index_%s analysis_id=%s sha256=%s otus=%d sequences=%d",
        "reused" if reused else "built",
        state.analysis_id,
        sha,
        len(otu_ids),
        len(state.ref_lengths),
    )


@PATHOSCOPE.step
def map_isolates(state: PathoscopeRun) -> None:
    """Map all reads to the isolate index with -k 100, keeping alignments as arrays and aligned reads."""
    assert state.mapping_reads is not None
    if state.isolate_index is None:
        state.table = AlignmentTable.collect([])
        state.aligned_reads.touch()
        return
    argv = [
        "bowtie2",
        "-p",
        str(state.settings.proc),
        "--no-hd",
        "--no-sq",
        "--no-unal",
        *state.mapping_flags,
        "-k",
        "100",
        "--al",
        str(state.aligned_reads),
        "-x",
        str(state.isolate_index),
        "-U",
        ",".join(map(str, state.mapping_reads)),
    ]
    state.table = AlignmentTable.from_sam_blocks(line_blocks(stream_chunks(argv, **state.tool_options())))
    log.info(
        "isolates_mapped analysis_id=%s alignments=%d reads=%d bytes=%d",
        state.analysis_id,
        len(state.table),
        state.table.read_count,
        state.table.nbytes + state.table.read_names.nbytes,
    )


@PATHOSCOPE.step
def eliminate_subtraction(state: PathoscopeRun) -> None:
    """Drop alignments that score at least as well on each subtraction, and their reads."""
    assert state.table is not None
    for subtraction_id in state.args["subtraction_ids"]:
        if not len(state.table):
            break
        folder = cached_mapping_files(state.job, state.run, state.settings, "subtractions", subtraction_id)[0]
        argv = [
            "bowtie2",
            *state.subtraction_flags,
            "--no-unal",
            "--no-hd",
            "--no-sq",
            "-p",
            str(state.settings.proc),
            "-x",
            str(folder / "subtraction"),
            "-U",
            str(state.aligned_reads),
        ]
        host_names, host_scores = best_scores(line_blocks(stream_chunks(argv, **state.tool_options())))
        subtracted = state.table.eliminate_arrays(host_names, host_scores)
        state.subtracted_count += len(subtracted)
        if len(subtracted):
            rest = state.work / "subtracted.fq"
            with open(state.aligned_reads, "rb") as source, open(rest, "wb") as target:
                remove_reads(source, target, {name.decode() for name in subtracted.tolist()})
            rest.replace(state.aligned_reads)
        log.info(
            "subtraction_eliminated analysis_id=%s subtraction_id=%s reads=%d",
            state.analysis_id,
            subtraction_id,
            len(subtracted),
        )
        state.check_cancelled()


@PATHOSCOPE.step
def reassignment(state: PathoscopeRun) -> None:
    """Reassign reads with PathoScope's EM, upload report.tsv and the aligned reads, finalize."""
    assert state.table is not None and state.ref_lengths is not None and state.sequence_otu_map is not None
    assert state.manifest is not None
    results_dir, analysis_id, job = state.work / "results", state.analysis_id, state.job
    with ThreadPoolExecutor(1) as pool:  # zlib lets go of the GIL: the reads pack on the other core
        packing = pool.submit(pack_reads, state.aligned_reads, state.work / f"{ALIGNED_READS}.gz")
        results = run_pathoscope(
            state.table.columns(),
            state.ref_lengths,
            state.sequence_otu_map,
            state.manifest,
            results_dir,
            otus=state.catalog or {},
            thresholds=state.settings.diagnosis,
        )
        packed = packing.result()
    results["subtracted_count"] = state.subtracted_count
    send_file(job, "POST", f"/api/analyses/{analysis_id}/files?name=report.tsv&format=tsv", results_dir / "report.tsv")
    send_file(job, "POST", f"/api/analyses/{analysis_id}/files?name={packed.name}&format=fastq", packed)
    finalize_once(job, f"/api/analyses/{analysis_id}", {"results": results})
    log.info(
        "analysis_finalized analysis_id=%s read_count=%d subtracted_count=%d hits=%d detected=%s",
        analysis_id,
        results["read_count"],
        results["subtracted_count"],
        len(results["hits"]),
        ",".join(row["id"] for row in results["diagnosis"] if row["call"] == diagnosis.DETECTED),
    )


#: A tool that fails on its input fails again: only other errors (the API unreachable ...) are retried.
@actor(queue_name=queues.ANALYSES, max_retries=1, time_limit=48 * 3600 * 1000, throws=FINAL_ERRORS + (ToolError,))
def pathoscope_bowtie(process_id: str, job_key: str) -> None:
    run, settings = current(), from_env()
    args = run.document["args"]
    with work_dir(settings, process_id) as work:
        state = PathoscopeRun(
            run, settings, work, analysis_id=args["analysis_id"], sample_id=args["sample_id"], index_id=args["index_id"]
        )
        if state.job.get(f"/api/analyses/{state.analysis_id}")["ready"]:
            return  # a redelivered message of a run that finalized but could not report it
        PATHOSCOPE.run(state)
