"""Process bookkeeping for every actor sent with a ``process_id``.

Claims the process before the actor runs (a redelivered message for a process that
is finished or cancelled is skipped; one for a process still alive on another worker
is sent again for when that run's heartbeat would be stale, and one that cannot reach
the database or the Job API is sent again a few seconds later), beats its heart while
it runs, turns a cancel request into the run's cancel event (which kills its tools),
and records the final state: complete, error, cancelled, or waiting again when
dramatiq will retry it.
"""

from __future__ import annotations

import logging
import threading

from dramatiq.middleware import Middleware, SkipMessage, TimeLimitExceeded
from dramatiq.middleware.threading import raise_thread_exception

from ..bio.runner import ToolCancelled
from ..core.db import DatabaseUnreachable
from ..core.processes import RunningElsewhere
from ..core.settings import from_env
from .jobclient import RETRYABLE, JobApiError
from .runs import Cancelled, DbStore, JobStore, ProcessRun, install

log = logging.getLogger("ringspot.workers")

#: Seconds between heartbeats (and cancel checks) of a running process.
HEARTBEAT_INTERVAL = 1.0
#: Failures to reach the database (server operations) or the Job API (jobs) while claiming.
UNREACHABLE = (DatabaseUnreachable, *RETRYABLE)
#: Seconds before a message that met an unreachable server is tried again.
UNREACHABLE_RETRY_DELAY = 5.0
#: After a cancel, seconds a run gets to stop by itself before it is interrupted.
CANCEL_GRACE = 3.0


class ProcessBookkeeping(Middleware):
    def __init__(self):
        self.runs: dict[str, tuple[ProcessRun, threading.Event]] = {}

    def _store(self, message):
        # Settings are read per message so a worker follows its environment (tests switch databases).
        settings, kwargs = from_env(), message.kwargs
        if "job_key" in kwargs:
            return JobStore(settings, kwargs["process_id"], kwargs["job_key"])
        return DbStore(settings, kwargs["process_id"])

    def before_process_message(self, broker, message):
        if "process_id" not in message.kwargs:
            return
        process_id, store = message.kwargs["process_id"], self._store(message)
        try:
            document = store.claim()
        except RunningElsewhere as busy:
            # The broker gave up on a worker that the process heartbeat says is alive (or a
            # duplicate delivery): dropping the message could orphan the process if that worker
            # dies after all, so look again when its heartbeat would have gone stale.
            self._defer(broker, message, busy.retry_after + 1, "running elsewhere")
        except UNREACHABLE as error:
            # The database or the API is restarting: the work waits for it rather than fail.
            self._defer(broker, message, UNREACHABLE_RETRY_DELAY, f"server unreachable ({type(error).__name__})")
        except JobApiError as error:
            if error.status >= 500:
                self._defer(broker, message, UNREACHABLE_RETRY_DELAY, f"server error {error.status}")
            # The job was removed or its key no longer holds: nothing to run.
            log.warning("process_refused process_id=%s error=%s", process_id, error)
            raise SkipMessage() from None
        if document is None:
            log.info("process_skipped process_id=%s", process_id)
            raise SkipMessage()
        run = ProcessRun(store, document)
        stop = threading.Event()
        self.runs[message.message_id] = (run, stop)
        install(run)
        worker_thread = threading.get_ident()
        threading.Thread(target=self._beat, args=(run, stop, worker_thread), daemon=True).start()
        log.info("process_started process_id=%s actor=%s", run.process_id, message.actor_name)

    @staticmethod
    def _defer(broker, message, seconds: float, reason: str) -> None:
        """Send the message again in ``seconds`` and skip this delivery (its ack removes only this copy)."""
        broker.enqueue(message, delay=int(seconds * 1000))
        log.info("process_deferred process_id=%s seconds=%.1f reason=%s", message.kwargs["process_id"], seconds, reason)
        raise SkipMessage()

    def _beat(self, run: ProcessRun, stop: threading.Event, worker_thread: int) -> None:
        """Heartbeat loop; on cancel, set the event (tools die) and later interrupt the actor."""
        cancelled_at = None
        while not stop.wait(HEARTBEAT_INTERVAL):
            try:
                if run.store.heartbeat() and not run.cancel.is_set():
                    run.cancel.set()
                    cancelled_at = 0.0
            except Exception:  # a missed beat is not fatal; the next one may pass
                log.warning("heartbeat_failed process_id=%s", run.process_id, exc_info=True)
            if cancelled_at is not None:
                cancelled_at += HEARTBEAT_INTERVAL
                if cancelled_at >= CANCEL_GRACE and not stop.is_set():
                    raise_thread_exception(worker_thread, Cancelled)
                    cancelled_at = None

    def after_process_message(self, broker, message, *, result=None, exception=None):
        entry = self.runs.pop(message.message_id, None)
        if entry is None:
            return
        run, stop = entry
        stop.set()
        install(None)
        state, error = self._outcome(run, message, exception)
        try:
            run.store.finish(state, error)
        except Exception:
            log.exception("finish_failed process_id=%s", run.process_id)
        log.info("process_finished process_id=%s state=%s error=%s", run.process_id, state, error)

    def _outcome(self, run: ProcessRun, message, exception) -> tuple[str, str | None]:
        if exception is None:
            return "complete", None
        if run.cancel.is_set() or isinstance(exception, (Cancelled, ToolCancelled)):
            return "cancelled", None
        if isinstance(exception, TimeLimitExceeded):
            return "error", "Time limit exceeded"
        error = str(exception) or type(exception).__name__
        # Retries' after-hook ran before this one and marks the message failed when it gives up.
        return ("error", error) if message.failed else ("waiting", error)

    def after_skip_message(self, broker, message):
        install(None)
