"""``ringspot up`` runs every Procfile process type on one machine and stops them all."""

import os
import signal
import subprocess
import time

import requests

from ..conftest import ROOT, VENV_BIN, free_port, wait_port


def test_up_runs_the_procfile_and_stops_cleanly(database_server, redis_server, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "MONGODB_URI": f"{database_server}/up_test",
        "REDIS_URL": redis_server,
        "BROKER_URL": redis_server,
        "DATA_PATH": str(tmp_path / "data"),
        "RINGSPOT_PORT": str(port),
    }
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = "/usr/bin:/bin"  # as when the command is run as .venv/bin/ringspot, not activated
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115  (the stack writes to it until the test stops it)
    up = subprocess.Popen(
        [str(VENV_BIN / "ringspot"), "up"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_port(port, timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/openapi.json", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        # Every worker pool of the Procfile boots and stays up.
        expected = {
            line.split(":")[0] for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("worker-")
        }

        def ready_pools():
            text = (tmp_path / "up.log").read_text(errors="replace")
            return {line.split("|")[0].strip() for line in text.splitlines() if "ready for action" in line}

        deadline = time.monotonic() + 60
        while ready_pools() != expected and time.monotonic() < deadline and up.poll() is None:
            time.sleep(0.5)
        assert ready_pools() == expected, (tmp_path / "up.log").read_text()[-2000:]
        time.sleep(2)
        assert up.poll() is None, (tmp_path / "up.log").read_text()[-2000:]
    finally:
        os.killpg(up.pid, signal.SIGINT)
        up.wait(60)
        log.close()
    output = (tmp_path / "up.log").read_text()
    assert up.returncode == 0, output[-2000:]
    assert "exited with code" not in output
