"""The whole path on real process types: HTTP request -> Redis -> worker -> Job API -> result.

Gunicorn serves the API, a Dramatiq worker runs every queue against a real Redis, the
index build job talks to the server only through the Job API, and bowtie2-build runs
for real. One build is cancelled while bowtie2-build runs: its tool dies, the index is
removed and the reference is free to build again.
"""

import gzip
import subprocess
import time

from ..conftest import DATA, wait_for

SMALL = DATA / "reference" / "example-20otus.reference.json.gz"
LARGE = DATA / "reference" / "ref-plant-viruses-v1.5.0.reference.json.gz"


def import_reference(stack, path, name):
    with open(path, "rb") as handle:
        upload = stack.call("POST", "/api/uploads", params={"name": path.name, "type": "reference"}, data=handle)
    assert upload.status_code == 201, upload.text
    created = stack.call(
        "POST", "/api/refs", json={"name": name, "data_type": "genome", "import_from": upload.json()["id"]}
    )
    assert created.status_code == 201, created.text
    stack.wait_process(created.json()["process"]["id"], timeout=180)
    return stack.call("GET", f"/api/refs/{created.json()['id']}").json()


def test_index_build_runs_on_a_real_worker_through_the_job_api(stack, tmp_path):
    ref = import_reference(stack, SMALL, "Example")
    assert ref["otu_count"] == 20 and ref["unbuilt_change_count"] == 20

    response = stack.call("POST", f"/api/refs/{ref['id']}/indexes")
    assert response.status_code == 201, response.text
    index = response.json()
    job = stack.wait_process(index["job"]["id"], timeout=180)
    assert job["progress"] == 1 and job["attempts"] == 1

    index = stack.call("GET", f"/api/indexes/{index['id']}").json()
    assert index["ready"] is True and index["change_count"] == 20 and len(index["manifest"]) == 20
    names = {f["name"] for f in index["files"]}
    assert {"reference.fa.gz", "reference.json.gz", "reference.1.bt2", "reference.rev.2.bt2"} <= names
    assert stack.call("GET", f"/api/refs/{ref['id']}").json()["unbuilt_change_count"] == 0

    # The built files are a working Bowtie2 index: map a read cut from the reference itself.
    prefix = tmp_path / "reference"
    for name in names:
        body = stack.call("GET", f"/api/indexes/{index['id']}/files/{name}").content
        (tmp_path / name).write_bytes(body)
    fasta = gzip.decompress((tmp_path / "reference.fa.gz").read_bytes()).decode().split("\n")
    read = fasta[1][100:160]
    reads = tmp_path / "read.fq"
    reads.write_text(f"@r1\n{read}\n+\n{'I' * len(read)}\n")
    sam = subprocess.run(
        ["bowtie2", "--no-hd", "-x", str(prefix), "-U", str(reads)], capture_output=True, text=True, check=True
    ).stdout
    assert sam.split("\t")[2] == fasta[0][1:]


def test_cancel_kills_bowtie2_build_and_frees_the_reference(stack):
    ref = import_reference(stack, LARGE, "Plant viruses")
    assert ref["otu_count"] == 2084

    index = stack.call("POST", f"/api/refs/{ref['id']}/indexes").json()
    job_id = index["job"]["id"]
    wait_for(
        lambda: stack.call("GET", f"/api/processes/{job_id}").json()["step"] == "bowtie_build",
        timeout=120,
        interval=0.2,
        message="bowtie2-build to start",
    )
    running = lambda: _bowtie2_build_running(f"{stack.data_path}/work/{job_id}")  # noqa: E731
    wait_for(running, timeout=30, message="bowtie2-build process")
    started = time.monotonic()
    assert stack.call("DELETE", f"/api/processes/{job_id}").status_code == 202
    stack.wait_process(job_id, states=("cancelled",), timeout=30)
    assert time.monotonic() - started < 5
    wait_for(lambda: not running(), timeout=5, message="bowtie2-build to die")
    assert stack.call("GET", f"/api/indexes/{index['id']}").status_code == 404
    assert stack.call("GET", f"/api/refs/{ref['id']}").json()["unbuilt_change_count"] == 2084
    # Free for the next build.
    again = stack.call("POST", f"/api/refs/{ref['id']}/indexes")
    assert again.status_code == 201
    stack.call("DELETE", f"/api/processes/{again.json()['job']['id']}")


def test_reference_removal_is_a_process_run_by_the_worker(stack):
    ref = import_reference(stack, SMALL, "To remove")
    response = stack.call("DELETE", f"/api/refs/{ref['id']}")
    assert response.status_code == 202
    process_id = response.headers["Content-Location"].rsplit("/", 1)[-1]
    assert response.json()["type"] == "delete_reference"
    stack.wait_process(process_id, timeout=60)
    assert stack.call("GET", f"/api/refs/{ref['id']}").status_code == 404
    assert stack.db.otus.count_documents({"reference.id": ref["id"]}) == 0


def _bowtie2_build_running(work_dir: str) -> bool:
    """Whether a bowtie2-build of this job's work folder is alive (other builds may run too)."""
    out = subprocess.run(["pgrep", "-f", f"bowtie2-build.*{work_dir}"], capture_output=True, text=True).stdout
    return bool(out.strip())
