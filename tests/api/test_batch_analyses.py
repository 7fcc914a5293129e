"""``POST /api/analyses``: one analysis per sample, by ids or by label, all or nothing."""

from __future__ import annotations

import dramatiq
import pytest

from ringspot.tasks import analyses as analysis_tasks  # noqa: F401  (binds actors to the stub broker first)

from ..analyses_data import (
    GLRAV1_READS,
    SMALL_REFERENCE,
    insert_index,
    insert_otus,
    insert_reference,
    insert_sample,
    load_otus,
)
from ..common import error


@pytest.fixture
def plate(db, settings, make_user, stub_broker):
    """Three ready samples labelled "plate-1" owned by ``owner``, and a reference with a ready index."""
    owner = make_user("owner", permissions=["create_sample"])
    otus = load_otus(SMALL_REFERENCE)[:3]
    reference = insert_reference(db, public=True)
    insert_otus(db, reference["_id"], otus)
    insert_index(db, settings.data_path, reference["_id"], otus)
    samples = [
        insert_sample(db, settings.data_path, GLRAV1_READS, user_id="owner", labels=["plate-1"], all_write=True)
        for _ in range(3)
    ]
    return {"owner": owner, "reference": reference, "samples": samples}


def queued(stub_broker) -> list[str]:
    return [dramatiq.Message.decode(raw).kwargs["process_id"] for raw in stub_broker.queues["analyses"].queue]


def test_starts_one_analysis_per_sample_by_ids(plate, stub_broker):
    ids = [sample["_id"] for sample in plate["samples"][:2]]
    response = plate["owner"].post("/api/analyses", json={"sample_ids": ids, "ref_id": plate["reference"]["_id"]})
    assert response.status_code == 201, response.json
    assert [analysis["sample"]["id"] for analysis in response.json] == ids
    assert {analysis["workflow"] for analysis in response.json} == {"pathoscope_bowtie"}
    assert sorted(queued(stub_broker)) == sorted(analysis["job"]["id"] for analysis in response.json)


def test_starts_one_analysis_per_sample_with_a_label(plate, stub_broker):
    response = plate["owner"].post("/api/analyses", json={"label": "plate-1", "ref_id": plate["reference"]["_id"]})
    assert response.status_code == 201, response.json
    assert sorted(a["sample"]["id"] for a in response.json) == sorted(s["_id"] for s in plate["samples"])
    assert len(queued(stub_broker)) == 3


def test_a_sample_that_is_not_ready_starts_nothing_and_is_listed(plate, db, settings, stub_broker):
    waiting = insert_sample(db, settings.data_path, GLRAV1_READS, user_id="owner", ready=False, labels=["plate-1"])
    response = plate["owner"].post("/api/analyses", json={"label": "plate-1", "ref_id": plate["reference"]["_id"]})
    assert error(response) == (400, f"Nothing was started: {waiting['name']} ({waiting['_id']}): Sample is not ready")
    assert queued(stub_broker) == [] and db.analyses.count_documents({}) == 0


def test_an_unknown_sample_is_a_404_naming_it_and_an_unreadable_one_a_403(plate, db, settings, stub_broker):
    hidden = insert_sample(db, settings.data_path, GLRAV1_READS, user_id="x", all_read=False, group_read=False)
    ref_id = plate["reference"]["_id"]
    ids = [plate["samples"][0]["_id"], "nothere1"]
    assert error(plate["owner"].post("/api/analyses", json={"sample_ids": ids, "ref_id": ref_id})) == (
        404,
        "Sample nothere1 not found",
    )
    ids = [plate["samples"][0]["_id"], hidden["_id"]]
    response = plate["owner"].post("/api/analyses", json={"sample_ids": ids, "ref_id": ref_id})
    assert error(response) == (403, "Insufficient rights")
    assert queued(stub_broker) == []


def test_a_label_reaches_only_readable_samples(plate, db, settings, stub_broker):
    insert_sample(
        db, settings.data_path, GLRAV1_READS, user_id="x", all_read=False, group_read=False, labels=["plate-1"]
    )
    response = plate["owner"].post("/api/analyses", json={"label": "plate-1", "ref_id": plate["reference"]["_id"]})
    assert response.status_code == 201 and len(response.json) == 3


@pytest.mark.parametrize(
    "body, field",
    [
        ({"ref_id": "r"}, "body"),
        ({"ref_id": "r", "label": "a", "sample_ids": ["x"]}, "body"),
        ({"ref_id": "r", "sample_ids": []}, "sample_ids"),
        ({"label": "plate-1"}, "ref_id"),
    ],
)
def test_a_bad_body_is_a_422(plate, body, field):
    response = plate["owner"].post("/api/analyses", json=body)
    assert response.status_code == 422
    assert list(response.json["errors"]) == [field]
