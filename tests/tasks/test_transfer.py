"""The final write of a job's object happens once, even when its reply is lost and it is sent again."""

import pytest

from ringspot.core import processes
from ringspot.tasks.transfer import finalize_once
from ringspot.workers.jobclient import JobApiError, JobClient

from ..analyses_data import SMALL_REFERENCE, build_index_files, insert_index, insert_reference, load_otus


def build_job(db, index_id: str, url: str) -> JobClient:
    job, key = processes.create_process(
        db, "build_index", user_id="admin", workflow=True, context={"index_id": index_id}
    )
    return JobClient(url, job["_id"], key, retry_for=0)


def test_finalizing_again_after_a_lost_reply_is_success(db, settings, live_server, tmp_path):
    otus = load_otus(SMALL_REFERENCE)
    reference = insert_reference(db, "Small")
    index = insert_index(
        db, settings.data_path, reference["_id"], otus, build_index_files(otus, tmp_path / "index"), ready=False
    )
    job = build_job(db, index["_id"], live_server)
    finalize_once(job, f"/api/indexes/{index['_id']}")
    # The first reply never reached the worker, which sends the same request again: a 409 on a ready index.
    finalize_once(job, f"/api/indexes/{index['_id']}")
    assert db.indexes.find_one({"_id": index["_id"]})["ready"]


def test_other_conflicts_still_fail(db, settings, live_server):
    otus = load_otus(SMALL_REFERENCE)
    index = insert_index(db, settings.data_path, insert_reference(db)["_id"], otus, ready=False)  # no files
    with pytest.raises(JobApiError, match="Missing files"):
        finalize_once(build_job(db, index["_id"], live_server), f"/api/indexes/{index['_id']}")
