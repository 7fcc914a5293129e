"""``nuvs``: discover viruses the reference does not know, through the Job API only.

Spec ``workflows.md`` section 2: trim the reads with skewer, drop every read that aligns to
the reference's default isolates and then to each subtraction (bowtie2 ``--very-fast-local -k
1 --un``), reunite surviving pairs, assemble the rest with SPAdes, find ORFs in contigs over
300 bp and search them with ``hmmscan`` against the installed vFam profiles. Results:
``{hits: [{index, sequence, orfs: [{index, frame, strand, pos, pro, hits}]}]}`` plus the files
``assembly.fa.gz``, ``orfs.fa.gz`` and ``hmm.tsv``.

HMMER hits keep ``best_score`` and ``best_bias`` in their own columns (Virtool swaps them), and
contigs without hits stay. ``RINGSPOT_HMM_EVALUE_CUTOFF`` drops hits above that full-sequence
E-value; by default HMMER's reporting threshold (E <= 10) is the only filter, as in Virtool.

Worker-side caches (``DATA_PATH/cache/``): indexes and subtractions as for Pathoscope, and the
installed HMM profiles pressed once per profile set, under ``hmms/<sha256 of profiles.hmm>``
(the content, not a counter, so a reset database never meets stale pressed files).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..bio import hmmer
from ..bio import nuvs as bio_nuvs
from ..bio import orfs as bio_orfs
from ..bio.runner import ToolError
from ..bio.trim import DETECT
from ..core.settings import from_env
from ..workers import queues
from ..workers.runtime import FINAL_ERRORS, JobState, Workflow, actor, current
from .cache import cache_root, cached, cached_mapping_files
from .transfer import finalize_once, send_file
from .workdir import work_dir

log = logging.getLogger("ringspot.tasks.nuvs")

READ_NAMES = ("reads_1.fq.gz", "reads_2.fq.gz")
#: Environment variable holding an optional E-value cut-off for HMMER hits.
EVALUE_CUTOFF_ENV = "RINGSPOT_HMM_EVALUE_CUTOFF"


def evalue_cutoff() -> float | None:
    value = os.environ.get(EVALUE_CUTOFF_ENV, "").strip()
    return float(value) if value else None


def hmm_files(job, settings, run) -> tuple[Path, dict[int, str]]:
    """The installed profiles, pressed, and the cluster -> annotation id map (profiles cached per set)."""
    installed = job.get("/api/hmms/status").get("installed")
    if not installed:
        raise ValueError("No HMM profiles are installed")
    set_id = installed["id"]
    annotations_path = Path(settings.data_path) / "work" / run.process_id / "annotations.json.gz"
    job.download(f"/api/hmms/files/annotations.json.gz?set={set_id}", annotations_path)
    with gzip.open(annotations_path, "rt") as handle:
        hit_ids = {annotation["cluster"]: annotation["id"] for annotation in json.load(handle)}

    def fill(folder: Path) -> None:
        job.download(f"/api/hmms/files/profiles.hmm?set={set_id}", folder / "profiles.hmm")
        hmmer.hmmpress(folder / "profiles.hmm", timeout=settings.tool_timeout, cancel=run.cancel)

    folder, reused = cached(cache_root(settings, "hmms"), installed["sha256"], fill)
    log.info("hmm_profiles_ready set_id=%s cached=%s", set_id, reused)
    return folder / "profiles.hmm", hit_ids


def find_hits(
    contigs: list[dict],
    profiles: Path,
    orfs_fasta: Path,
    tblout: Path,
    hit_ids: dict[int, str],
    *,
    cpu: int,
    cutoff: float | None = None,
    timeout: float | None = None,
    cancel=None,
) -> list[dict]:
    """hmmscan the ORFs and attach each vFam hit to its ORF (the ``vfam`` step)."""
    if not any(contig["orfs"] for contig in contigs):
        tblout.write_text("")
        return contigs
    hmmer.hmmscan(profiles, orfs_fasta, tblout, cpu=cpu, timeout=timeout, cancel=cancel)
    with open(tblout) as handle:
        return hmmer.attach_hits(contigs, hmmer.parse_tblout(handle, evalue_cutoff=cutoff), hit_ids)


@dataclass
class NuvsRun(JobState):
    """A ``nuvs`` run: its inputs, then the reads, contigs and hits of each step."""

    analysis_id: str = ""
    sample_id: str = ""
    index_id: str = ""
    subtraction_ids: list[str] = field(default_factory=list)
    paired: bool = False
    library_type: str = "normal"
    reads: list[Path] = field(default_factory=list)
    max_length: int = 0
    index: Path | None = None
    subtractions: list[Path] = field(default_factory=list)
    profiles: Path | None = None
    hit_ids: dict[int, str] = field(default_factory=dict)
    trimmed: list[Path] = field(default_factory=list)
    assembly_reads: list[Path] = field(default_factory=list)
    assembly_read_count: int = 0
    scaffolds: Path | None = None
    #: Why the assembly is empty, when it is: kept with the results.
    note: str | None = None
    contigs: list[dict] = field(default_factory=list)

    def file(self, name: str) -> Path:
        """A file of the run's scratch folder."""
        return self.work / name

    def tool_options(self) -> dict:
        return {"proc": self.settings.proc, "timeout": self.settings.tool_timeout, "cancel": self.cancel}


NUVS: Workflow[NuvsRun] = Workflow("nuvs", job=True)


@NUVS.step
def download_inputs(state: NuvsRun) -> None:
    """Download the reads, the index and subtraction files (cached) and the HMM profiles (pressed once)."""
    job, args = state.job, state.args
    sample = job.get(f"/api/samples/{state.sample_id}")
    state.paired = bool(sample.get("paired", args.get("paired")))
    state.library_type = sample.get("library_type") or args.get("library_type") or "normal"
    names = args.get("read_files") or list(READ_NAMES if state.paired else READ_NAMES[:1])
    state.reads = [state.file("reads") / name for name in names]
    for name, path in zip(names, state.reads, strict=False):
        job.download(f"/api/samples/{state.sample_id}/reads/{name}", path)
        state.check_cancelled()
    length = ((sample.get("quality") or {}).get("length") or [0, 0])[-1]
    state.max_length = length or bio_nuvs.max_read_length(state.reads)
    # Same cache entries as Pathoscope's: the same files, whichever workflow comes first.
    state.index = cached_mapping_files(job, state.run, state.settings, "indexes", state.index_id)[0] / "reference"
    state.subtractions = [
        cached_mapping_files(job, state.run, state.settings, "subtractions", s)[0] / "subtraction"
        for s in state.subtraction_ids
    ]
    state.profiles, state.hit_ids = hmm_files(job, state.settings, state.run)


@NUVS.step
def trim_reads(state: NuvsRun) -> None:
    """Trim adapters and low-quality ends with skewer (small-RNA reads: cut at their adapter with cutadapt)."""
    state.trimmed = bio_nuvs.trim_reads(
        state.reads,
        state.file("trimmed"),
        library_type=state.library_type,
        max_length=state.max_length,
        adapter=state.args.get("adapter", DETECT),
        **state.tool_options(),
    )
    state.paired = len(state.trimmed) == 2  # small-RNA mates come back as single reads


@NUVS.step
def eliminate_otus(state: NuvsRun) -> None:
    """Drop reads that align to the reference's default isolates."""
    assert state.index is not None
    if state.paired:  # both mates as unpaired reads, named by pair ordinal for reuniting
        source = state.file("numbered.fq")
        bio_nuvs.number_reads(state.trimmed, source)
    else:
        source = state.trimmed[0]
    bio_nuvs.eliminate_reads(
        state.index, source, state.file("unmapped_otus.fq"), library_type=state.library_type, **state.tool_options()
    )


@NUVS.step
def eliminate_subtraction(state: NuvsRun) -> None:
    """Drop reads that align to each subtraction in turn."""
    current_reads = state.file("unmapped_otus.fq")
    for number, prefix in enumerate(state.subtractions):
        target = state.file(f"unmapped_subtraction_{number}.fq")
        bio_nuvs.eliminate_reads(prefix, current_reads, target, library_type=state.library_type, **state.tool_options())
        current_reads = target
    shutil.copyfile(current_reads, state.file("unmapped_subtractions.fq"))


@NUVS.step
def reunite_pairs(state: NuvsRun) -> None:
    """Bring back both mates of every pair of which one mate survived elimination."""
    unmapped = state.file("unmapped_subtractions.fq")
    if state.paired:
        survivors = bio_nuvs.surviving_ordinals(unmapped)
        state.assembly_reads = [state.file("unmapped_1.fq"), state.file("unmapped_2.fq")]
        kept = bio_nuvs.reunite_pairs(state.trimmed, survivors, state.assembly_reads)
    else:
        kept = bio_nuvs.count_reads(unmapped)
        state.assembly_reads = [unmapped]
    state.assembly_read_count = kept
    log.info("reads_left_for_assembly analysis_id=%s count=%d", state.analysis_id, kept)


@NUVS.step
def assemble(state: NuvsRun) -> None:
    """Assemble the remaining reads with SPAdes (its k-mer passes give the progress)."""
    if not state.assembly_read_count:
        state.scaffolds = state.file("empty.fasta")
        state.scaffolds.touch()
        state.note = "no reads were left to assemble: every read aligned to the reference or a subtraction"
    else:
        assembly = bio_nuvs.assemble_reads(
            state.assembly_reads,
            state.file("spades"),
            library_type=state.library_type,
            mem_gb=state.settings.mem_gb,
            on_progress=NUVS.progress_within(state, assemble),
            **state.tool_options(),
        )
        state.scaffolds, state.note = assembly.scaffolds, assembly.note
    if state.note:
        log.info(
            "nothing_assembled analysis_id=%s reads=%d note=%s",
            state.analysis_id,
            state.assembly_read_count,
            state.note,
        )
    with open(state.scaffolds, "rb") as src, gzip.open(state.file("assembly.fa.gz"), "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


@NUVS.step
def process_assembly(state: NuvsRun) -> None:
    """Find ORFs in contigs over 300 bp; keep the contigs that have any."""
    assert state.scaffolds is not None
    with open(state.scaffolds) as handle:
        state.contigs = bio_orfs.process_contigs(bio_orfs.read_fasta(handle))
    with gzip.open(state.file("orfs.fa.gz"), "wt", compresslevel=6) as handle:
        bio_orfs.write_orfs_fasta(state.contigs, handle)


@NUVS.step
def vfam(state: NuvsRun) -> None:
    """Search the ORFs for vFam profiles with hmmscan."""
    assert state.profiles is not None
    plain = state.file("orfs.fa")
    with gzip.open(state.file("orfs.fa.gz"), "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    find_hits(
        state.contigs,
        state.profiles,
        plain,
        state.file("hmm.tsv"),
        state.hit_ids,
        cpu=max(state.settings.proc - 1, 0),
        cutoff=evalue_cutoff(),
        timeout=state.settings.tool_timeout,
        cancel=state.cancel,
    )


@NUVS.step
def finalize(state: NuvsRun) -> None:
    """Upload assembly.fa.gz, orfs.fa.gz and hmm.tsv, then the results."""
    job, analysis_id, contigs = state.job, state.analysis_id, state.contigs
    for name, fmt in (("assembly.fa.gz", "fasta"), ("orfs.fa.gz", "fasta"), ("hmm.tsv", "tsv")):
        send_file(job, "POST", f"/api/analyses/{analysis_id}/files?name={name}&format={fmt}", state.file(name))
        state.check_cancelled()
    results: dict = {"hits": contigs}
    if state.note:
        results["note"] = state.note
    finalize_once(job, f"/api/analyses/{analysis_id}", {"results": results})
    log.info(
        "analysis_finalized analysis_id=%s contigs=%d orfs=%d hmm_hits=%d",
        analysis_id,
        len(contigs),
        sum(len(c["orfs"]) for c in contigs),
        sum(len(o["hits"]) for c in contigs for o in c["orfs"]),
    )


#: A tool that fails on its input fails again: only other errors (the API unreachable ...) are retried.
@actor(queue_name=queues.ANALYSES, max_retries=1, time_limit=48 * 3600 * 1000, throws=FINAL_ERRORS + (ToolError,))
def nuvs(process_id: str, job_key: str) -> None:
    run, settings = current(), from_env()
    context = run.context
    with work_dir(settings, process_id) as work:
        state = NuvsRun(
            run,
            settings,
            work,
            analysis_id=context["analysis_id"],
            sample_id=context["sample_id"],
            index_id=context["index_id"],
            subtraction_ids=context.get("subtraction_ids") or [],
        )
        if state.job.get(f"/api/analyses/{state.analysis_id}")["ready"]:
            return  # a redelivered message of a run that finalized but could not report it
        NUVS.run(state)
