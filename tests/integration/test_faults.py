"""The database server and Redis go away and come back: the API says 503 meanwhile (never a
hang, never a traceback), leaves nothing half-written, and works again when they return
without losing an acknowledged write. A real worker runs jobs through both restarts: the
running job finishes once, queued work runs afterwards, and the worker lives on."""

import os
import subprocess
import time

import pytest
import redis
import requests

from ringspot.core import auth
from ringspot.core.db import connect
from ringspot.core.processes import FINISHED
from ringspot.core.utils import new_id, now

from ..conftest import DATA, ROOT, VENV_BIN, free_port, start_database, start_redis, wait_for, wait_port
from .conftest import stop_process_group
from .test_stack import LARGE

SMALL = DATA / "reference" / "example-20otus.reference.json.gz"
READS = DATA / "samples" / "rprsv-paired-nextseq"
SINGLE = DATA / "samples" / "glrav1-grapevine-125reads.fq.gz"


class Services:
    """A private nx-27017, Redis, API and worker that this module may stop and start at will.

    Redis keeps an append-only file synced on every write, as in production, so a restart loses
    no message it acknowledged; both servers come back on the same port and data folder.
    """

    def __init__(self, tmp):
        self.tmp = tmp
        self.db_proc, self.db_port = start_database(tmp / "db")
        self.redis_proc, self.redis_port = start_redis(tmp / "redis", persistent=True)
        self.log = open(tmp / "services.log", "wb")  # noqa: SIM115  (the services write to it while they run)
        self.web = self.worker = None

    def start_db(self):
        return start_database(self.tmp / "db", self.db_port)[0]

    def start_redis(self):
        return start_redis(self.tmp / "redis", self.redis_port, persistent=True)[0]

    def start(self, argv):
        return subprocess.Popen(
            argv, env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start_worker(self):
        """A worker pool on every queue, as a Procfile ``worker-*`` line runs it."""
        self.worker = self.start(
            [str(VENV_BIN / "dramatiq"), "ringspot.workers.app", "--processes", "1", "--threads", "2"]
        )
        return self.worker

    def worker_pids(self) -> set[int]:
        """The worker's main process and its children (the process that runs the actors)."""
        out = subprocess.run(["pgrep", "-P", str(self.worker.pid)], capture_output=True, text=True).stdout
        return {self.worker.pid, *map(int, out.split())}

    @staticmethod
    def stop(proc):
        proc.terminate()
        proc.wait(15)


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    services = Services(tmp)
    port = free_port()
    services.env = {
        **os.environ,
        "MONGODB_URI": f"mongodb://127.0.0.1:{services.db_port}/faults",
        "BROKER_URL": f"redis://127.0.0.1:{services.redis_port}/0",
        "REDIS_URL": f"redis://127.0.0.1:{services.redis_port}/0",
        "DATA_PATH": str(tmp / "data"),
        "RINGSPOT_PORT": str(port),
        "RINGSPOT_API_URL": f"http://127.0.0.1:{port}",
    }
    db = connect(services.env["MONGODB_URI"])
    auth.create_user(db, "admin", "hunter2hunter2", administrator=True)
    _, key = auth.create_api_key(db, db.users.find_one({"_id": "admin"}), "faults", {})
    services.web = services.start(
        [
            str(VENV_BIN / "gunicorn"),
            "--workers",
            "1",
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            "-",
            "ringspot.api:create_app()",
        ]
    )
    services.start_worker()
    wait_port(port)
    session = requests.Session()
    session.auth = ("admin", key)
    services.url, services.session, services.db = f"http://127.0.0.1:{port}", session, db
    yield services
    for proc in (services.worker, services.web):
        stop_process_group(proc)
    for proc in (services.db_proc, services.redis_proc):
        if proc.poll() is None:
            Services.stop(proc)
    services.log.close()
    print((tmp / "services.log").read_text(errors="replace")[-4000:])


def call(services, method, path, **kwargs):
    return services.session.request(method, services.url + path, timeout=30, **kwargs)


def process(services, process_id) -> dict:
    return call(services, "GET", f"/api/processes/{process_id}").json()


def wait_finished(services, process_id, timeout=120) -> dict:
    doc = wait_for(
        lambda: _finished(services, process_id),
        timeout=timeout,
        interval=0.3,
        message=f"process {process_id} to finish",
    )
    assert doc["state"] == "complete", doc
    return doc


def _finished(services, process_id):
    response = call(services, "GET", f"/api/processes/{process_id}")
    if response.status_code == 200 and response.json()["state"] in FINISHED:
        return response.json()
    return None


def upload(services, path, upload_type):
    with open(path, "rb") as handle:
        response = call(services, "POST", "/api/uploads", params={"name": path.name, "type": upload_type}, data=handle)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def import_reference(services, path, name):
    created = call(
        services,
        "POST",
        "/api/refs",
        json={"name": name, "data_type": "genome", "import_from": upload(services, path, "reference")},
    )
    assert created.status_code == 201, created.text
    return created.json()


def start_sample(services, name, paths):
    files = [upload(services, path, "reads") for path in paths]
    response = call(services, "POST", "/api/samples", json={"name": name, "files": files})
    assert response.status_code == 201, response.text
    return response.json(), files


def completions(services, process_id) -> list[str]:
    """When the process was recorded complete (once, if it ran once)."""
    status = services.db.processes.find_one({"_id": process_id})["status"]
    return [entry["timestamp"] for entry in status if entry["state"] == "complete"]


def wait_step(services, process_id, step, timeout=120):
    wait_for(
        lambda: process(services, process_id)["step"] == step,
        timeout=timeout,
        interval=0.2,
        message=f"{process_id} to reach {step}",
    )


def assert_index_ready_once(services, index_id, ref_id, otu_count):
    index = call(services, "GET", f"/api/indexes/{index_id}").json()
    assert index["ready"] is True
    names = [f["name"] for f in index["files"]]
    assert len(names) == len(set(names)) == 8
    assert services.db.indexes.count_documents({"reference.id": ref_id}) == 1
    assert services.db.history.count_documents({"reference.id": ref_id, "index.id": index_id}) == otu_count


def test_database_down_gives_503_and_no_write_is_lost(services):
    created = call(services, "POST", "/api/refs", json={"name": "Kept", "data_type": "genome"})
    assert created.status_code == 201
    ref_id = created.json()["id"]

    Services.stop(services.db_proc)
    started = time.monotonic()
    response = call(services, "GET", f"/api/refs/{ref_id}")
    assert response.status_code == 503
    assert response.json()["message"] == "The database is unavailable; try again shortly"
    assert "Traceback" not in response.text
    assert time.monotonic() - started < 15

    services.db_proc = services.start_db()
    again = call(services, "GET", f"/api/refs/{ref_id}")
    assert again.status_code == 200 and again.json()["name"] == "Kept"


def test_broker_down_gives_503_and_leaves_nothing_half_made(services):
    source = call(services, "POST", "/api/refs", json={"name": "Source", "data_type": "genome"}).json()
    Services.stop(services.redis_proc)
    name = f"Clone {new_id()}"
    response = call(
        services, "POST", "/api/refs", json={"name": name, "data_type": "genome", "clone_from": source["id"]}
    )
    assert response.status_code == 503
    assert response.json()["message"] == "The task queue is unavailable; try again shortly"
    assert services.db.refs.count_documents({"name": name}) == 0
    assert services.db.processes.count_documents({"type": "clone_reference"}) == 0  # nor its process

    removal = call(services, "DELETE", f"/api/refs/{source['id']}")
    assert removal.status_code == 503
    assert call(services, "GET", f"/api/refs/{source['id']}").status_code == 200  # still there, nothing lost

    services.redis_proc = services.start_redis()
    response = call(
        services, "POST", "/api/refs", json={"name": name, "data_type": "genome", "clone_from": source["id"]}
    )
    assert response.status_code == 201
    wait_finished(services, response.headers["Content-Location"].rsplit("/", 1)[-1], timeout=60)


def test_redis_restart_mid_build_the_builds_finish_once_and_queued_work_runs(services):
    refs = [import_reference(services, LARGE, f"Plant viruses {n}") for n in (1, 2)]
    for ref in refs:
        wait_finished(services, ref["process"]["id"], timeout=180)
    pids = services.worker_pids()
    # Two builds take both of the worker's threads, so the samples sent next wait in the queue.
    indexes = [call(services, "POST", f"/api/refs/{ref['id']}/indexes").json() for ref in refs]
    builds = [index["job"]["id"] for index in indexes]
    for build_id in builds:
        wait_step(services, build_id, "bowtie_build")
    queued = [start_sample(services, f"Queued before {n}", [SINGLE])[0] for n in range(6)]
    assert all(process(services, s["job"]["id"])["state"] == "waiting" for s in queued)
    # The worker holds at most 4 (its prefetch); the rest exist only in Redis, whose AOF must keep them.
    queue = redis.Redis.from_url(services.env["BROKER_URL"])
    assert queue.llen("dramatiq:samples") >= 1

    Services.stop(services.redis_proc)
    stopped_at = time.monotonic()
    files = [upload(services, SINGLE, "reads")]
    response = call(services, "POST", "/api/samples", json={"name": "While down", "files": files})
    refused_in = time.monotonic() - stopped_at
    assert response.status_code == 503, response.text
    assert response.json()["message"] == "The task queue is unavailable; try again shortly"
    assert services.db.samples.count_documents({"name": "While down"}) == 0
    assert not services.db.uploads.find_one({"_id": files[0]})["reserved"]  # free for a later try
    refused = [
        doc for doc in services.db.processes.find({"type": "create_sample"}) if files[0] in doc["context"]["upload_ids"]
    ]
    assert refused == []  # the job that could not be sent is gone with its sample
    time.sleep(3)
    services.redis_proc = services.start_redis()
    back_at = time.monotonic()

    after = start_sample(services, "Queued after", [SINGLE])[0]
    # The second build only kept a thread busy: cancel it (through its heartbeat, no Redis involved).
    assert call(services, "DELETE", f"/api/processes/{builds[1]}").status_code == 202
    samples_done = [wait_finished(services, s["job"]["id"], timeout=120) for s in (*queued, after)]
    samples_done_in = time.monotonic() - back_at
    build = wait_finished(services, builds[0], timeout=150)
    print(
        f"\nredis down {back_at - stopped_at:.1f} s (503 in {refused_in:.2f} s); queued samples done "
        f"{samples_done_in:.1f} s after it returned, the build {time.monotonic() - back_at:.1f} s after"
    )

    assert build["attempts"] == 1 and len(completions(services, builds[0])) == 1
    assert_index_ready_once(services, indexes[0]["id"], refs[0]["id"], 2084)
    assert process(services, builds[1])["state"] == "cancelled"
    assert call(services, "GET", f"/api/indexes/{indexes[1]['id']}").status_code == 404
    for sample, job in zip((*queued, after), samples_done, strict=False):
        assert job["attempts"] == 1 and len(completions(services, job["id"])) == 1
        assert call(services, "GET", f"/api/samples/{sample['id']}").json()["ready"] is True
    assert queue.llen("dramatiq:samples") == 0
    # The same worker processes ran it all: none exited or was replaced.
    assert services.worker.poll() is None and services.worker_pids() == pids


def test_database_restart_mid_build_the_build_resumes_and_finishes_once(services):
    ref = import_reference(services, LARGE, "Plant viruses DB")
    wait_finished(services, ref["process"]["id"], timeout=180)
    sample, _ = start_sample(services, "Made before", [READS / "paired_1.fq.gz", READS / "paired_2.fq.gz"])
    wait_finished(services, sample["job"]["id"], timeout=60)
    pids = services.worker_pids()
    index = call(services, "POST", f"/api/refs/{ref['id']}/indexes").json()
    build_id = index["job"]["id"]
    wait_step(services, build_id, "bowtie_build")
    kept = call(services, "POST", "/api/refs", json={"name": "Written just before", "data_type": "genome"})
    assert kept.status_code == 201

    # Stopped the moment bowtie2-build ends, as the job starts uploading its files through the Job API.
    wait_for(lambda: _bowtie2_build_running(services, build_id), timeout=30, message="bowtie2-build")
    wait_for(
        lambda: not _bowtie2_build_running(services, build_id),
        timeout=120,
        interval=0.05,
        message="bowtie2-build to end",
    )
    Services.stop(services.db_proc)
    stopped_at = time.monotonic()
    answers = []

    def poll():
        started = time.monotonic()
        response = call(services, "GET", f"/api/processes/{build_id}")
        answers.append((response.status_code, time.monotonic() - started))
        return response

    while time.monotonic() - stopped_at < 4:
        response = poll()
        assert response.status_code == 503, response.text
        assert response.json()["message"] == "The database is unavailable; try again shortly"
    services.db_proc = services.start_db()
    restarted_at, restarted_iso = time.monotonic(), now()
    while poll().status_code == 503:
        time.sleep(0.1)
    served_at = time.monotonic()

    build = wait_finished(services, build_id, timeout=120)
    print(
        f"\ndb down {restarted_at - stopped_at:.1f} s; 503 for {served_at - stopped_at:.1f} s "
        f"(slowest answer {max(t for _, t in answers):.1f} s); build done {time.monotonic() - restarted_at:.1f} s "
        f"after the restart"
    )
    assert {status for status, _ in answers} <= {200, 503}
    assert max(t for _, t in answers) < 15

    # It was mid-run across the outage, ran once, and finished after the database came back.
    assert build["attempts"] == 1 and len(done := completions(services, build_id)) == 1 and done[0] > restarted_iso
    assert_index_ready_once(services, index["id"], ref["id"], 2084)
    assert call(services, "GET", f"/api/refs/{kept.json()['id']}").json()["name"] == "Written just before"
    assert call(services, "GET", f"/api/samples/{sample['id']}").json()["ready"] is True
    assert services.worker.poll() is None and services.worker_pids() == pids
    after, _ = start_sample(services, "Made after", [SINGLE])
    wait_finished(services, after["job"]["id"], timeout=60)


def _bowtie2_build_running(services, job_id) -> bool:
    work = f"{services.env['DATA_PATH']}/work/{job_id}"
    found = subprocess.run(["pgrep", "-f", f"bowtie2-build.*{work}"], capture_output=True, text=True)
    return bool(found.stdout.strip())


def test_database_down_half_a_minute_mid_job_the_job_waits_for_it_and_finishes_once(services):
    """A slow restart: the job's Job API calls keep retrying (``jobclient.RETRY_FOR``) and the run
    resumes where it was, instead of failing and being redone from its first step."""
    ref = import_reference(services, SMALL, "Example DB")
    wait_finished(services, ref["process"]["id"], timeout=60)
    index = call(services, "POST", f"/api/refs/{ref['id']}/indexes").json()
    build_id = index["job"]["id"]
    wait_step(services, build_id, "bowtie_build")
    Services.stop(services.db_proc)
    time.sleep(30)
    services.db_proc = services.start_db()
    restarted_at, restarted_iso = time.monotonic(), now()
    build = wait_finished(services, build_id, timeout=120)
    print(f"\ndb down 30 s: the build finished {time.monotonic() - restarted_at:.1f} s after the restart")
    assert build["attempts"] == 1 and len(done := completions(services, build_id)) == 1 and done[0] > restarted_iso
    assert time.monotonic() - restarted_at < 30
    assert_index_ready_once(services, index["id"], ref["id"], 20)
    assert services.worker.poll() is None
