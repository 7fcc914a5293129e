"""Reference actors: clone, import, remote, update from a release, check for releases, delete.

Each is sent by the API after ``core.references`` wrote the reference and the process
document (``send``), runs named steps, and is safe to run twice: a load starts by clearing the
reference's OTUs, an update matches OTUs on ``remote.id`` and writes only differences, a delete
only deletes. A load that fails for good (a broken file, a cancel, the last retry) leaves
nothing behind: no OTUs, sequences or history, and no reference document.
"""

from __future__ import annotations

import logging
from pathlib import Path

import requests
from dramatiq.middleware import TimeLimitExceeded

from ..bio.reference import ReferenceFileError, load_reference_file, validate_reference
from ..core import processes, references, uploads
from ..core import reference_content as content
from ..core.db import connect
from ..core.files import path_in_store, write_stream
from ..core.settings import Settings, from_env
from ..workers import queues
from ..workers.runtime import FINAL_ERRORS, StepFailed, actor, current

log = logging.getLogger("ringspot.tasks.references")

MAX_RETRIES = 2
#: Milliseconds. The full plant-virus reference loads in seconds; this bounds a stuck run.
LOAD_TIME_LIMIT = 30 * 60_000
HTTP_TIMEOUT = 60
RETRY_OPTIONS = {"max_retries": MAX_RETRIES, "min_backoff": 1_000, "max_backoff": 30_000}


def _context():
    settings = from_env()
    return settings, connect(settings.mongodb_uri)


def _step_progress(step_name: str, steps: list[str]):
    return current().sub_progress(steps.index(step_name), len(steps))


def _reference(db, ref_id: str) -> dict:
    """The reference the process works on; gone means removed meanwhile, which no retry mends."""
    ref = db.refs.find_one({"_id": ref_id})
    if ref is None:
        raise StepFailed("Reference does not exist")
    return ref


def _final(error: BaseException) -> bool:
    """True when no retry will follow: a known failure, a time-out, or the last attempt."""
    if isinstance(error, (*FINAL_ERRORS, TimeLimitExceeded)) or not isinstance(error, Exception):
        return True
    return current().document.get("attempts", 1) > MAX_RETRIES


def _file_error(error: ReferenceFileError) -> StepFailed:
    return StepFailed(error.message)


class Load:
    """Shared by clone, import and remote: build the documents, insert them, undo on failure."""

    steps: list[str] = []
    method_name = "import"

    def __init__(self, settings: Settings, db, ref_id: str, user_id: str):
        self.settings, self.db, self.ref_id, self.user_id = settings, db, ref_id, user_id
        self.data: dict | None = None
        self.documents: tuple[list, list, list] = ([], [], [])

    def describe(self, otu: dict) -> str:
        return f"Imported {otu['name']}"

    def build(self, sources: list[dict], remote: bool = False) -> None:
        content.clear_content(self.db, self.ref_id)
        self.documents = content.build_documents(
            sources, self.ref_id, self.user_id, self.method_name, remote=remote, describe=self.describe
        )

    def insert_otus(self, step_name: str) -> None:
        otus, sequences, _ = self.documents
        progress = _step_progress(step_name, self.steps)
        content.insert_batches(self.db, "otus", otus, lambda f: progress(f / 3))
        content.insert_batches(self.db, "sequences", sequences, lambda f: progress(1 / 3 + 2 * f / 3))

    def create_history(self) -> None:
        """Write one history entry per OTU."""
        content.insert_batches(self.db, "history", self.documents[2], _step_progress("create_history", self.steps))
        if self.db.refs.find_one({"_id": self.ref_id}, {"_id": 1}) is None:
            # The reference was removed while it loaded; its delete may have run already.
            content.clear_content(self.db, self.ref_id)

    def run(self, steps) -> None:
        try:
            current().run_steps(steps)
        except BaseException as error:
            final = _final(error)
            self.undo(final)
            self.release(final)
            if isinstance(error, ReferenceFileError):
                raise _file_error(error) from None
            raise
        self.release(True)

    def undo(self, final: bool) -> None:
        content.clear_content(self.db, self.ref_id)
        if final:
            self.db.refs.delete_one({"_id": self.ref_id})
        log.info("reference_load_undone ref_id=%s final=%s", self.ref_id, final)

    def release(self, final: bool) -> None:
        """Give back what the load held (``final``: no retry will need it again)."""


# ---------------------------------------------------------------- clone


class CloneReference(Load):
    steps = references.STEPS["clone_reference"]
    method_name = "clone"

    def __init__(self, settings, db, ref_id, user_id, source_id):
        super().__init__(settings, db, ref_id, user_id)
        self.source_id = source_id

    def describe(self, otu: dict) -> str:
        return f"Cloned {otu['name']}"

    def copy_otus(self) -> None:
        """Copy the source reference's OTUs and sequences."""
        self.build(content.clone_sources(self.db, self.source_id))
        self.insert_otus("copy_otus")


@actor(queue_name=queues.REFERENCES, time_limit=LOAD_TIME_LIMIT, **RETRY_OPTIONS)
def clone_reference(ref_id: str, source_id: str, user_id: str, process_id: str) -> None:
    settings, db = _context()
    work = CloneReference(settings, db, ref_id, user_id, source_id)
    work.run([work.copy_otus, work.create_history])


# ---------------------------------------------------------------- import


class ImportReference(Load):
    steps = references.STEPS["import_reference"]

    def __init__(self, settings, db, ref_id, user_id, upload_id):
        super().__init__(settings, db, ref_id, user_id)
        self.upload_id = upload_id
        self.raw: dict | None = None

    def load_file(self) -> None:
        """Read the uploaded file: gzip, then JSON."""
        path = uploads.upload_path(self.settings.data_path, self.upload_id)
        if not path.exists():
            raise StepFailed("File does not exist")
        self.raw = load_reference_file(path)

    def validate(self) -> None:
        """Check the file's schema, duplicates, sequences and OTUs."""
        self.data = validate_reference(self.raw)
        self.raw = None

    def set_metadata(self) -> None:
        """Take the reference's data type and organism from the file."""
        self.db.refs.update_one(
            {"_id": self.ref_id}, {"$set": {"data_type": self.data["data_type"], "organism": self.data["organism"]}}
        )

    def import_otus(self) -> None:
        """Insert the OTUs and their sequences."""
        self.build(self.data["otus"])
        self.insert_otus("import_otus")

    def release(self, final: bool) -> None:
        if final:
            uploads.release(self.db, [self.upload_id])


@actor(queue_name=queues.REFERENCES, time_limit=LOAD_TIME_LIMIT, **RETRY_OPTIONS)
def import_reference(ref_id: str, upload_id: str, user_id: str, process_id: str) -> None:
    settings, db = _context()
    work = ImportReference(settings, db, ref_id, user_id, upload_id)
    work.run([work.load_file, work.validate, work.set_metadata, work.import_otus, work.create_history])


# ---------------------------------------------------------------- releases over HTTP


def fetch_latest_release(settings: Settings, slug: str) -> dict:
    """The latest release of ``slug`` from the release source, as stored on a reference."""
    url = f"{settings.release_base_url.rstrip('/')}/repos/{slug}/releases/latest"
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT, headers={"Accept": "application/vnd.github+json"})
    except requests.RequestException as error:
        raise StepFailed(f"Could not reach the release source: {error}") from None
    if response.status_code == 404:
        raise StepFailed(f"No release found for {slug}")
    if not response.ok:
        raise StepFailed(f"Could not retrieve latest release: the release source answered {response.status_code}")
    try:
        return references.format_release(response.json(), etag=response.headers.get("ETag"))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise StepFailed(f"Could not read the latest release: {error}") from None


def download_release(settings: Settings, release: dict, target: Path) -> Path:
    """Stream the release's ``reference.json.gz`` to ``target`` (at most the upload limit)."""
    try:
        with requests.get(release["download_url"], stream=True, timeout=HTTP_TIMEOUT) as response:
            if not response.ok:
                raise StepFailed(f"Could not download the release: the release source answered {response.status_code}")
            response.raw.decode_content = True
            write_stream(response.raw, target, settings.max_upload_bytes)
    except requests.RequestException as error:
        raise StepFailed(f"Could not download the release: {error}") from None
    return target


def _download_path(settings: Settings, process_id: str) -> Path:
    return path_in_store(settings.data_path, "temp", f"{process_id}.reference.json.gz")


# ---------------------------------------------------------------- remote


class RemoteReference(Load):
    steps = references.STEPS["remote_reference"]
    method_name = "remote"

    def __init__(self, settings, db, ref_id, user_id):
        super().__init__(settings, db, ref_id, user_id)
        self.path = _download_path(settings, current().process_id)
        self.release_info: dict | None = None

    def download(self) -> None:
        """Fetch the latest release and download its reference file."""
        ref = _reference(self.db, self.ref_id)
        self.release_info = fetch_latest_release(self.settings, ref["remotes_from"]["slug"])
        download_release(self.settings, self.release_info, self.path)

    def unpack(self) -> None:
        """Read and validate the downloaded file."""
        try:
            self.data = content.load_validated(self.path)
        except ReferenceFileError as error:
            raise _file_error(error) from None

    def import_otus(self) -> None:
        """Insert the OTUs and their sequences, linked to the release's ids."""
        self.build(self.data["otus"], remote=True)
        self.insert_otus("import_otus")

    def create_history(self) -> None:
        """Write one history entry per OTU and record the installed release."""
        super().create_history()
        release = {**self.release_info, "newer": False}
        installed = references.installed_release(release, self.user_id)
        self.db.refs.update_one(
            {"_id": self.ref_id},
            {
                "$set": {
                    "data_type": self.data["data_type"],
                    "organism": self.data["organism"],
                    "release": release,
                    "installed": installed,
                    "updates": [installed],
                    "remotes_from.last_updated": installed["created_at"],
                }
            },
        )

    def release(self, final: bool) -> None:
        self.path.unlink(missing_ok=True)  # a retry downloads again


@actor(queue_name=queues.REFERENCES, time_limit=LOAD_TIME_LIMIT, **RETRY_OPTIONS)
def remote_reference(ref_id: str, user_id: str, process_id: str) -> None:
    settings, db = _context()
    work = RemoteReference(settings, db, ref_id, user_id)
    work.run([work.download, work.unpack, work.import_otus, work.create_history])


# ---------------------------------------------------------------- checking for and installing releases


@actor(queue_name=queues.REFERENCES, time_limit=5 * 60_000, **RETRY_OPTIONS)
def check_remote_release(ref_id: str, user_id: str, process_id: str) -> None:
    settings, db = _context()

    def fetch_release() -> None:
        """Ask the release source for the latest release and store it."""
        ref = _reference(db, ref_id)
        references.store_release(db, ref_id, fetch_latest_release(settings, ref["remotes_from"]["slug"]))

    current().run_steps([fetch_release])


class UpdateRemoteReference:
    steps = references.STEPS["update_remote_reference"]

    def __init__(self, settings, db, ref_id, user_id):
        self.settings, self.db, self.ref_id, self.user_id = settings, db, ref_id, user_id
        self.release_info = current().document["context"]["release"]
        self.path = _download_path(settings, current().process_id)
        self.data: dict | None = None
        self.plan: dict | None = None

    def download_and_extract(self) -> None:
        """Download the release's reference file, then read and validate it."""
        download_release(self.settings, self.release_info, self.path)
        try:
            self.data = content.load_validated(self.path)
        except ReferenceFileError as error:
            raise _file_error(error) from None

    def update_otus(self) -> None:
        """Write OTUs that changed as new versions and add the new ones, with history."""
        name = self.release_info["name"]
        self.plan = content.plan_update(self.db, self.ref_id, self.data, self.user_id, name)
        content.apply_changes(self.db, self.plan, self.user_id, name, _step_progress("update_otus", self.steps))

    def remove_otus(self) -> None:
        """Remove the OTUs the release no longer has."""
        content.apply_removals(self.db, self.plan, self.user_id, self.release_info["name"])

    def update_reference(self) -> None:
        """Record the release as installed."""
        references.finish_update(
            self.db, self.ref_id, self.release_info, self.user_id, self.data["data_type"], self.data["organism"]
        )

    def run(self) -> None:
        try:
            current().run_steps([self.download_and_extract, self.update_otus, self.remove_otus, self.update_reference])
        except BaseException as error:
            if _final(error):
                references.abandon_update(self.db, self.ref_id, self.release_info["id"])
            raise
        finally:
            self.path.unlink(missing_ok=True)


@actor(queue_name=queues.REFERENCES, time_limit=LOAD_TIME_LIMIT, **RETRY_OPTIONS)
def update_remote_reference(ref_id: str, user_id: str, process_id: str) -> None:
    settings, db = _context()
    UpdateRemoteReference(settings, db, ref_id, user_id).run()


# ---------------------------------------------------------------- delete


@actor(queue_name=queues.REFERENCES, time_limit=LOAD_TIME_LIMIT, **RETRY_OPTIONS)
def delete_reference(ref_id: str, user_id: str, process_id: str) -> None:
    settings, db = _context()

    def delete_indexes() -> None:
        """Delete the indexes no analysis uses, with their files."""
        content.delete_indexes(db, settings.data_path, ref_id)

    def delete_otus() -> None:
        """Delete the OTUs, sequences and history (OTUs analyses used stay rebuildable)."""
        content.delete_otus(db, ref_id, user_id)

    current().run_steps([delete_indexes, delete_otus])


# ---------------------------------------------------------------- sending

#: Actor and the process-context fields it takes, per process type.
ACTORS = {
    "clone_reference": (clone_reference, ("ref_id", "source_id", "user_id")),
    "import_reference": (import_reference, ("ref_id", "upload_id", "user_id")),
    "remote_reference": (remote_reference, ("ref_id", "user_id")),
    "check_remote_release": (check_remote_release, ("ref_id", "user_id")),
    "update_remote_reference": (update_remote_reference, ("ref_id", "user_id")),
    "delete_reference": (delete_reference, ("ref_id", "user_id")),
}


#: Processes that load a reference created for them: if they cannot start, the reference goes too.
LOADS = ("clone_reference", "import_reference", "remote_reference")


def send(db, process: dict) -> None:
    """Enqueue the actor of a process written by ``core.references``.

    If the broker refuses, the process ends in ``error`` and a reference created only to be
    loaded is removed, so nothing is left half-made; the caller's request then fails (503).
    """
    reference_actor, fields = ACTORS[process["type"]]
    try:
        reference_actor.send(process_id=process["_id"], **{name: process["context"][name] for name in fields})
    except Exception:
        processes.finish(db, process["_id"], "error", "Could not enqueue the process: the task queue is unavailable")
        if process["type"] in LOADS:
            db.refs.delete_one({"_id": process["context"]["ref_id"]})
        raise
