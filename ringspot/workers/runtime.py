"""What ``tasks`` builds on: the ``actor`` decorator, workflows of named steps, and ``start_process``.

Layers, each importing only those before it (never ``tasks``): ``runs`` (a process run: progress,
cancellation, its store), ``middleware`` (claim, heartbeat, final state), ``broker`` (set-up),
then this module.

A workflow is a list of module-level step functions over a run-state dataclass, declared in
order with ``@WORKFLOW.step``; each function's name is the step and its docstring's first line
the step's description, written into the process document when the work starts. There is no
second list of names to keep in step with the functions.

``start_process`` is the one way work starts: it writes the process document (and, for a job,
its key), sends the actor the process id, and when that fails takes back exactly what was
written: the process, and whatever the caller created for it (``undo``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import dramatiq

from ..core import jobs, processes
from ..core.db import Database
from ..core.settings import Settings
from ..core.utils import new_id
from .broker import configure
from .jobclient import JobClient
from .runs import FINAL_ERRORS, Cancelled, ProcessRun, StepFailed, current

__all__ = [
    "FINAL_ERRORS",
    "Cancelled",
    "JobState",
    "ProcessRun",
    "RunState",
    "StepFailed",
    "Workflow",
    "actor",
    "current",
    "start_process",
]

log = logging.getLogger("ringspot.workers.runtime")


def actor(**options):
    """``dramatiq.actor`` on the configured broker; process actors end in ``FINAL_ERRORS`` without retry."""
    configure()
    options.setdefault("throws", FINAL_ERRORS)
    return dramatiq.actor(**options)


@dataclass
class RunState:
    """What every step sees: the process run and the settings. A workflow's state adds its
    inputs and the results of the steps so far."""

    run: ProcessRun
    settings: Settings

    @property
    def cancel(self) -> threading.Event:
        return self.run.cancel

    def check_cancelled(self) -> None:
        self.run.check_cancelled()


@dataclass
class JobState(RunState):
    """A job's run: it also has a scratch folder and talks to the server through the Job API only."""

    work: Path

    @property
    def job(self) -> JobClient:
        client = self.run.job
        if client is None:
            raise RuntimeError("A job must be sent with its job key")
        return client

    @property
    def args(self) -> dict:
        return self.run.document.get("args", {})


S = TypeVar("S", bound=RunState)


def describe(function: Callable) -> str:
    """The first line of a step's docstring."""
    return (function.__doc__ or "").strip().splitlines()[0]


class Workflow(Generic[S]):
    """The steps of one process type, in the order they are declared with ``@workflow.step``."""

    def __init__(self, process_type: str, *, job: bool = False):
        self.process_type = process_type
        #: Jobs get a key and talk to the server through the Job API only.
        self.job = job
        self.functions: list[Callable[[S], object]] = []

    def step(self, function: Callable[[S], object]) -> Callable[[S], object]:
        """Add ``function`` as the next step; it must say what it does in its docstring."""
        if not (function.__doc__ or "").strip():
            raise TypeError(f"step {function.__name__} needs a one-line docstring: it is the step's description")
        self.functions.append(function)
        return function

    @property
    def steps(self) -> list[dict]:
        """``[{name, description}]`` as the process document lists them."""
        return [{"name": f.__name__, "description": describe(f)} for f in self.functions]

    def run(self, state: S) -> None:
        """Run the steps in order; ``step`` is each one's name and progress is its number over the count."""
        count = len(self.functions)
        for number, function in enumerate(self.functions):
            state.run.report(step=function.__name__, progress=number / count)
            function(state)
        state.check_cancelled()

    def progress_within(self, state: S, function: Callable[[S], object]) -> Callable[[float], None]:
        """Report progress within ``function``'s step, for steps that loop over many items."""
        return state.run.sub_progress(self.functions.index(function), len(self.functions))


def start_process(
    db: Database,
    task: dramatiq.Actor,
    workflow: Workflow,
    *,
    user_id: str | None,
    context: dict,
    args: dict | None = None,
    process_id: str | None = None,
    undo: Callable[[], object] | None = None,
) -> dict:
    """Write the process document (with a job key for a job workflow), then send ``task`` its id.

    ``process_id`` lets the caller name the process in the object it created for it beforehand;
    ``undo`` removes that object. When the process cannot be written or the message cannot be
    sent (the broker is down), the process and ``undo``'s object go and the error is raised.
    """
    process_id = process_id or new_id()
    try:
        doc, _ = processes.create_process(
            db,
            workflow.process_type,
            user_id=user_id,
            context=context,
            steps=workflow.steps,
            workflow=workflow.job,
            args=args,
            process_id=process_id,
        )
        # A job's message carries only a claim token: its key is issued at the claim, never queued.
        message = {
            "process_id": process_id,
            **({"job_key": jobs.issue_claim_token(db, process_id)} if workflow.job else {}),
        }
        task.send(**message)
    except Exception:
        _take_back(db, process_id, undo)
        raise
    return doc


def _take_back(db: Database, process_id: str, undo: Callable[[], object] | None) -> None:
    """Remove what a start that failed wrote; a failure here is logged, the original error is what counts."""
    for action in (lambda: processes.remove_process(db, process_id), undo):
        if action is None:
            continue
        try:
            action()
        except Exception:
            log.exception("start_undo_failed process_id=%s", process_id)
