"""A job's work folder: a rerun starts from nothing, whatever the dead run left behind."""

import subprocess
from pathlib import Path

from ringspot.tasks.workdir import work_dir

from ..conftest import wait_for


def test_a_rerun_kills_what_the_dead_run_left_in_its_work_folder(settings):
    path = Path(settings.data_path) / "work" / "rerun01"
    path.mkdir(parents=True)
    (path / "reference.1.bt2").write_bytes(b"half an index")
    leftover = subprocess.Popen(
        ["sh", "-c", 'sleep 60; echo "$0"', str(path / "reference")], start_new_session=True
    )  # the dead run's tool, in its own session as the runner starts it
    try:
        with work_dir(settings, "rerun01") as again:
            wait_for(lambda: leftover.poll() is not None, timeout=5, message="the orphaned tool to die")
            assert again == path and list(again.iterdir()) == []
    finally:
        leftover.kill()
        leftover.wait()
