"""The browser client in a real browser (Debian's chromium driven by Playwright) against the real
process types: gunicorn serving API and pages, a Dramatiq worker on Redis, nx-27017.

A lab's path without the command line: sign in, upload the RpRSV sample's two FASTQ files, watch
it being created, start Pathoscope, follow the job on /jobs until it finishes, and read the report:
the diagnosis names Raspberry ringspot virus and its coverage plot has loaded. A user without
rights on a sample gets the 404 page. Screenshots of every page go to the test's tmp folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from ringspot.core import auth
from ringspot.core.utils import new_id, now

from ..analyses_data import (
    RPRSV_READS,
    SMALL_REFERENCE,
    build_index_files,
    insert_index,
    insert_otus,
    insert_reference,
    insert_sample,
    load_otus,
)
from ..integration.conftest import running_stack
from ..nuvs_data import insert_nuvs_analysis

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "hunter2hunter2"
#: Raspberry ringspot virus and a few other plant viruses, so the diagnosis has something to tell apart.
OTU_NAMES = (
    "Raspberry ringspot virus",
    "Tomato ringspot virus",
    "Grapevine fanleaf virus",
    "Arabis mosaic virus",
    "Tobacco mosaic virus",
)
UNLABELLED_FIELDS = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(field => !field.labels.length && !field.getAttribute('aria-label'))
    .map(field => field.name || field.id || field.outerHTML)"""
#: Time for a job of the small sample on a 2-core machine shared with other work.
JOB_TIMEOUT_MS = 180_000

# Assertions wait as long as actions do: the suite shares two cores with the stack it drives.
expect.set_options(timeout=30_000)


@pytest.fixture(scope="module")
def stack(database_server, redis_server, tmp_path_factory):
    # BLAST runs locally (blastn against the references) here, never at NCBI.
    tmp = tmp_path_factory.mktemp("web_stack")
    with running_stack(database_server, redis_server, tmp, RINGSPOT_BLAST_BACKEND="local") as stack:
        yield stack


@pytest.fixture(scope="module")
def reference(stack, tmp_path_factory) -> dict:
    """A reference of a few plant viruses with a ready Bowtie2 index, as build_index leaves them."""
    otus = [otu for otu in load_otus() if otu["name"] in OTU_NAMES]
    assert {otu["name"] for otu in otus} == set(OTU_NAMES)
    ref = insert_reference(stack.db, "Plant viruses (browser)")
    insert_otus(stack.db, ref["_id"], otus)
    insert_index(stack.db, stack.data_path, ref["_id"], otus, build_index_files(otus, tmp_path_factory.mktemp("idx")))
    return ref


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


class Screens:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def take(self, page: Page, name: str) -> None:
        """Screenshot the page, after checking every field on it has a label a screen reader reads."""
        unlabelled = page.evaluate(UNLABELLED_FIELDS)
        assert unlabelled == [], f"fields without a label on {name}: {unlabelled}"
        page.screenshot(path=str(self.folder / f"{name}.png"), full_page=True)


@pytest.fixture
def screens(tmp_path) -> Screens:
    return Screens(tmp_path / "screenshots")


def sign_in(page: Page, url: str, user: str, next_path: str = "/samples") -> None:
    page.goto(url + next_path)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(url + next_path)


def test_upload_to_report_in_a_browser(stack, reference, page, screens):
    page.goto(stack.url + "/samples")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    # A refused sign-in says so beside the password, and the page stays.
    expect(page.locator('[data-error-for="password"]')).to_be_visible()
    screens.take(page, "login")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(stack.url + "/samples")

    # A sample without a name is refused next to the name field, before anything is created.
    page.get_by_label("Reads (FASTQ, gzipped or not)").set_input_files(str(RPRSV_READS[0]))
    page.get_by_label("Mate reads").set_input_files(str(RPRSV_READS[1]))
    page.get_by_role("button", name="Upload and create").click()
    expect(page.locator('[data-error-for="name"]')).to_contain_text("name: must not be empty")
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    assert stack.db.uploads.count_documents({}) == 0  # nothing was uploaded for a form that cannot pass
    page.get_by_label("Name", exact=True).fill("RpRSV raspberry leaf")
    page.get_by_label("Labels (comma-separated)").fill("field, raspberry")
    screens.take(page, "samples")
    page.get_by_role("button", name="Upload and create").click()
    expect(page).to_have_url(re.compile(r"/samples/[a-z0-9]{8}$"), timeout=60_000)
    sample_id = page.url.rsplit("/", 1)[1]

    # The create_sample job's progress is polled; once it ends the page shows the quality charts.
    expect(page.locator("#chart-bases")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(page.locator(".facts")).to_contain_text("20,000")  # both mates' reads
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-sequences') !== undefined")
    # The read-quality histogram holds every read of both mates, as the quality document counts them.
    histogram = page.evaluate("Chart.getChart('chart-sequences').data.datasets[0].data.reduce((a, b) => a + b, 0)")
    assert histogram == 20_000
    cycles = page.evaluate("Chart.getChart('chart-bases').data.labels.length")
    assert cycles == len(stack.db.samples.find_one({"_id": sample_id})["quality"]["bases"])
    screens.take(page, "sample")

    page.get_by_label("Workflow").select_option("pathoscope_bowtie")
    page.get_by_label("Reference").select_option(reference["_id"])
    page.get_by_role("button", name="Start analysis").click()
    expect(page).to_have_url(re.compile(r"/analyses/[a-z0-9]{8}$"))
    analysis_id = page.url.rsplit("/", 1)[1]
    assert stack.db.analyses.find_one({"_id": analysis_id})["sample"]["id"] == sample_id

    # /jobs follows the job live (its rows are polled, the page itself never reloads).
    page.get_by_role("link", name="Jobs").click()
    row = page.locator("#jobs tbody tr", has=page.get_by_role("link", name=f"analysis {analysis_id}"))
    expect(row).to_be_visible()
    page.evaluate("window.__same_page = true")
    expect(row).to_have_attribute("data-state", "complete", timeout=JOB_TIMEOUT_MS)
    assert page.evaluate("window.__same_page") is True
    expect(row.locator("progress")).to_have_attribute("value", "1")
    screens.take(page, "jobs")

    row.get_by_role("link", name=f"analysis {analysis_id}").click()
    expect(page).to_have_url(f"{stack.url}/analyses/{analysis_id}")
    diagnosis = page.locator("#diagnosis")
    expect(diagnosis).to_contain_text("Raspberry ringspot virus")
    rprsv_row = diagnosis.locator("tbody tr", has_text="Raspberry ringspot virus")
    expect(rprsv_row).to_contain_text("detected")
    diagnosis_rows = stack.db.analyses.find_one({"_id": analysis_id})["diagnosis"]
    stored = next(row for row in diagnosis_rows if row["name"] == "Raspberry ringspot virus")
    expect(rprsv_row).to_contain_text(f"{stored['reads']:,}")
    plots = page.locator('img[data-coverage="Raspberry ringspot virus"]')
    expect(plots.first).to_be_visible()
    plots.first.scroll_into_view_if_needed()
    page.wait_for_function(
        """() => [...document.querySelectorAll('img[data-coverage="Raspberry ringspot virus"]')]
                 .every(img => img.complete && img.naturalWidth > 0)""",
        timeout=30_000,
    )
    screens.take(page, "analysis")

    page.get_by_role("link", name="References").click()
    expect(page.locator("main table")).to_contain_text(reference["name"])
    screens.take(page, "refs")
    page.get_by_role("link", name=reference["name"]).click()
    # A build the API refuses says why beside the button (every OTU is already built).
    page.get_by_role("button", name="Build an index").click()
    expect(page.locator('[data-error-for="action"]')).to_contain_text("There are no unbuilt changes")
    page.get_by_label("Find by name or abbreviation").fill("ringspot")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("table.list").nth(1)).not_to_contain_text("Tobacco mosaic virus")
    screens.take(page, "reference")
    page.get_by_role("link", name="Raspberry ringspot virus").click()
    expect(page.locator("h2", has_text="Isolates")).to_be_visible()
    expect(page.locator(".isolate", has_text="default")).to_contain_text("NC_005266")
    screens.take(page, "otu")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(stack.url + "/login")
    page.goto(f"{stack.url}/analyses/{analysis_id}")
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_a_contig_blasted_from_its_report_shows_its_hits_when_ready(stack, reference, page, screens):
    sample = insert_sample(stack.db, stack.data_path, RPRSV_READS)
    analysis = insert_nuvs_analysis(stack.db, sample)
    sign_in(page, stack.url, "admin", f"/analyses/{analysis['_id']}")
    contig = page.locator("#contig-0")
    expect(contig.locator("svg.orf-map rect").first).to_be_attached()
    page.evaluate("window.__same_page = true")
    contig.get_by_role("button", name="BLAST contig 0").click()
    # The result replaces "running" in place once the BLAST job has finished.
    expect(contig.locator(".blast-result table")).to_contain_text("Raspberry ringspot virus", timeout=JOB_TIMEOUT_MS)
    assert page.evaluate("window.__same_page") is True
    screens.take(page, "nuvs")


def test_a_reference_is_imported_and_built_from_the_browser(stack, page, screens):
    sign_in(page, stack.url, "admin", "/refs")
    page.get_by_label("Name", exact=True).fill("Example viruses")
    page.get_by_label("Import from a reference file").set_input_files(str(SMALL_REFERENCE))
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/refs/[a-z0-9]{8}$"))
    # The import's progress is polled; the page shows the OTUs once it has finished.
    facts = page.locator(".facts")
    expect(facts).to_contain_text("OTUs20", timeout=JOB_TIMEOUT_MS)
    expect(facts).to_contain_text("Unbuilt changes20")
    page.get_by_role("button", name="Build an index").click()
    expect(page).to_have_url(stack.url + "/jobs")
    row = page.locator("#jobs tbody tr", has_text="build_index").first
    expect(row).to_have_attribute("data-state", "complete", timeout=JOB_TIMEOUT_MS)
    row.get_by_role("link").click()
    expect(page.locator(".facts")).to_contain_text("Unbuilt changes0")
    expect(page.locator("section", has_text="Indexes").locator("tbody")).to_contain_text("ready")
    screens.take(page, "reference_built")


def test_a_waiting_job_is_cancelled_from_the_jobs_page(stack, page):
    process = {
        "_id": new_id(),
        "type": "build_index",
        "step": None,
        "progress": 0,
        "state": "waiting",
        "complete": False,
        "error": None,
        "context": {},
        "created_at": now(),
        "updated_at": now(),
        "user": {"id": "admin"},
    }
    stack.db.processes.insert_one(process)
    sign_in(page, stack.url, "admin", "/jobs")
    row = page.locator(f"#job-{process['_id']}")
    expect(row).to_have_attribute("data-state", "waiting")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=f"Cancel build_index job {process['_id']}").click()
    # The polled rows show the new state; the button goes with it.
    expect(row).to_have_attribute("data-state", "cancelled", timeout=10_000)
    expect(row.get_by_role("button")).to_have_count(0)
    assert stack.db.processes.find_one({"_id": process["_id"]})["state"] == "cancelled"


def test_a_user_without_rights_gets_the_404_page(stack, page, screens):
    private = insert_sample(stack.db, stack.data_path, RPRSV_READS[:1], all_read=False, group_read=False)
    auth.create_user(stack.db, "outsider", PASSWORD)
    # Signed in with the keyboard alone: the user name field has the focus, Tab moves on, Enter sends.
    page.goto(stack.url + "/samples")
    page.keyboard.type("outsider")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(stack.url + "/samples")
    expect(page.locator("#sample-list")).not_to_contain_text(private["name"])

    response = page.goto(f"{stack.url}/samples/{private['_id']}")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_contain_text("Not found")
    expect(page.locator("body")).not_to_contain_text(private["name"])
    screens.take(page, "not_found")
    # Its analysis's report, and a reference shared with nobody, are as unknown as what does not exist.
    analysis = insert_nuvs_analysis(stack.db, private)
    private_ref = insert_reference(stack.db, "Private viruses")
    for path in (f"/analyses/{analysis['_id']}", f"/refs/{private_ref['_id']}", "/analyses/nosuchid"):
        response = page.goto(stack.url + path)
        assert response is not None and response.status == 404, path
        expect(page.locator("h1")).to_contain_text("Not found")
