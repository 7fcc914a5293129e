"""Reference actors through the API and an in-thread worker: import, clone, remote, update, and
what a broken file or a repeated message leaves behind. The full plant-virus reference is
imported once per module (``plant``)."""

from __future__ import annotations

import gzip
import json
import time
import types

import dramatiq
import pymongo
import pytest

from ringspot.bio.reference import validate_reference
from ringspot.core import auth, reference_content
from ringspot.core.settings import from_env
from ringspot.core.utils import new_id
from tests.common import upload, wait_finished
from tests.conftest import User
from tests.reference_helpers import (
    EXAMPLE,
    PLANT_VIRUSES,
    ReleaseServer,
    content_of,
    create_ref,
    gz,
    import_ref,
    read_example,
)

SLUG = "virtool/ref-plant-viruses"


def counts(db, ref_id: str) -> tuple[int, int, int]:
    return tuple(db[c].count_documents({"reference.id": ref_id}) for c in ("otus", "sequences", "history"))


# ---------------------------------------------------------------- import


def test_import_creates_otus_sequences_and_history(admin, db, stub_worker):
    ref, process = import_ref(admin, db, EXAMPLE.read_bytes())
    assert process["state"] == "complete", process["error"]
    steps = ["load_file", "validate", "set_metadata", "import_otus", "create_history"]
    assert [step["name"] for step in process["steps"]] == steps
    assert process["steps"][0]["description"] == "Read the uploaded file: reference.json.gz, GenBank or FASTA records."
    assert counts(db, ref["id"]) == (20, 26, 20)
    otu = db.otus.find_one({"reference.id": ref["id"], "name": "Hardenbergia virus A"})
    assert otu["version"] == 0 and otu["imported"] and otu["last_indexed_version"] is None and otu["verified"]
    assert otu["isolates"][0]["id"] == "4pj29ivz" and otu["_id"] != "0b9f16ba"
    change = db.history.find_one({"_id": f"{otu['_id']}.0"})
    assert change["method_name"] == "import" and change["description"] == "Imported Hardenbergia virus A"
    from ringspot.core.otus import get_joined_otu

    assert change["diff"] == get_joined_otu(db, otu["_id"])


def test_importing_the_same_file_twice_gives_two_references(admin, db, stub_worker):
    first, _ = import_ref(admin, db, EXAMPLE.read_bytes())
    second, _ = import_ref(admin, db, EXAMPLE.read_bytes())
    assert counts(db, first["id"]) == counts(db, second["id"]) == (20, 26, 20)


GENBANK = EXAMPLE.parents[1] / "genbank"


@pytest.mark.parametrize(
    "name, otus, sequences",
    [
        ("orungo_10segments.gb", {"Orungo virus": 10}, 10),
        ("plant_PiVB_8segments.fasta", {"Pistacia emaravirus": 8}, 8),
        ("sarscov2_NC_045512.2.gbk.gz", {"Severe acute respiratory syndrome coronavirus 2": 0}, 1),
        ("mixed_4viruses.fasta", {"Tomato mosaic virus": 0, "Human poliovirus 2": 0}, 4),
    ],
)
def test_a_reference_is_imported_from_genbank_or_fasta(admin, db, stub_worker, name, otus, sequences):
    ref, process = import_ref(admin, db, (GENBANK / name).read_bytes(), name=name)
    assert process["state"] == "complete", process["error"]
    assert db.sequences.count_documents({"reference.id": ref["id"]}) == sequences
    for otu_name, segments in otus.items():
        otu = db.otus.find_one({"reference.id": ref["id"], "name": otu_name})
        assert otu is not None and len(otu["schema"]) == segments
    assert admin.get(f"/api/refs/{ref['id']}").json["data_type"] == "genome"


def test_genbank_records_keep_host_taxid_and_isolates(admin, db, stub_worker):
    ref, process = import_ref(admin, db, (GENBANK / "plant_BRRSV_5records.gb").read_bytes(), name="brrsv.gb")
    assert process["state"] == "complete", process["error"]
    otu = db.otus.find_one({"reference.id": ref["id"]})
    assert otu["name"] == "Blueberry red ringspot virus" and otu["taxid"] == 172220
    assert sorted(isolate["source_name"] for isolate in otu["isolates"]) == [f"UF158{n}" for n in range(3, 8)]
    sequence = db.sequences.find_one({"reference.id": ref["id"], "accession": "JF917081.1"})
    assert sequence["host"].startswith("southern highbush blueberry")


@pytest.mark.parametrize(
    "content, message",
    [
        (
            lambda: (GENBANK / "plant_YMV_U42596.1.gb").read_text().split("ORIGIN")[0] + "//\n",
            "U42596.1 has no sequence",
        ),
        (lambda: "\n".join([(GENBANK / "plant_PiVB_8segments.fasta").read_text()] * 2), "MH727572.1 appears twice"),
        (lambda: ">X1.1 Some virus, complete genome\nACGTJJ\n", "'J' at position 5"),
        (lambda: "sample,reads\na,b\n", "not one of: reference.json.gz, a GenBank flat file or a FASTA"),
    ],
)
def test_broken_records_end_in_error_naming_them_and_leave_nothing(admin, db, stub_worker, content, message):
    upload_id = upload(admin, "records.txt", content().encode(), "reference")
    ref = create_ref(admin, name="Broken records", import_from=upload_id)
    process = wait_finished(db, ref["process"]["id"])
    assert process["state"] == "error" and message in process["error"]
    assert admin.get(f"/api/refs/{ref['id']}").status_code == 404
    assert counts(db, ref["id"]) == (0, 0, 0)


def broken(mutate) -> bytes:
    data = read_example()
    mutate(data)
    return gz(data)


def _duplicate_name(data):
    data["otus"][1]["name"] = data["otus"][0]["name"].upper()


def _duplicate_sequence_id(data):
    data["otus"][1]["isolates"][0]["sequences"][0]["_id"] = data["otus"][0]["isolates"][0]["sequences"][0]["_id"]


def _bad_letter(data):
    sequence = data["otus"][2]["isolates"][0]["sequences"][0]
    sequence["sequence"] = sequence["sequence"][:5] + "J" + sequence["sequence"][6:]


def _empty_isolate(data):
    data["otus"][3]["isolates"][0]["sequences"] = []


BROKEN_FILES = {
    "not_gzip": (lambda: json.dumps(read_example()).encode(), "Reference file is not gzip-compressed"),
    "truncated_gzip": (lambda: EXAMPLE.read_bytes()[:500], "truncated or corrupt gzip"),
    "not_json": (lambda: gzip.compress(b'{"otus": [1, 2'), "Reference file is not valid JSON"),
    "wrong_schema": (lambda: gz({"data_type": "genome", "viruses": []}), 'field "otus" is missing'),
    "wrong_type": (lambda: broken(lambda d: d["otus"][0].update(isolates="none")), 'field "isolates" must be a list'),
    "duplicate_names": (lambda: broken(_duplicate_name), "Duplicate OTU name"),
    "duplicate_sequence_ids": (lambda: broken(_duplicate_sequence_id), "Duplicate sequence id"),
    "not_iupac": (lambda: broken(_bad_letter), 'letter "J" at position 6 is not an IUPAC nucleotide code'),
    "empty_isolate": (lambda: broken(_empty_isolate), "must hold at least one sequence"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN_FILES))
def test_broken_files_end_in_error_and_leave_nothing(admin, db, stub_worker, kind):
    make, message = BROKEN_FILES[kind]
    upload_id = upload(admin, "reference.json.gz", make(), "reference")
    ref = create_ref(admin, name="Broken", import_from=upload_id)
    process = wait_finished(db, ref["process"]["id"])
    assert process["state"] == "error"
    assert message in process["error"]
    assert admin.get(f"/api/processes/{process['_id']}").json["error"] == process["error"]
    assert admin.get(f"/api/refs/{ref['id']}").status_code == 404
    assert counts(db, ref["id"]) == (0, 0, 0)
    assert not db.uploads.find_one({"_id": upload_id})["reserved"]
    assert process["attempts"] == 1  # a broken file is not retried


def test_a_redelivered_import_repeats_no_work(admin, db, stub_worker, stub_broker):
    from ringspot.tasks import references as tasks

    ref, process = import_ref(admin, db, EXAMPLE.read_bytes())
    message = {"process_id": process["_id"]}
    tasks.import_reference.send(**message)  # finished process: skipped
    stub_broker.join(tasks.import_reference.queue_name)
    stub_worker.join()
    assert db.processes.find_one({"_id": process["_id"]})["attempts"] == 1
    # A run that died before finishing is claimed again and starts from a clean reference.
    db.processes.update_one({"_id": process["_id"]}, {"$set": {"state": "waiting"}})
    tasks.import_reference.send(**message)
    again = wait_finished(db, process["_id"])
    assert again["state"] == "complete" and again["attempts"] == 2
    assert counts(db, ref["id"]) == (20, 26, 20)


def test_a_transient_failure_is_retried(admin, db, stub_worker, monkeypatch):
    original = reference_content.insert_batches
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("database went away")
        return original(*args, **kwargs)

    monkeypatch.setattr(reference_content, "insert_batches", flaky)
    ref, process = import_ref(admin, db, EXAMPLE.read_bytes(), timeout=90)
    assert process["state"] == "complete" and process["attempts"] == 2
    assert counts(db, ref["id"]) == (20, 26, 20)


def test_clone_keeps_the_source_untouched(admin, db, stub_worker):
    source, _ = import_ref(admin, db, EXAMPLE.read_bytes())
    clone = create_ref(admin, name="Clone", clone_from=source["id"])
    assert wait_finished(db, clone["process"]["id"])["state"] == "complete"
    assert counts(db, clone["id"]) == counts(db, source["id"]) == (20, 26, 20)
    exported = [json.loads(gzip.decompress(admin.get(f"/api/refs/{r['id']}/export").data)) for r in (source, clone)]
    assert content_of(exported[0]) == content_of(exported[1])


# ---------------------------------------------------------------- remote references


def release_v2() -> tuple[dict, str, str]:
    """The example file with one OTU changed, one removed and one added."""
    data = read_example()
    changed = data["otus"][0]
    changed["isolates"][0]["sequences"][0]["definition"] = "Changed upstream"
    removed = data["otus"].pop(1)
    data["otus"].append(
        {
            "_id": "newotu01",
            "name": "Added virus",
            "abbreviation": "AddV",
            "schema": [],
            "isolates": [
                {
                    "id": "newiso01",
                    "source_type": "isolate",
                    "source_name": "N",
                    "default": True,
                    "sequences": [
                        {
                            "_id": "newseq01",
                            "accession": "NC_999",
                            "definition": "Added",
                            "host": "",
                            "sequence": "ACGTACGTACGT",
                        }
                    ],
                }
            ],
        }
    )
    return data, changed["_id"], removed["_id"]


@pytest.fixture
def releases(monkeypatch):
    server = ReleaseServer()
    monkeypatch.setenv("RINGSPOT_RELEASE_URL", server.url)
    server.publish(SLUG, 1, "v1.0.0", EXAMPLE.read_bytes(), "2022-03-28T19:15:18Z")
    yield server
    server.close()


def test_remote_reference_installs_the_latest_release(admin, db, stub_worker, releases):
    response = admin.post(
        "/api/refs", json={"name": "Test Remote", "organism": "viruses", "data_type": "genome", "remote_from": SLUG}
    )
    assert response.status_code == 201
    ref = response.json
    assert response.headers["Location"] == f"/api/refs/{ref['id']}"
    assert ref["remotes_from"]["slug"] == SLUG and ref["remotes_from"]["update"] is None
    assert {"last_checked", "last_updated"} <= set(ref["remotes_from"])
    assert ref["data_type"] is None and ref["otu_count"] == 0 and ref["unbuilt_change_count"] == 0
    process = wait_finished(db, ref["process"]["id"])
    assert process["state"] == "complete", process["error"]
    assert process["type"] == "remote_reference"
    doc = admin.get(f"/api/refs/{ref['id']}").json
    assert doc["otu_count"] == 20 and doc["data_type"] == "genome"
    assert doc["installed"]["id"] == 1 and doc["installed"]["name"] == "v1.0.0" and doc["installed"]["ready"]
    assert doc["release"]["id"] == 1 and doc["release"]["newer"] is False
    assert [u["id"] for u in admin.get(f"/api/refs/{ref['id']}/updates").json] == [1]
    otu = db.otus.find_one({"reference.id": ref["id"], "remote.id": "0b9f16ba"})
    assert otu["name"] == "Hardenbergia virus A"
    assert db.history.find_one({"_id": f"{otu['_id']}.0"})["method_name"] == "remote"
    # An export of a remote reference keeps the upstream ids.
    exported = json.loads(gzip.decompress(admin.get(f"/api/refs/{ref['id']}/export").data))
    assert {o["_id"] for o in exported["otus"]} == {o["_id"] for o in read_example()["otus"]}


def test_checking_and_installing_an_update(admin, db, stub_worker, releases):
    ref = create_ref(admin, name="Remote", remote_from=SLUG)
    wait_finished(db, ref["process"]["id"])
    otu_ids = {o["remote"]["id"]: o["_id"] for o in db.otus.find({"reference.id": ref["id"]})}
    data, changed_id, removed_id = release_v2()
    releases.publish(SLUG, 2, "v2.0.0", gz(data), "2023-01-01T00:00:00Z")

    response = admin.post(f"/api/refs/{ref['id']}/release")
    assert response.status_code == 202 and response.json["type"] == "check_remote_release"
    assert wait_finished(db, response.json["id"])["state"] == "complete"
    release = admin.get(f"/api/refs/{ref['id']}/release").json
    assert release["id"] == 2 and release["newer"] is True and release["name"] == "v2.0.0"

    response = admin.post(f"/api/refs/{ref['id']}/updates")
    assert response.status_code == 201
    update = response.json
    assert set(update) == {
        "id",
        "name",
        "body",
        "filename",
        "size",
        "html_url",
        "published_at",
        "created_at",
        "user",
        "ready",
    }
    assert update["id"] == 2 and update["ready"] is False
    process_id = response.headers["Content-Location"].rsplit("/", 1)[1]
    process = wait_finished(db, process_id)
    assert process["state"] == "complete", process["error"]
    assert process["type"] == "update_remote_reference"

    doc = admin.get(f"/api/refs/{ref['id']}").json
    assert doc["otu_count"] == 20 and not doc["updating"]
    assert doc["installed"]["id"] == 2 and doc["release"]["newer"] is False
    assert [(u["id"], u["ready"]) for u in admin.get(f"/api/refs/{ref['id']}/updates").json] == [(2, True), (1, True)]
    changed = admin.get(f"/api/otus/{otu_ids[changed_id]}").json
    assert changed["version"] == 1 and changed["most_recent_change"]["method_name"] == "update"
    assert changed["isolates"][0]["sequences"][0]["definition"] == "Changed upstream"
    assert admin.get(f"/api/otus/{otu_ids[removed_id]}").status_code == 404
    assert admin.get(f"/api/history/{otu_ids[removed_id]}.removed").json["method_name"] == "remove"
    added = db.otus.find_one({"reference.id": ref["id"], "remote.id": "newotu01"})
    assert db.history.find_one({"_id": f"{added['_id']}.0"})["method_name"] == "remote"
    # Unchanged OTUs got no new version.
    assert db.otus.count_documents({"reference.id": ref["id"], "version": 0}) == 19
    exported = json.loads(gzip.decompress(admin.get(f"/api/refs/{ref['id']}/export").data))
    assert content_of(exported) == content_of(validate_reference(data))


def test_a_failed_update_changes_nothing_and_can_be_tried_again(admin, db, stub_worker, releases):
    ref = create_ref(admin, name="Remote", remote_from=SLUG)
    wait_finished(db, ref["process"]["id"])
    releases.publish(SLUG, 2, "v2.0.0", gz({"otus": []}), "2023-01-01T00:00:00Z")
    wait_finished(db, admin.post(f"/api/refs/{ref['id']}/release").json["id"])
    response = admin.post(f"/api/refs/{ref['id']}/updates")
    process = wait_finished(db, response.headers["Content-Location"].rsplit("/", 1)[1])
    assert process["state"] == "error" and 'field "otus" must hold at least one OTU' in process["error"]
    doc = admin.get(f"/api/refs/{ref['id']}").json
    assert not doc["updating"] and doc["installed"]["id"] == 1 and doc["otu_count"] == 20
    assert [u["id"] for u in admin.get(f"/api/refs/{ref['id']}/updates").json] == [1]
    assert db.otus.count_documents({"reference.id": ref["id"], "version": {"$ne": 0}}) == 0
    data, _, _ = release_v2()
    releases.publish(SLUG, 3, "v3.0.0", gz(data), "2023-02-01T00:00:00Z")
    wait_finished(db, admin.post(f"/api/refs/{ref['id']}/release").json["id"])
    response = admin.post(f"/api/refs/{ref['id']}/updates")
    assert wait_finished(db, response.headers["Content-Location"].rsplit("/", 1)[1])["state"] == "complete"
    assert admin.get(f"/api/refs/{ref['id']}").json["installed"]["id"] == 3


def test_an_update_in_progress_refuses_another(admin, db, releases, stub_worker):
    ref = create_ref(admin, name="Remote", remote_from=SLUG)
    wait_finished(db, ref["process"]["id"])
    db.refs.update_one({"_id": ref["id"]}, {"$set": {"updating": True}})
    response = admin.post(f"/api/refs/{ref['id']}/updates")
    assert response.status_code == 409 and response.json["message"] == "Update already in progress"


def test_updates_need_a_stored_release(admin, db):
    ref = create_ref(admin, name="Remote")
    db.refs.update_one({"_id": ref["id"]}, {"$set": {"remotes_from": {"slug": SLUG}}})
    response = admin.post(f"/api/refs/{ref['id']}/updates")
    assert response.status_code == 400 and response.json["message"] == "Target release does not exist"


def test_a_missing_release_ends_in_error_and_leaves_nothing(admin, db, stub_worker, releases):
    ref = create_ref(admin, name="Remote", remote_from="someone/nothing")
    process = wait_finished(db, ref["process"]["id"])
    assert process["state"] == "error" and process["error"] == "No release found for someone/nothing"
    assert admin.get(f"/api/refs/{ref['id']}").status_code == 404


def test_an_unreachable_release_source_ends_in_error(admin, db, stub_worker, monkeypatch):
    monkeypatch.setenv("RINGSPOT_RELEASE_URL", "http://127.0.0.1:9")
    ref = create_ref(admin, name="Remote", remote_from=SLUG)
    process = wait_finished(db, ref["process"]["id"])
    assert process["state"] == "error" and process["error"].startswith("Could not reach the release source")
    assert admin.get(f"/api/refs/{ref['id']}").status_code == 404


def test_a_broken_release_file_ends_in_error(admin, db, stub_worker, releases):
    releases.publish(SLUG, 3, "v3", b"not gzip", "2024-01-01T00:00:00Z")
    ref = create_ref(admin, name="Remote", remote_from=SLUG)
    process = wait_finished(db, ref["process"]["id"])
    assert process["state"] == "error" and process["error"] == "Reference file is not gzip-compressed"
    assert counts(db, ref["id"]) == (0, 0, 0)


# ---------------------------------------------------------------- the full plant-virus reference


@pytest.fixture(scope="module")
def plant(database_server, tmp_path_factory):
    """The plant-virus reference imported once, with its own database, app and worker."""
    from ringspot.api import create_app
    from ringspot.core.db import connect

    patch = pytest.MonkeyPatch()
    name = f"t_{new_id()}"
    for key, value in {
        "MONGODB_URI": f"{database_server}/{name}",
        "DATA_PATH": str(tmp_path_factory.mktemp("plant")),
        "RINGSPOT_HEARTBEAT_TIMEOUT": "5",
    }.items():
        patch.setenv(key, value)
    settings = from_env()
    app = create_app(settings)
    db = connect(settings.mongodb_uri)
    auth.create_user(db, "admin", "hunter2hunter2", administrator=True)
    _, key = auth.create_api_key(db, db.users.find_one({"_id": "admin"}), "test", {})
    admin = User(app.test_client(), "admin", key)
    broker = dramatiq.get_broker()
    broker.flush_all()
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()
    started = time.monotonic()
    ref, process = import_ref(admin, db, PLANT_VIRUSES.read_bytes(), name="Plant viruses", timeout=120)
    seconds = time.monotonic() - started
    yield types.SimpleNamespace(admin=admin, db=db, ref=ref, process=process, seconds=seconds)
    worker.stop()
    patch.undo()
    client = pymongo.MongoClient(database_server)
    client.drop_database(name)
    client.close()


def test_plant_viruses_import_completely_and_quickly(plant):
    assert plant.process["state"] == "complete", plant.process["error"]
    assert counts(plant.db, plant.ref["id"]) == (2084, 4783, 2084)
    doc = plant.admin.get(f"/api/refs/{plant.ref['id']}").json
    assert doc["otu_count"] == 2084 and doc["unbuilt_change_count"] == 2084
    assert doc["contributors"] == [{"id": "admin", "count": 2084}]
    assert plant.seconds <= 15, f"import took {plant.seconds:.1f} s"


def test_plant_viruses_history_page_ten(plant):
    response = plant.admin.get(f"/api/refs/{plant.ref['id']}/history?per_page=100&page=10")
    body = response.json
    assert body["found_count"] == 2084 and body["page_count"] == 21 and len(body["documents"]) == 100
    started = time.monotonic()
    for _ in range(10):
        plant.admin.get(f"/api/refs/{plant.ref['id']}/history?per_page=100&page=10")
    assert (time.monotonic() - started) / 10 < 0.1
    # Entries written in one batch share a time; the pages still split them without overlap.
    seen = []
    for page in range(1, 22):
        documents = plant.admin.get(f"/api/refs/{plant.ref['id']}/history?per_page=100&page={page}").json["documents"]
        seen.extend(d["id"] for d in documents)
    assert len(seen) == len(set(seen)) == 2084


def test_plant_viruses_clone(plant):
    started = time.monotonic()
    clone = create_ref(plant.admin, name="Clone", clone_from=plant.ref["id"])
    process = wait_finished(plant.db, clone["process"]["id"], timeout=120)
    seconds = time.monotonic() - started
    assert process["state"] == "complete", process["error"]
    assert counts(plant.db, clone["id"]) == (2084, 4783, 2084)
    assert seconds <= 15, f"clone took {seconds:.1f} s"


def test_plant_viruses_export_and_reimport_to_identical_content(plant):
    from ringspot.bio.reference import load_reference_file

    first = plant.admin.get(f"/api/refs/{plant.ref['id']}/export").data
    exported = json.loads(gzip.decompress(first))
    assert content_of(exported) == content_of(validate_reference(load_reference_file(PLANT_VIRUSES)))
    again, process = import_ref(plant.admin, plant.db, first, name="Again", timeout=120)
    assert process["state"] == "complete", process["error"]
    second = json.loads(gzip.decompress(plant.admin.get(f"/api/refs/{again['id']}/export").data))
    assert content_of(second) == content_of(exported)
    assert (second["data_type"], second["organism"]) == (exported["data_type"], exported["organism"])
