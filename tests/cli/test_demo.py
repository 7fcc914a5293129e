"""``ringspot demo`` (what ``make demo`` runs): the stack comes up, the main job runs end to end on
the real reads and the report's diagnosis names the RpRSV sample's virus."""

import os
import re
import subprocess

from ..conftest import ROOT, VENV_BIN, free_port


def test_demo_runs_the_main_job_end_to_end(database_server, redis_server, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "MONGODB_URI": f"{database_server}/demo_test",
        "REDIS_URL": redis_server,
        "BROKER_URL": redis_server,
        "DATA_PATH": str(tmp_path / "data"),
        "RINGSPOT_PORT": str(port),
        "COLUMNS": "200",  # rich's tables unwrapped
    }
    result = subprocess.run(
        [str(VENV_BIN / "ringspot"), "demo", "--no-nuvs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert re.search(r"reference \w+: 2084 OTUs", output)
    assert re.search(r"RpRSV NextSeq\s+│\s+20000\s+│\s+True", output)
    row = next(line for line in output.splitlines() if "Raspberry ringspot virus" in line)
    assert "detected" in row and "not_detected" not in row
    assert f"The report in a browser: http://127.0.0.1:{port}/analyses/" in output
    assert "Traceback" not in output
