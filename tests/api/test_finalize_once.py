"""Finalizes are one guarded transition: of many racing finalize requests one lands and its event
is sent once; stored files are written under names of their own and private to the service."""

import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from ringspot.core import indexes
from ringspot.core.files import write_stream

from ..common import claim_with_token, job_key
from ..reference_helpers import EXAMPLE, import_ref


def test_ten_parallel_index_finalizes_give_one_200_and_one_index_ready_event(
    admin, db, stub_worker, live_server, settings
):
    ref, _ = import_ref(admin, db, EXAMPLE.read_bytes(), name="Example")
    admin.post("/api/webhooks", json={"url": "http://127.0.0.1:1/hook", "events": ["index.ready"]})
    stub_worker.pause()  # the build's job is played by this test
    index = admin.post(f"/api/refs/{ref['id']}/indexes").json
    job_id = index["job"]["id"]
    session = requests.Session()
    session.auth = (f"job-{job_id}", claim_with_token(job_id, job_key(stub_worker.broker, "indexes", job_id)))
    for name in indexes.REQUIRED_FILES:
        content = EXAMPLE.read_bytes() if name == "reference.json.gz" else b"built"
        stored = session.post(f"{live_server}/api/indexes/{index['id']}/files", params={"name": name}, data=content)
        assert stored.status_code == 201, stored.text

    start = threading.Barrier(10)

    def finalize(_):
        start.wait()
        return session.patch(f"{live_server}/api/indexes/{index['id']}").status_code

    with ThreadPoolExecutor(10) as pool:
        answers = sorted(pool.map(finalize, range(10)))
    assert answers == [200] + [409] * 9
    assert db.webhook_deliveries.count_documents({"event": "index.ready"}) == 1


def test_concurrent_writers_of_one_name_never_mix_and_leave_no_partial_file(tmp_path):
    target = tmp_path / "store" / "samples" / "s1" / "reads_1.fq.gz"
    contents = [bytes([65 + n]) * 3_000_000 for n in range(8)]

    class Slow:
        """A request body arriving in small pieces, so the writers overlap."""

        def __init__(self, data):
            self.data, self.at = data, 0

        def read(self, size=-1):
            piece = self.data[self.at : self.at + 65536]
            self.at += len(piece)
            return piece

    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(lambda data: write_stream(Slow(data), target, 10_000_000), contents))
    assert sizes == [3_000_000] * 8
    assert target.read_bytes() in contents  # one writer's bytes, whole
    assert os.listdir(target.parent) == [target.name]


def test_stored_files_and_folders_are_private_whatever_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        target = tmp_path / "store" / "indexes" / "i1" / "reference.fa.gz"
        assert write_stream(io.BytesIO(b">s\nACGT\n"), target, 100) == 8
    finally:
        os.umask(previous)
    assert oct(target.stat().st_mode & 0o777) == oct(0o600)
    for folder in (target.parent, target.parent.parent, tmp_path / "store"):
        assert oct(folder.stat().st_mode & 0o777) == oct(0o700)
