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

import requests
from pymongo.database import Database

from ..bio import blast as bio_blast
from ..bio.runner import ToolCancelled
from ..core import blast as core_blast
from ..core import processes
from ..core.db import connect
from ..core.settings import Settings, from_env
from ..core.utils import new_id, now
from ..workers import queues
from ..workers.runtime import Cancelled, StepFailed, actor, current

log = logging.getLogger("ringspot.tasks.blast")

NCBI_STEPS = ["submit", "wait_for_result", "fetch_result"]
LOCAL_STEPS = ["prepare_database", "search"]
#: NCBI searches still not ready after this many seconds are abandoned.
ABANDON_AFTER = 30 * 60
#: Seconds an NCBI request may take, and tries of a request NCBI answers with 5xx or drops.
REQUEST_TIMEOUT = 30
REQUEST_TRIES = 3
USER_AGENT = "ringspot (NuVs contig BLAST)"


def start_blast(db: Database, settings: Settings, analysis_id: str, index: int, user_id: str | None) -> dict:
    """Create the process and a fresh record on the contig (replacing any earlier one), then enqueue."""
    backend = settings.blast_backend if settings.blast_backend in core_blast.BACKENDS else "ncbi"
    process_id = new_id()
    steps = LOCAL_STEPS if backend == "local" else NCBI_STEPS
    context = {"analysis_id": analysis_id, "sequence_index": index, "backend": backend}
    processes.create_process(db, "blast", user_id=user_id, context=context, steps=steps, process_id=process_id)
    record = core_blast.new_record(process_id, backend)
    previous = core_blast.replace_record(db, analysis_id, index, record)
    _cancel_superseded(db, previous)
    try:
        blast.send(process_id=process_id)
    except Exception:
        processes.finish(db, process_id, "error", "Could not enqueue the search")
        core_blast.update_record(db, analysis_id, index, process_id, error="Could not enqueue the search")
        raise
    return record


def _cancel_superseded(db: Database, previous: dict | None) -> None:
    """Stop the search an earlier request started for this contig; its writes are refused anyway."""
    process_id = ((previous or {}).get("process") or {}).get("id")
    if process_id and db.processes.find_one({"_id": process_id, "state": {"$in": ["waiting", "running"]}}, {"_id": 1}):
        processes.request_cancel(db, process_id)


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


@actor(queue_name=queues.BLAST, max_retries=2, time_limit=(ABANDON_AFTER + 600) * 1000)
def blast(process_id: str) -> None:
    run = current()
    settings = from_env()
    db = connect(settings.mongodb_uri)
    analysis_id, index = run.context["analysis_id"], run.context["sequence_index"]
    backend = run.context.get("backend", "ncbi")
    record = core_blast.get_record(db, analysis_id, index)
    if not record or (record.get("process") or {}).get("id") != process_id:
        return  # replaced by a newer request before this one started
    analysis = db.analyses.find_one({"_id": analysis_id}, {"results": 1})
    sequence = core_blast.nuvs_hits(analysis)[index]["sequence"]
    state = {"rid": record.get("rid"), "interval": record.get("interval") or bio_blast.INITIAL_INTERVAL}

    def update(**changes) -> None:
        if core_blast.update_record(db, analysis_id, index, process_id, **changes) is None:
            raise Cancelled("Replaced by a newer BLAST request")

    # -- NCBI

    ncbi = Ncbi(settings.blast_url)

    def submit():
        """Send the contig to NCBI and keep the request id."""
        if state["rid"]:
            return  # a retried run polls the search it already started
        params, form = bio_blast.put_params(sequence)
        rid, _ = bio_blast.parse_put_reply(ncbi.request("POST", params, form).text)
        state["rid"] = rid
        update(rid=rid, interval=state["interval"], last_checked_at=now())
        log.info("blast_submitted process_id=%s rid=%s", process_id, rid)

    def wait_for_result():
        """Check the search at growing intervals until NCBI has finished it."""
        started = time.monotonic()
        while True:
            _pause(run, state["interval"])
            reply = ncbi.request("GET", bio_blast.check_params(state["rid"]))
            if bio_blast.is_ready(reply.text):
                update(last_checked_at=now())
                return
            if time.monotonic() - started > ABANDON_AFTER:
                raise StepFailed(f"NCBI did not finish the search within {ABANDON_AFTER // 60} minutes")
            state["interval"] = bio_blast.next_interval(state["interval"])
            update(interval=state["interval"], last_checked_at=now())

    def fetch_result():
        """Download the JSON2 result and keep the formatted report."""
        reply = ncbi.request("GET", bio_blast.result_params(state["rid"]))
        result = bio_blast.format_blast_content(bio_blast.read_result_zip(reply.content, state["rid"]))
        update(ready=True, result=result, last_checked_at=now(), error=None)

    # -- local

    def prepare_database():
        """Build (or reuse) the BLAST database of every reference sequence."""
        state["prefix"] = core_blast.ensure_local_database(
            db, settings.data_path, timeout=settings.tool_timeout, cancel=run.cancel
        )

    def search():
        """Run blastn against the reference sequences."""
        result = bio_blast.blastn_local(
            sequence, state["prefix"], threads=settings.proc, timeout=settings.tool_timeout, cancel=run.cancel
        )
        update(
            ready=True, result=core_blast.name_local_hits(result, state["prefix"]), last_checked_at=now(), error=None
        )

    steps = [prepare_database, search] if backend == "local" else [submit, wait_for_result, fetch_result]
    try:
        run.run_steps(steps)
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
