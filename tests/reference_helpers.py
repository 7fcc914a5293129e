"""Helpers shared by the reference, OTU and history tests: uploads, processes, OTUs, releases."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.common import upload, wait_finished
from tests.conftest import DATA

REFERENCE_DIR = DATA / "reference"
EXAMPLE = REFERENCE_DIR / "example-20otus.reference.json.gz"
PLANT_VIRUSES = REFERENCE_DIR / "ref-plant-viruses-v1.5.0.reference.json.gz"
FINISHED = ("complete", "error", "cancelled")
REF_FIELDS = {
    "id",
    "created_at",
    "data_type",
    "description",
    "name",
    "organism",
    "public",
    "restrict_source_types",
    "source_types",
    "groups",
    "users",
    "user",
    "contributors",
    "internal_control",
    "latest_build",
    "otu_count",
    "unbuilt_change_count",
}
CHANGE_FIELDS = {"id", "method_name", "description", "created_at", "otu", "reference", "index", "user"}


def gz(data: dict) -> bytes:
    return gzip.compress(json.dumps(data).encode())


def read_example() -> dict:
    return json.loads(gzip.decompress(EXAMPLE.read_bytes()))


def create_ref(user, **body) -> dict:
    response = user.post("/api/refs", json={"name": "Plant viruses", "data_type": "genome", **body})
    assert response.status_code == 201, response.json
    return response.json


def import_ref(user, db, content: bytes, name: str = "Imported", timeout: float = 60) -> tuple[dict, dict]:
    """Upload and import a reference file; returns (reference as created, finished process)."""
    ref = create_ref(user, name=name, import_from=upload(user, "reference.json.gz", content, "reference"))
    return ref, wait_finished(db, ref["process"]["id"], timeout)


def add_otu(
    user, ref_id: str, name: str = "Foo virus", abbreviation: str = "FV", sequence: str = "ACGTACGTAC", schema=None
) -> dict:
    """An OTU with one default isolate holding one sequence (so it is verified)."""
    body = {"name": name, "abbreviation": abbreviation}
    if schema is not None:
        body["schema"] = schema
    response = user.post(f"/api/refs/{ref_id}/otus", json=body)
    assert response.status_code == 201, response.json
    otu_id = response.json["id"]
    response = user.post(f"/api/otus/{otu_id}/isolates", json={"source_type": "isolate", "source_name": "A"})
    assert response.status_code == 201, response.json
    isolate_id = response.json["id"]
    sequence_body = {"accession": f"NC_{name[:3]}", "definition": f"{name} genome", "sequence": sequence}
    if schema:
        sequence_body["segment"] = schema[0]["name"]
    response = user.post(f"/api/otus/{otu_id}/isolates/{isolate_id}/sequences", json=sequence_body)
    assert response.status_code == 201, response.json
    return user.get(f"/api/otus/{otu_id}").json


def content_of(export: dict) -> list:
    """A reference file's OTUs without ids, by name: what must survive an export and re-import."""
    otus = []
    for otu in export["otus"]:
        otus.append(
            {
                "name": otu["name"],
                "abbreviation": otu.get("abbreviation") or "",
                "schema": otu.get("schema") or [],
                "isolates": [
                    {
                        "id": isolate["id"],
                        "source_type": isolate["source_type"],
                        "source_name": isolate["source_name"],
                        "default": isolate["default"],
                        "sequences": [{k: v for k, v in s.items() if k != "_id"} for s in isolate["sequences"]],
                    }
                    for isolate in otu["isolates"]
                ],
            }
        )
    return sorted(otus, key=lambda o: o["name"].lower())


class ReleaseServer:
    """A GitHub-shaped release source on a local port: ``/repos/<slug>/releases/latest`` and assets."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.releases: dict[str, dict] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path in server.files:
                    body, content_type = server.files[self.path], "application/gzip"
                elif self.path in server.releases:
                    body, content_type = json.dumps(server.releases[self.path]).encode(), "application/json"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def publish(self, slug: str, release_id: int, tag: str, content: bytes, published_at: str) -> None:
        asset_path = f"/download/{slug}/{tag}/reference.json.gz"
        self.files[asset_path] = content
        self.releases[f"/repos/{slug}/releases/latest"] = {
            "id": release_id,
            "name": tag,
            "tag_name": tag,
            "body": f"Release {tag}",
            "html_url": f"https://github.com/{slug}/releases/tag/{tag}",
            "published_at": published_at,
            "assets": [
                {
                    "name": "reference.json.gz",
                    "size": len(content),
                    "browser_download_url": f"{self.url}{asset_path}",
                    "content_type": "application/gzip",
                }
            ],
        }

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
