"""Adding a GenBank or FASTA file's records to an existing reference (``POST /api/refs/:id/otus/import``),
and mapping files for imports, with the real records of ``data/genbank``."""

from __future__ import annotations

import gzip

import pytest

from tests.common import error, upload, wait_finished
from tests.reference_helpers import EXAMPLE, create_ref
from tests.tasks.test_references import GENBANK, counts

SCYLV = "Sugarcane yellow leaf virus"
RIGHTS = ("build", "modify", "modify_otu", "remove")


def records_ref(admin, db, name: str, mapping: bytes | None = None) -> dict:
    """A reference imported from one file of ``data/genbank`` (and an optional mapping CSV)."""
    body = {"name": name, "import_from": upload(admin, name, (GENBANK / name).read_bytes(), "reference")}
    if mapping is not None:
        body["mapping_from"] = upload(admin, "mapping.csv", mapping, "reference")
    ref = create_ref(admin, **body)
    process = wait_finished(db, ref["process"]["id"])
    assert process["state"] == "complete", process["error"]
    return ref


def post_import(user, ref_id: str, name: str, content: bytes | None = None, mapping: bytes | None = None):
    body = {"upload_id": upload(user, name, content or (GENBANK / name).read_bytes(), "reference")}
    if mapping is not None:
        body["mapping_upload_id"] = upload(user, "mapping.csv", mapping, "reference")
    return user.post(f"/api/refs/{ref_id}/otus/import", json=body)


def import_into(admin, db, ref_id: str, name: str, **kwargs) -> dict:
    response = post_import(admin, ref_id, name, **kwargs)
    assert response.status_code == 202, response.json
    assert response.headers["Content-Location"] == f"/api/processes/{response.json['id']}"
    return wait_finished(db, response.json["id"])


def test_records_of_an_existing_organism_become_a_new_isolate_with_history(admin, db, stub_worker):
    ref = records_ref(admin, db, "plant_SCYLV_KF680098.1.gb")
    process = import_into(admin, db, ref["id"], "plant_SCYLV_MH058008.1.gb")
    assert process["state"] == "complete", process["error"]
    assert process["type"] == "import_records" and process["context"]["checked"]
    otu = db.otus.find_one({"reference.id": ref["id"]})
    assert otu["name"] == SCYLV and db.otus.count_documents({"reference.id": ref["id"]}) == 1
    assert sorted(i["source_name"] for i in otu["isolates"]) == ["CBLK97154", "FL86"]
    assert [i["default"] for i in otu["isolates"]] == [True, False]
    added = db.sequences.find_one({"reference.id": ref["id"], "accession": "MH058008.1"})
    assert added["isolate_id"] == next(i["id"] for i in otu["isolates"] if i["source_name"] == "FL86")
    assert len(added["sequence"]) == 5796 and otu["verified"]
    methods = [c["method_name"] for c in db.history.find({"otu.id": otu["_id"]}).sort("otu.version", 1)]
    assert methods == ["import", "add_isolate"] and otu["version"] == 1
    change = db.history.find_one({"_id": f"{otu['_id']}.1"})
    assert change["description"] == "Added Isolate FL86 with MH058008.1"

    # The same file again is refused: its accession is in the reference now, and nothing changes.
    again = import_into(admin, db, ref["id"], "plant_SCYLV_MH058008.1.gb")
    assert again["state"] == "error" and "Accession MH058008.1 is already in the reference" in again["error"]
    assert counts(db, ref["id"]) == (1, 2, 2)


def test_a_new_organism_becomes_a_new_otu_and_uploads_are_released(admin, db, stub_worker):
    ref = records_ref(admin, db, "plant_SCYLV_KF680098.1.gb")
    process = import_into(admin, db, ref["id"], "plant_YMV_U42596.1.gb")
    assert process["state"] == "complete", process["error"]
    otu = db.otus.find_one({"reference.id": ref["id"], "name": "Yam mosaic virus"})
    assert [(i["source_type"], i["source_name"]) for i in otu["isolates"]] == [("strain", "Ivory Coast")]
    assert otu["verified"] and not otu["imported"]
    assert counts(db, ref["id"]) == (2, 2, 3)  # import; create, add_isolate with its sequence
    assert db.uploads.count_documents({"reserved": True}) == 0


def test_a_duplicate_accession_ends_in_error_naming_it_with_nothing_written(admin, db, stub_worker):
    ref = records_ref(admin, db, "plant_SCYLV_KF680098.1.gb")
    # Yam mosaic virus is new and would be added, but the file also holds KF680098 (another version).
    content = (GENBANK / "plant_YMV_U42596.1.gb").read_text() + (GENBANK / "plant_SCYLV_KF680098.1.gb").read_text()
    content = content.replace("VERSION     KF680098.1", "VERSION     KF680098.2")
    process = import_into(admin, db, ref["id"], "two.gb", content=content.encode())
    assert (
        process["state"] == "error"
        and process["error"] == "Accession KF680098.2 is already in the reference (as KF680098.1)"
    )
    assert counts(db, ref["id"]) == (1, 1, 1)


@pytest.mark.parametrize(
    "content, message",
    [
        (b">X1.1 Some virus, complete genome\nACGTJJ\n", "Record X1.1: 'J' at position 5"),
        (EXAMPLE.read_bytes(), "The file is a reference.json.gz; records are added from a GenBank or FASTA file"),
        (gzip.compress(b">X1.1 Some virus\nACGT\n", mtime=0)[:-12], "The file is not a complete gzip stream"),
    ],
    ids=["not_iupac", "reference_json", "cut_gzip"],  # stable names, the same in every xdist worker
)
def test_a_bad_file_ends_in_error_naming_the_problem(admin, db, stub_worker, content, message):
    ref = records_ref(admin, db, "plant_SCYLV_KF680098.1.gb")
    process = import_into(admin, db, ref["id"], "bad.fa", content=content)
    assert process["state"] == "error" and message in process["error"] and process["attempts"] == 1
    assert counts(db, ref["id"]) == (1, 1, 1)


def test_a_redelivered_message_adds_nothing_twice(admin, db, stub_worker):
    ref = records_ref(admin, db, "plant_SCYLV_KF680098.1.gb")
    process = import_into(admin, db, ref["id"], "plant_SCYLV_MH058008.1.gb")
    assert process["state"] == "complete", process["error"]
    before = counts(db, ref["id"])
    # The same message again, as the broker delivers it after a worker died past the last write.
    db.processes.update_one({"_id": process["_id"]}, {"$set": {"state": "waiting", "complete": False}})
    db.uploads.update_many({}, {"$set": {"reserved": True}})
    from ringspot.tasks.references import import_records

    import_records.send(process_id=process["_id"])
    again = wait_finished(db, process["_id"])
    assert again["state"] == "complete", again["error"]
    assert counts(db, ref["id"]) == before == (1, 2, 2)

    # A run cut short after adding the isolate: the next delivery fills that isolate, adds no other.
    db.sequences.delete_one({"reference.id": ref["id"], "accession": "MH058008.1"})
    db.processes.update_one({"_id": process["_id"]}, {"$set": {"state": "waiting", "complete": False}})
    import_records.send(process_id=process["_id"])
    assert wait_finished(db, process["_id"])["state"] == "complete"
    otu = db.otus.find_one({"reference.id": ref["id"]})
    assert len(otu["isolates"]) == 2 and otu["verified"]
    assert db.sequences.count_documents({"reference.id": ref["id"], "accession": "MH058008.1"}) == 1


def test_a_mapping_file_renames_the_otus_of_fasta_records(admin, db, stub_worker):
    mapping = b"accession,otu,isolate,segment\nKJ207374.1,ToMV,,\nAY184220,Poliovirus,,\n"
    ref = records_ref(admin, db, "mixed_4viruses.fasta", mapping=mapping)
    names = sorted(o["name"] for o in db.otus.find({"reference.id": ref["id"]}))
    assert "ToMV" in names and "Poliovirus" in names and "Tomato mosaic virus" not in names
    # Through otus/import: the Yam mosaic virus record becomes an isolate of the mapped "ToMV".
    process = import_into(
        admin, db, ref["id"], "plant_YMV_U42596.1.gb", mapping=b"\xef\xbb\xbfaccession,otu\nU42596.1,tomv\n"
    )
    assert process["state"] == "complete", process["error"]
    otu = db.otus.find_one({"reference.id": ref["id"], "name": "ToMV"})
    assert sorted(i["source_name"] for i in otu["isolates"]) == ["Ivory Coast", "Penghu"]


def test_a_broken_mapping_file_ends_in_error(admin, db, stub_worker):
    ref = records_ref(admin, db, "plant_SCYLV_KF680098.1.gb")
    process = import_into(admin, db, ref["id"], "plant_YMV_U42596.1.gb", mapping=b"name,otu\nU42596.1,x\n")
    assert process["state"] == "error" and "Mapping file needs an 'accession' column" in process["error"]
    assert counts(db, ref["id"]) == (1, 1, 1)


def test_rights_and_bad_requests(admin, make_user, db, stub_worker):
    ref = create_ref(admin, name="Empty")
    user = make_user(permissions=["upload_file"])
    assert error(post_import(user, ref["id"], "plant_YMV_U42596.1.gb")) == (403, "Insufficient rights")
    admin.post(f"/api/refs/{ref['id']}/users", json={"user_id": user.id, **{r: r != "modify_otu" for r in RIGHTS}})
    response = post_import(user, ref["id"], "plant_YMV_U42596.1.gb")
    assert response.status_code == 403 and response.json["message"] == "Insufficient rights"
    assert error(admin.post(f"/api/refs/{ref['id']}/otus/import", json={"upload_id": "nothere"})) == (
        400,
        "File does not exist",
    )
    other = upload(admin, "reads.fq", b"@r\nACGT\n+\nIIII\n", "reads")
    response = admin.post(f"/api/refs/{ref['id']}/otus/import", json={"upload_id": other})
    assert error(response) == (400, "File is not a reference file")
    assert admin.post("/api/refs/nothere/otus/import", json={"upload_id": other}).status_code == 404
    records = upload(admin, "ymv.gb", GENBANK / "plant_YMV_U42596.1.gb", "reference")
    response = admin.post(f"/api/refs/{ref['id']}/otus/import", json={"upload_id": records, "mapping_upload_id": other})
    assert error(response) == (400, "Mapping file must be uploaded with type=reference")
    response = admin.post("/api/refs", json={"name": "No file", "mapping_from": records})
    assert response.status_code == 422 and "mapping_from applies to import_from only" in str(response.json)
    assert db.processes.count_documents({"type": "import_records"}) == 0


def test_a_mapping_for_a_reference_json_is_refused(admin, db, stub_worker):
    body = {
        "name": "Example",
        "import_from": upload(admin, "example.json.gz", EXAMPLE, "reference"),
        "mapping_from": upload(admin, "mapping.csv", b"accession,otu\nX1,Y\n", "reference"),
    }
    process = wait_finished(db, create_ref(admin, **body)["process"]["id"])
    assert process["state"] == "error" and process["error"] == "A mapping file applies to GenBank or FASTA records only"
    assert db.uploads.count_documents({"reserved": True}) == 0
