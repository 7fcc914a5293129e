"""gunicorn hooks for ``/metrics`` across worker processes (``gunicorn -c python:ringspot.api.gunicorn_conf``).

With ``PROMETHEUS_MULTIPROC_DIR`` set, every worker writes its samples to files in that folder.
The folder is emptied when the server starts (samples of an earlier run would be added to this
one's), a worker that exits has its live gauges retired, and every worker started to replace
another counts as a restart.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def on_starting(server) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)


def pre_fork(server, worker) -> None:
    # Runs in the arbiter before each worker is forked: the first ``workers`` forks are the
    # start, any later one replaces a worker that exited.
    server.ringspot_forks = getattr(server, "ringspot_forks", 0) + 1
    if server.ringspot_forks > server.cfg.workers:
        from .metrics import WEB_RESTARTS

        WEB_RESTARTS.inc()


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
