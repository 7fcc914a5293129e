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
from pathlib import Path

from ..bio import hmmer
from ..bio import nuvs as bio_nuvs
from ..bio import orfs as bio_orfs
from ..core.settings import from_env
from ..workers import queues
from .cache import cache_root, cached, cached_mapping_files
from ..workers.runtime import actor, current
from .transfer import finalize_once, send_file
from .workdir import work_dir

log = logging.getLogger("ringspot.tasks.nuvs")

STEPS = [
    "download_inputs",
    "trim_reads",
    "eliminate_otus",
    "eliminate_subtraction",
    "reunite_pairs",
    "assemble",
    "process_assembly",
    "vfam",
    "finalize",
]
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


@actor(queue_name=queues.ANALYSES, max_retries=1, time_limit=48 * 3600 * 1000)
def nuvs(process_id: str, job_key: str) -> None:
    run = current()
    job = run.job
    settings = from_env()
    args = run.document.get("args", {})
    context = run.context
    analysis_id, sample_id, index_id = context["analysis_id"], context["sample_id"], context["index_id"]
    subtraction_ids = context.get("subtraction_ids") or []
    proc, timeout, cancel = settings.proc, settings.tool_timeout, run.cancel

    if job.get(f"/api/analyses/{analysis_id}")["ready"]:
        return  # a redelivered message of a run that finalized but could not report it

    with work_dir(settings, process_id) as work:
        state: dict = {}
        reads_dir, trimmed_dir = work / "reads", work / "trimmed"
        numbered = work / "numbered.fq"
        unmapped_otus, unmapped_subtractions = work / "unmapped_otus.fq", work / "unmapped_subtractions.fq"
        unmapped_pairs = [work / "unmapped_1.fq", work / "unmapped_2.fq"]
        assembly, orfs_fasta, tblout = work / "assembly.fa.gz", work / "orfs.fa.gz", work / "hmm.tsv"

        def download_inputs():
            """Download the reads, the index and subtraction files (cached) and the HMM profiles (pressed once)."""
            sample = job.get(f"/api/samples/{sample_id}")
            state["paired"] = bool(sample.get("paired", args.get("paired")))
            state["library_type"] = sample.get("library_type") or args.get("library_type") or "normal"
            names = args.get("read_files") or list(READ_NAMES if state["paired"] else READ_NAMES[:1])
            state["reads"] = [reads_dir / name for name in names]
            for name, path in zip(names, state["reads"], strict=False):
                job.download(f"/api/samples/{sample_id}/reads/{name}", path)
                run.check_cancelled()
            length = ((sample.get("quality") or {}).get("length") or [0, 0])[-1]
            state["max_length"] = length or bio_nuvs.max_read_length(state["reads"])
            state["index"] = download_index() / "reference"
            state["subtractions"] = [download_subtraction(s) / "subtraction" for s in subtraction_ids]
            state["profiles"], state["hit_ids"] = hmm_files(job, settings, run)

        def download_index() -> Path:
            # Same cache entry as Pathoscope's: the same files, whichever workflow comes first.
            return cached_mapping_files(job, run, settings, "indexes", index_id)[0]

        def download_subtraction(subtraction_id: str) -> Path:
            return cached_mapping_files(job, run, settings, "subtractions", subtraction_id)[0]

        def trim_reads():
            """Trim adapters and low-quality ends with skewer."""
            state["trimmed"] = bio_nuvs.trim_reads(
                state["reads"],
                trimmed_dir,
                library_type=state["library_type"],
                max_length=state["max_length"],
                proc=proc,
                timeout=timeout,
                cancel=cancel,
            )

        def eliminate_otus():
            """Drop reads that align to the reference's default isolates."""
            if state["paired"]:  # both mates as unpaired reads, named by pair ordinal for reuniting
                bio_nuvs.number_reads(state["trimmed"], numbered)
                source = numbered
            else:
                source = state["trimmed"][0]
            bio_nuvs.eliminate_reads(state["index"], source, unmapped_otus, proc=proc, timeout=timeout, cancel=cancel)

        def eliminate_subtraction():
            """Drop reads that align to each subtraction in turn."""
            current_reads = unmapped_otus
            for number, prefix in enumerate(state["subtractions"]):
                target = work / f"unmapped_subtraction_{number}.fq"
                bio_nuvs.eliminate_reads(prefix, current_reads, target, proc=proc, timeout=timeout, cancel=cancel)
                current_reads = target
            shutil.copyfile(current_reads, unmapped_subtractions)

        def reunite_pairs():
            """Bring back both mates of every pair of which one mate survived elimination."""
            if state["paired"]:
                survivors = bio_nuvs.surviving_ordinals(unmapped_subtractions)
                kept = bio_nuvs.reunite_pairs(state["trimmed"], survivors, unmapped_pairs)
                state["assembly_reads"] = unmapped_pairs
            else:
                kept = bio_nuvs.count_reads(unmapped_subtractions)
                state["assembly_reads"] = [unmapped_subtractions]
            state["assembly_read_count"] = kept
            log.info("reads_left_for_assembly analysis_id=%s count=%d", analysis_id, kept)

        def assemble():
            """Assemble the remaining reads with SPAdes."""
            if not state["assembly_read_count"]:
                state["scaffolds"] = work / "empty.fasta"
                state["scaffolds"].touch()
            else:
                state["scaffolds"] = bio_nuvs.assemble(
                    state["assembly_reads"],
                    work / "spades",
                    library_type=state["library_type"],
                    proc=proc,
                    mem_gb=settings.mem_gb,
                    timeout=timeout,
                    cancel=cancel,
                )
            with open(state["scaffolds"], "rb") as src, gzip.open(assembly, "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)

        def process_assembly():
            """Find ORFs in contigs over 300 bp; keep the contigs that have any."""
            with open(state["scaffolds"]) as handle:
                state["contigs"] = bio_orfs.process_contigs(bio_orfs.read_fasta(handle))
            with gzip.open(orfs_fasta, "wt", compresslevel=6) as handle:
                bio_orfs.write_orfs_fasta(state["contigs"], handle)

        def vfam():
            """Search the ORFs for vFam profiles with hmmscan."""
            plain = work / "orfs.fa"
            with gzip.open(orfs_fasta, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
            find_hits(
                state["contigs"],
                state["profiles"],
                plain,
                tblout,
                state["hit_ids"],
                cpu=max(proc - 1, 0),
                cutoff=evalue_cutoff(),
                timeout=timeout,
                cancel=cancel,
            )

        def finalize():
            """Upload assembly.fa.gz, orfs.fa.gz and hmm.tsv, then the results."""
            for path, fmt in ((assembly, "fasta"), (orfs_fasta, "fasta"), (tblout, "tsv")):
                send_file(job, "POST", f"/api/analyses/{analysis_id}/files?name={path.name}&format={fmt}", path)
                run.check_cancelled()
            finalize_once(job, f"/api/analyses/{analysis_id}", {"results": {"hits": state["contigs"]}})
            log.info(
                "analysis_finalized analysis_id=%s contigs=%d orfs=%d hmm_hits=%d",
                analysis_id,
                len(state["contigs"]),
                sum(len(c["orfs"]) for c in state["contigs"]),
                sum(len(o["hits"]) for c in state["contigs"] for o in c["orfs"]),
            )

        run.run_steps(
            [
                download_inputs,
                trim_reads,
                eliminate_otus,
                eliminate_subtraction,
                reunite_pairs,
                assemble,
                process_assembly,
                vfam,
                finalize,
            ]
        )
