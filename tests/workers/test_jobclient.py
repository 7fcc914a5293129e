"""The Job API client rides out an API that is briefly unavailable (its database or broker
restarting) or not listening, so a job resumes instead of failing; other errors fail at once."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from ringspot.workers.jobclient import RETRY_FOR, JobApiError, JobClient

from ..conftest import free_port


class FakeApi:
    """An HTTP server answering ``status`` (503 until ``available_at``), counting requests."""

    def __init__(self, port=None, unavailable_for=0.0, status=200):
        self.hits = 0
        self.available_at = time.monotonic() + unavailable_for
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                api.hits += 1
                code = 503 if time.monotonic() < api.available_at else status
                body = json.dumps({"id": "x", "message": f"answered {code}"}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers():
    started = []
    yield started
    for server in started:
        server.close()


def test_rides_out_an_api_answering_503_for_a_few_seconds(servers):
    api = FakeApi(unavailable_for=2.5)
    servers.append(api)
    started = time.monotonic()
    assert JobClient(api.url, "job1", "key").get("/api/jobs/job1") == {"id": "x", "message": "answered 200"}
    assert time.monotonic() - started >= 2.5
    assert api.hits > 1


def test_waits_for_an_api_that_is_not_listening_yet(servers):
    port = free_port()
    threading.Timer(2.0, lambda: servers.append(FakeApi(port=port))).start()
    assert JobClient(f"http://127.0.0.1:{port}", "job1", "key").get("/api/jobs/job1")["message"] == "answered 200"


def test_gives_up_after_its_retry_budget(servers):
    api = FakeApi(unavailable_for=3600)
    servers.append(api)
    started = time.monotonic()
    with pytest.raises(JobApiError) as error:
        JobClient(api.url, "job1", "key", retry_for=1.5).get("/api/jobs/job1")
    assert error.value.status == 503 and "answered 503" in str(error.value)
    assert 1.0 <= time.monotonic() - started < 4


def test_gives_up_on_an_api_that_never_listens():
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        JobClient(f"http://127.0.0.1:{free_port()}", "job1", "key", retry_for=1).get("/api/jobs/job1")
    assert time.monotonic() - started < 3


def test_other_errors_fail_at_once(servers):
    api = FakeApi(status=409)
    servers.append(api)
    with pytest.raises(JobApiError) as error:
        JobClient(api.url, "job1", "key").get("/api/jobs/job1")
    assert error.value.status == 409 and api.hits == 1


def test_the_default_budget_outlasts_a_database_restart():
    # nx-27017 or MongoDB restarting, or a replica-set election, takes seconds to tens of seconds;
    # tests/integration/test_faults.py stops the database for 30 s under a running job.
    assert JobClient("http://127.0.0.1:1", "job1", "key").retry_for == RETRY_FOR >= 60
