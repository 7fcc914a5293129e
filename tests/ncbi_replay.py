"""A stand-in for NCBI's BLAST URL API that replays the real recorded replies in ``shared/data/blast``.

``Put`` answers with the recorded submission page, ``SearchInfo`` with the recorded status page
(``Status=READY``; the first ``waiting`` checks say ``Status=WAITING``), and the result request
with the recorded JSON2 zip. The recorded submission page names RID ``YA40WNN5014`` while the
recorded zip holds ``YA6M9135015_1.json`` (they come from two searches), so the submission is
served with the zip's RID. Any reply can be replaced to play a broken NCBI.
"""

from __future__ import annotations

import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .conftest import DATA

BLAST = DATA / "blast"
RID = "YA6M9135015"


def recorded_put_reply() -> bytes:
    return (BLAST / "initialize_blast.html").read_bytes().replace(b"YA40WNN5014", RID.encode())


@dataclass
class Replies:
    put: bytes = field(default_factory=recorded_put_reply)
    ready: bytes = field(default_factory=lambda: (BLAST / "check_rid.html").read_bytes())
    result: bytes = field(default_factory=lambda: (BLAST / "blast.zip").read_bytes())
    #: Status checks answered ``Status=WAITING`` before the recorded ``Status=READY`` page.
    waiting: int = 0
    #: HTTP status for every request (200 plays NCBI as recorded).
    status: int = 200
    requests: list = field(default_factory=list)

    def waiting_page(self) -> bytes:
        return self.ready.replace(b"Status=READY", b"Status=WAITING")


class NcbiReplay:
    def __init__(self):
        self.replies = Replies()
        replies_of = lambda: self.replies  # noqa: E731

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, method: str):
                replies = replies_of()
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode())) if length else {}
                replies.requests.append((method, query, form))
                if replies.status != 200:
                    body, kind = b"<html>Service unavailable</html>", "text/html"
                elif query.get("CMD") == "Put":
                    body, kind = replies.put, "text/html"
                elif query.get("FORMAT_OBJECT") == "SearchInfo":
                    checks = sum(1 for _, q, _ in replies.requests if q.get("FORMAT_OBJECT") == "SearchInfo")
                    body = replies.waiting_page() if checks <= replies.waiting else replies.ready
                    kind = "text/html"
                elif query.get("FORMAT_TYPE") == "JSON2":
                    body, kind = replies.result, "application/zip"
                else:
                    body, kind = b"<html>Unknown request</html>", "text/html"
                self.send_response(replies.status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/Blast.cgi"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> NcbiReplay:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
