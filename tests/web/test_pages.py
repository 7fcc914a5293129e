"""The browser client's pages, served in-process: who is sent to sign in, who gets a 404 page,
and that every page renders what the API holds (the browser tests drive the same pages live)."""

from __future__ import annotations

import pytest

from ringspot.core import auth
from ringspot.core.utils import new_id, now

from ..analyses_data import RPRSV_READS, insert_reference, insert_sample
from ..nuvs_data import insert_nuvs_analysis

PASSWORD = "hunter2hunter2"


def sign_in(client, db, user_id: str, **fields):
    auth.create_user(db, user_id, PASSWORD, administrator=fields.pop("administrator", False))
    if fields:
        db.users.update_one({"_id": user_id}, {"$set": fields})
    response = client.post("/api/account/login", json={"username": user_id, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return client


@pytest.fixture
def admin_client(app, db):
    return sign_in(app.test_client(), db, "admin", administrator=True)


@pytest.mark.parametrize("path", ["/samples", "/jobs", "/refs", "/samples/abc123", "/analyses/x", "/"])
def test_a_visitor_who_has_not_signed_in_is_sent_to_sign_in_and_back(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    if path != "/":
        assert response.headers["Location"] == f"/login?next={path}"


def test_a_fragment_polled_after_the_session_ended_sends_the_whole_page_to_sign_in(client):
    response = client.get(
        "/jobs/rows", headers={"HX-Request": "true", "HX-Current-URL": "http://host/jobs?state=running"}
    )
    assert response.status_code == 200 and response.text == ""
    assert response.headers["HX-Redirect"] == "/login?next=/jobs?state%3Drunning"


def test_the_sign_in_page_and_its_assets_need_no_session(client):
    page = client.get("/login?next=/jobs")
    assert page.status_code == 200
    assert 'for="username"' in page.text and 'for="password"' in page.text
    assert 'data-then="/jobs"' in page.text
    assert client.get("/assets/ringspot.js").status_code == 200
    assert client.get("/assets/vendor/htmx.min.js").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/x", "/\\evil.example/x", "https://evil.example/", "samples"])
def test_sign_in_goes_back_only_to_a_path_of_this_site(client, target):
    assert 'data-then="/samples"' in client.get("/login", query_string={"next": target}).text


def test_a_signed_in_user_skips_the_sign_in_page(admin_client):
    response = admin_client.get("/login?next=/jobs")
    assert response.status_code == 302 and response.headers["Location"] == "/jobs"


def test_a_sample_the_user_may_not_read_is_a_404_page(app, db, settings):
    sample = insert_sample(
        db, settings.data_path, RPRSV_READS, user_id="someone_else", all_read=False, group_read=False
    )
    client = sign_in(app.test_client(), db, "reader")
    response = client.get(f"/samples/{sample['_id']}")
    assert response.status_code == 404
    assert "Not found" in response.text and "<html" in response.text
    # The same answer as for a sample that does not exist: nothing tells them apart.
    missing = client.get("/samples/nosuchid")
    assert missing.status_code == 404 and missing.text == response.text
    assert sample["name"] not in client.get("/samples").text


def test_samples_page_searches_and_filters_by_label(admin_client, db, settings):
    first = insert_sample(db, settings.data_path, RPRSV_READS[:1])
    second = insert_sample(db, settings.data_path, RPRSV_READS[:1])
    db.samples.update_one({"_id": first["_id"]}, {"$set": {"name": "Raspberry leaf 1", "labels": ["field"]}})
    db.samples.update_one({"_id": second["_id"]}, {"$set": {"name": "Grape 7"}})
    page = admin_client.get("/samples?find=raspberry").text
    assert "Raspberry leaf 1" in page and "Grape 7" not in page
    page = admin_client.get("/samples?label=field").text
    assert "Raspberry leaf 1" in page and "Grape 7" not in page
    page = admin_client.get("/samples?page=oops").text  # a bad page number falls back to the first
    assert "Grape 7" in page and 'id="create-sample"' in page
    for path in ("/samples", "/refs", "/jobs"):
        assert admin_client.get(f"{path}?page=99999999999999999999").status_code == 200


def test_samples_page_through_fifteen_at_a_time(admin_client, db, settings):
    for _ in range(16):
        insert_sample(db, settings.data_path, RPRSV_READS[:1])
    first = admin_client.get("/samples?find=sample").text
    assert "Page 1 of 2 (16 found)" in first and 'href="/samples?find=sample&amp;page=2" rel="next"' in first
    second = admin_client.get("/samples?find=sample&page=2").text
    assert second.count('href="/samples/') == 1 and 'rel="prev"' in second


def test_a_reference_page_lists_otus_history_and_offers_a_build(admin_client, db):
    ref = insert_reference(db, "Plant viruses")
    page = admin_client.get(f"/refs/{ref['_id']}")
    assert page.status_code == 200
    assert "Plant viruses" in page.text and "Build an index" in page.text
    assert admin_client.get("/refs").text.count("Plant viruses") == 1


def insert_process(db, state: str, **fields) -> dict:
    doc = {
        "_id": new_id(),
        "type": "pathoscope_bowtie",
        "step": "map_default_isolates",
        "step_count": 6,
        "progress": 0.5,
        "state": state,
        "complete": state == "complete",
        "error": None,
        "context": {},
        "created_at": now(),
        "updated_at": now(),
        "user": {"id": "admin"},
        **fields,
    }
    db.processes.insert_one(doc)
    return doc


def test_jobs_show_step_progress_error_and_a_cancel_button_while_running(admin_client, db):
    running = insert_process(db, "running")
    failed = insert_process(db, "error", step="build_isolate_index", error="bowtie2-build exited with 1")
    page = admin_client.get("/jobs").text
    assert "map_default_isolates" in page and 'value="0.5"' in page
    assert "bowtie2-build exited with 1" in page
    assert f'data-api-action="/api/processes/{running["_id"]}"' in page
    assert f'data-api-action="/api/processes/{failed["_id"]}"' not in page  # nothing left to cancel

    # The rows are polled while one of them may change, then the poll stops (htmx's 286).
    assert admin_client.get("/jobs/rows").status_code == 200
    db.processes.update_one({"_id": running["_id"]}, {"$set": {"state": "complete", "progress": 1}})
    rows = admin_client.get("/jobs/rows")
    assert rows.status_code == 286 and 'data-state="complete"' in rows.text


def test_jobs_lists_what_the_api_lists_to_the_user_each_with_cancel(app, db):
    theirs = insert_process(db, "running", user={"id": "someone_else"})
    mine = insert_process(db, "running", user={"id": "worker"})
    client = sign_in(app.test_client(), db, "worker")
    page = client.get("/jobs").text
    assert f"/api/processes/{mine['_id']}" in page and f"/api/processes/{theirs['_id']}" not in page
    db.users.update_one({"_id": "worker"}, {"$set": {"permissions.cancel_job": True}})
    assert f"/api/processes/{theirs['_id']}" in client.get("/jobs").text


def test_a_job_progress_fragment_reloads_its_page_once_when_the_job_completes(admin_client, db):
    process = insert_process(db, "running")
    url = f"/jobs/{process['_id']}/progress?refresh=1"
    assert admin_client.get(url).status_code == 200
    db.processes.update_one({"_id": process["_id"]}, {"$set": {"state": "complete", "progress": 1}})
    ended = admin_client.get(url)
    assert ended.status_code == 286 and ended.headers["HX-Refresh"] == "true"

    failing = insert_process(db, "running", type="create_sample")
    url = f"/jobs/{failing['_id']}/progress?refresh=1"
    db.processes.update_one({"_id": failing["_id"]}, {"$set": {"state": "error", "error": "reads_2.fq.gz: line 8"}})
    failed = admin_client.get(url)
    assert failed.status_code == 286 and "HX-Refresh" not in failed.headers  # the error stays in sight
    assert "reads_2.fq.gz: line 8" in failed.text


def test_a_nuvs_report_shows_contigs_orf_maps_and_blast_results(admin_client, db, settings):
    sample = insert_sample(db, settings.data_path, RPRSV_READS[:1])
    analysis = insert_nuvs_analysis(db, sample)
    contigs = analysis["results"]["hits"]
    db.hmm.insert_one({"_id": "hmm00001", "cluster": 1, "names": ["RNA polymerase"], "families": {"Secoviridae": 4}})
    contigs[0]["orfs"][0]["hits"] = [{"hit": "hmm00001", "best_e": 1e-30, "full_e": 1e-31}]
    contigs[0]["blast"] = {
        "ready": True,
        "error": None,
        "result": {"hits": [{"accession": "NC_005266", "name": "Raspberry ringspot virus", "identity": 950}]},
    }
    contigs[1]["blast"] = {"ready": False, "error": None, "result": None}
    db.analyses.update_one({"_id": analysis["_id"]}, {"$set": {"results.hits": contigs}})

    page = admin_client.get(f"/analyses/{analysis['_id']}").text
    assert page.count('class="orf-map"') == len(contigs)
    assert page.count('aria-label="BLAST contig') == len(contigs)
    assert "RNA polymerase" in page and "NC_005266" in page
    assert f"/api/analyses/{analysis['_id']}/contigs.fa" in page

    # A running BLAST's fragment is polled; a finished one stops the polling.
    running = admin_client.get(f"/analyses/{analysis['_id']}/contigs/1/blast")
    assert running.status_code == 200 and "BLAST running" in running.text
    done = admin_client.get(f"/analyses/{analysis['_id']}/contigs/0/blast")
    assert done.status_code == 286 and "Raspberry ringspot virus" in done.text


def test_a_pathoscope_report_without_a_diagnosis_shows_its_hits_per_otu(admin_client, db, settings):
    sample = insert_sample(db, settings.data_path, RPRSV_READS[:1])
    figures = {"pi": 0.9, "best": 40.0, "high": 10.0, "low": 2.0, "reads": 120}
    hit = {
        "id": "seq00001",
        "otu": {"id": "otu00001", "version": 0},
        "final": figures,
        "initial": figures,
        "align": [0, 2, 3, 3, 1, 0],
        "coverage": 0.67,
        "depth": 1.5,
    }
    analysis = insert_nuvs_analysis(
        db, sample, workflow="pathoscope_bowtie", results={"read_count": 130, "subtracted_count": 0, "hits": [hit]}
    )
    page = admin_client.get(f"/analyses/{analysis['_id']}")
    assert page.status_code == 200
    assert "otu00001" in page.text and "predates diagnoses" in page.text
    plot = f"/api/analyses/{analysis['_id']}/hits/seq00001/coverage.svg"
    assert plot in page.text
    assert admin_client.get(plot).mimetype == "image/svg+xml"


def test_a_page_polls_its_job_only_while_the_job_may_change(admin_client, db, settings):
    """A page reloads once when its job ends; reloaded, it must not poll (and reload) again."""
    sample = insert_sample(db, settings.data_path, RPRSV_READS[:1])
    job = insert_process(db, "running", type="nuvs", step="assemble")
    analysis = insert_nuvs_analysis(db, sample, ready=False, job={"id": job["_id"]})
    poll = f'hx-get="/jobs/{job["_id"]}/progress?refresh=1"'
    running = admin_client.get(f"/analyses/{analysis['_id']}").text
    assert poll in running and "assemble" in running

    db.processes.update_one({"_id": job["_id"]}, {"$set": {"state": "error", "error": "SPAdes ran out of memory"}})
    failed = admin_client.get(f"/analyses/{analysis['_id']}").text
    assert "hx-get" not in failed and "SPAdes ran out of memory" in failed
    # On the sample's page the unfinished analysis shows the same state, without polling.
    assert "SPAdes ran out of memory" in admin_client.get(f"/samples/{sample['_id']}").text
