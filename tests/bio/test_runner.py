"""The clean-up of tools that a dead run left working in its folder."""

import subprocess
import time

from ringspot.bio.runner import kill_tools_using

from ..conftest import wait_for


def orphan(argv, cwd=None) -> subprocess.Popen:
    """A tool as the runner starts it (its own session), standing in for one whose worker died."""
    return subprocess.Popen(argv, cwd=cwd, start_new_session=True)


def gone(proc: subprocess.Popen) -> bool:
    return proc.poll() is not None


def test_tools_working_in_a_folder_are_killed_and_others_spared(tmp_path):
    folder, elsewhere = tmp_path / "work" / "job1", tmp_path / "work" / "job10"
    folder.mkdir(parents=True)
    elsewhere.mkdir()
    by_argument = orphan(["sh", "-c", 'sleep 60; echo "$0"', str(folder / "reference.fa")])
    by_cwd = orphan(["sleep", "61"], cwd=folder)
    other_job = orphan(["sh", "-c", 'sleep 62; echo "$0"', str(elsewhere / "reference.fa")])
    not_a_tool = subprocess.Popen(["sh", "-c", 'sleep 63; echo "$0"', str(folder / "x")])  # the caller's own group
    try:
        assert kill_tools_using(folder) == 2
        wait_for(lambda: gone(by_argument) and gone(by_cwd), timeout=5, message="the tools to die")
        time.sleep(0.2)
        assert not gone(other_job) and not gone(not_a_tool)
    finally:
        for proc in (by_argument, by_cwd, other_job, not_a_tool):
            proc.kill()
            proc.wait()


def test_nothing_to_kill_in_an_empty_folder(tmp_path):
    assert kill_tools_using(tmp_path) == 0
