"""``blast``: BLAST one NuVs contig, at NCBI or against the local references, and keep the result.

A server operation (not a job): it reads the contig and writes the record on the analysis
directly (``core.blast``). Two back ends, chosen by ``settings.blast_backend``:

* ``ncbi``: the BLAST URL API at ``settings.blast_url``: ``Put`` the contig, poll ``SearchInfo``
  with a growing interval (3 s, +5 s per check, at most 75 s; abandoned after 30 min), ``Get``
  the JSON2 zip and keep the formatted report. A reply that is not what the protocol says ends
  the search with ``blast.error`` set; the rest of the analysis is never touched.
* ``local``: ``blastn`` (megablast, as the NCBI submission) against a BLAST database of every
  reference sequence in the system, built once per content, for labs without internet.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from ..bio import blast as bio_blast
from ..bio.runner import ToolCancelled
from ..core import blast as core_blast
from ..core import processes
from ..core.db import Database, connect
from ..core.settings import Settings, from_env
from ..core.utils import new_id, now
from ..workers import queues
from ..workers.runtime import Cancelled, RunState, StepFailed, Workflow, actor, current, start_process

log = logging.getLogger("ringspot.tasks.blast")

#: NCBI searches still not ready after this many seconds are abandoned.
ABANDON_AFTER = 30 * 60
#: Seconds an NCBI request may take, and tries of a request NCBI answers with 5xx or drops.
REQUEST_TIMEOUT = 30
REQUEST_TRIES = 3
USER_AGENT = "ringspot (NuVs contig BLAST)"


@dataclass
class BlastRun(RunState):
    """A ``blast`` run: the contig, the record it fills, and the search so far."""

    db: Database
    process_id: str
    analysis_id: str
    index: int
    sequence: str
    rid: str | None = None
    interval: int = bio_blast.INITIAL_INTERVAL
    prefix: Path | None = None
    ncbi: Ncbi | None = None

    def update(self, **changes) -> None:
        """Change this run's record; a newer request that replaced it ends the run."""
        if core_blast.update_record(self.db, self.analysis_id, self.index, self.process_id, **changes) is None:
            raise Cancelled("Replaced by a newer BLAST request")


#: The two back ends are two workflows of one process type; settings choose one per search.
NCBI: Workflow[BlastRun] = Workflow("blast")
LOCAL: Workflow[BlastRun] = Workflow("blast")


def start_blast(db: Database, settings: Settings, analysis_id: str, index: int, user_id: str | None) -> dict:
    """Put a fresh record on the contig (replacing any earlier one) and start its process.

    If the process cannot start, the earlier record comes back; once it has started, the
    earlier search is asked to stop (its writes are refused anyway).
    """
    backend = settings.blast_backend if settings.blast_backend in core_blast.BACKENDS else "ncbi"
    process_id = new_id()
    record = core_blast.new_record(process_id, backend)
    previous = core_blast.replace_record(db, analysis_id, index, record)
    start_process(
        db,
        blast,
        LOCAL if backend == "local" else NCBI,
        process_id=process_id,
        user_id=user_id,
        context={"analysis_id": analysis_id, "sequence_index": index, "backend": backend},
        undo=lambda: core_blast.restore_record(db, analysis_id, index, process_id, previous),
    )
    superseded = ((previous or {}).get("process") or {}).get("id")
    if superseded:
        processes.cancel_if_active(db, superseded)
    return record


def _backoff(attempt: int) -> None:
    """Wait before trying an NCBI request again."""
    time.sleep(2 * attempt)


def _pause(run, seconds: float) -> None:
    """Wait between status checks; a cancel ends the wait at once."""
    run.cancel.wait(seconds)
    run.check_cancelled()


class Ncbi:
    """The few NCBI URL-API requests, each tried again on a dropped connection or a 5xx."""

    def __init__(self, url: str):
        self.url = url
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def request(self, method: str, params: dict, data: dict | None = None) -> requests.Response:
        for attempt in range(1, REQUEST_TRIES + 1):
            try:
                response = self.session.request(method, self.url, params=params, data=data, timeout=REQUEST_TIMEOUT)
            except (requests.ConnectionError, requests.Timeout) as error:
                problem = f"NCBI could not be reached ({type(error).__name__})"
            else:
                if response.status_code < 400:
                    return response
                problem = f"NCBI answered HTTP {response.status_code}"
                if response.status_code < 500:
                    break
            if attempt < REQUEST_TRIES:
                _backoff(attempt)
        raise StepFailed(problem)


# ---------------------------------------------------------------- NCBI


@NCBI.step
def submit(state: BlastRun) -> None:
    """Send the contig to NCBI and keep the request id."""
    if state.rid:
        return  # a retried run polls the search it already started
    assert state.ncbi is not None
    params, form = bio_blast.put_params(state.sequence)
    state.rid, _ = bio_blast.parse_put_reply(state.ncbi.request("POST", params, form).text)
    state.update(rid=state.rid, interval=state.interval, last_checked_at=now())
    log.info("blast_submitted process_id=%s rid=%s", state.process_id, state.rid)


@NCBI.step
def wait_for_result(state: BlastRun) -> None:
    """Check the search at growing intervals until NCBI has finished it."""
    assert state.ncbi is not None and state.rid is not None
    started = time.monotonic()
    while True:
        _pause(state.run, state.interval)
        reply = state.ncbi.request("GET", bio_blast.check_params(state.rid))
        if bio_blast.is_ready(reply.text):
            state.update(last_checked_at=now())
            return
        if time.monotonic() - started > ABANDON_AFTER:
            raise StepFailed(f"NCBI did not finish the search within {ABANDON_AFTER // 60} minutes")
        state.interval = bio_blast.next_interval(state.interval)
        state.update(interval=state.interval, last_checked_at=now())


@NCBI.step
def fetch_result(state: BlastRun) -> None:
    """Download the JSON2 result and keep the formatted report."""
    assert state.ncbi is not None and state.rid is not None
    reply = state.ncbi.request("GET", bio_blast.result_params(state.rid))
    result = bio_blast.format_blast_content(bio_blast.read_result_zip(reply.content, state.rid))
    state.update(ready=True, result=result, last_checked_at=now(), error=None)


# ---------------------------------------------------------------- local


@LOCAL.step
def prepare_database(state: BlastRun) -> None:
    """Build (or reuse) the BLAST database of every reference sequence."""
    settings = state.settings
    state.prefix = core_blast.ensure_local_database(
        state.db, settings.data_path, timeout=settings.tool_timeout, cancel=state.cancel
    )


@LOCAL.step
def search(state: BlastRun) -> None:
    """Run blastn against the reference sequences."""
    assert state.prefix is not None
    settings = state.settings
    result = bio_blast.blastn_local(
        state.sequence, state.prefix, threads=settings.proc, timeout=settings.tool_timeout, cancel=state.cancel
    )
    state.update(ready=True, result=core_blast.name_local_hits(result, state.prefix), last_checked_at=now(), error=None)


@actor(queue_name=queues.BLAST, max_retries=2, time_limit=(ABANDON_AFTER + 600) * 1000)
def blast(process_id: str) -> None:
    run, settings = current(), from_env()
    db = connect(settings.mongodb_uri)
    analysis_id, index = run.context["analysis_id"], run.context["sequence_index"]
    record = core_blast.get_record(db, analysis_id, index)
    if not record or (record.get("process") or {}).get("id") != process_id:
        return  # replaced by a newer request before this one started
    state = BlastRun(
        run,
        settings,
        db=db,
        process_id=process_id,
        analysis_id=analysis_id,
        index=index,
        sequence=core_blast.contig_sequence(db, analysis_id, index),
        rid=record.get("rid"),
        interval=record.get("interval") or bio_blast.INITIAL_INTERVAL,
        ncbi=Ncbi(settings.blast_url),
    )
    try:
        (LOCAL if run.context.get("backend", "ncbi") == "local" else NCBI).run(state)
    except (ValueError, StepFailed) as error:
        # The protocol broke or NCBI gave up: final, and said on the record.
        core_blast.update_record(db, analysis_id, index, process_id, error=str(error), last_checked_at=now())
        raise
    except (Cancelled, ToolCancelled):
        core_blast.update_record(db, analysis_id, index, process_id, error="Cancelled")
        raise
    except Exception as error:
        core_blast.update_record(db, analysis_id, index, process_id, error=f"{type(error).__name__}: {error}")
        raise
