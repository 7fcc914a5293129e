"""The life of one process run as an actor sees it: progress, cancellation, where it is stored.

The worker middleware claims the process, keeps its heartbeat and final state, and
installs a ``ProcessRun`` for the actor's thread; the actor reports steps and progress
through it (``runtime.Workflow`` does it step by step). Server operations store progress in
the database directly; jobs go through the Job API (``JobStore``), so job workers need no
database. Nothing here knows the broker: ``middleware`` and ``broker`` build on this module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..core import processes
from ..core.db import connect
from ..core.settings import Settings
from .jobclient import JobClient


class Cancelled(Exception):
    """The process was cancelled while it ran."""


class StepFailed(Exception):
    """A known failure with a message meant for the user; never retried."""


#: Exceptions that end a process at once instead of being retried.
FINAL_ERRORS: tuple[type[BaseException], ...] = (StepFailed, Cancelled, ValueError)

_local = threading.local()


class DbStore:
    """Progress of a server operation, written straight to the database."""

    def __init__(self, settings: Settings, process_id: str):
        self.db = connect(settings.mongodb_uri)
        self.process_id = process_id
        self.stale_after = settings.heartbeat_timeout

    def claim(self) -> dict | None:
        return processes.claim(self.db, self.process_id, self.stale_after)

    def heartbeat(self) -> bool:
        return processes.heartbeat(self.db, self.process_id)

    def report(self, step, progress, **context) -> None:
        processes.report(self.db, self.process_id, step=step, progress=progress, **context)

    def finish(self, state: str, error: str | None) -> None:
        processes.finish(self.db, self.process_id, state, error)


class JobStore:
    """Progress of a job, sent through the Job API with the job's key."""

    def __init__(self, settings: Settings, process_id: str, key: str):
        self.client = JobClient(settings.api_url, process_id, key)
        self.process_id = process_id

    def claim(self) -> dict | None:
        return self.client.claim()

    def heartbeat(self) -> bool:
        return self.client.ping()

    def report(self, step, progress, **context) -> None:
        self.client.report(step, progress)

    def finish(self, state: str, error: str | None) -> None:
        self.client.finish(state, error)


class ProcessRun:
    """What an actor uses while it runs: report progress, watch for cancellation."""

    def __init__(self, store, document: dict):
        self.store = store
        self.document = document
        self.process_id = store.process_id
        self.context = document.get("context", {})
        self.cancel = threading.Event()

    @property
    def job(self) -> JobClient | None:
        return getattr(self.store, "client", None)

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("Cancelled")

    def report(self, step: str | None = None, progress: float | None = None, **context) -> None:
        self.check_cancelled()
        self.store.report(step, progress, **context)

    def sub_progress(self, number: int, count: int) -> Callable[[float], None]:
        """Progress within step ``number`` of ``count``, for steps that loop over many items."""
        last = [-1.0]

        def update(fraction: float) -> None:
            value = round((number + fraction) / count, 2)
            if value > last[0]:
                last[0] = value
                self.report(progress=value)

        return update


def install(run: ProcessRun | None) -> None:
    _local.run = run


def current() -> ProcessRun:
    """The process run of the calling actor thread."""
    run = getattr(_local, "run", None)
    if run is None:
        raise RuntimeError("No process run installed: the actor must be sent with a process_id")
    return run
