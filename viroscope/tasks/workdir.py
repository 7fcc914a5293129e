"""A job's scratch folder on the worker: emptied at the start of every run, removed at the end."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from ..core.settings import Settings


@contextlib.contextmanager
def work_dir(settings: Settings, process_id: str):
    path = Path(settings.data_path) / "work" / process_id
    # A redelivered message starts from nothing, whatever a crashed run left behind.
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
