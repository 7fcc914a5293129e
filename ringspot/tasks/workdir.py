"""A job's scratch folder on the worker: emptied at the start of every run, removed at the end."""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

from ..bio.runner import kill_tools_using
from ..core.settings import Settings

log = logging.getLogger("ringspot.tasks")


@contextlib.contextmanager
def work_dir(settings: Settings, process_id: str):
    path = Path(settings.data_path) / "work" / process_id
    # A redelivered message starts from nothing, whatever a crashed run left behind: its tools,
    # which outlive a killed worker, and its files.
    if path.exists() and kill_tools_using(path):
        log.warning("orphaned_tools_killed process_id=%s", process_id)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
