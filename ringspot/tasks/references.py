"""Reference processes: clone, import, remote, update from a release, check for releases, delete,
and adding a GenBank or FASTA file's records to an existing reference.

Each starts here (``start_*``: ``core.references`` writes what the process will fill, then
``start_process`` writes the process and sends it), runs module-level steps over a
``ReferenceRun``, and is safe to run twice: a load starts by clearing the reference's OTUs, an
update matches OTUs on ``remote.id`` and writes only differences, a delete only deletes, and
adding records skips accessions the reference already holds once the file has passed its check.
A load that fails for good (a broken file, a cancel, the last retry) leaves nothing behind: no
OTUs, sequences or history, and no reference document; one that cannot even be sent leaves
nothing either. Adding records reads and checks the whole file before its first write, so a bad
file changes nothing; a cancel midway keeps the isolates already added, each with its history
entry, as edits through the API would.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import requests
from dramatiq.middleware import TimeLimitExceeded

from ..bio.records import (
    RecordError,
    apply_mapping,
    group_records,
    load_any_reference,
    open_text,
    read_mapping_file,
    read_records,
    sniff_format,
)
from ..bio.reference import ReferenceFileError, validate_reference
from ..core import otus, references, uploads
from ..core import reference_content as content
from ..core.db import Database, connect
from ..core.errors import BadRequest, NotFound
from ..core.files import path_in_store, write_stream
from ..core.settings import Settings, from_env
from ..core.utils import new_id
from ..workers import queues
from ..workers.runtime import FINAL_ERRORS, RunState, StepFailed, Workflow, actor, current, start_process

log = logging.getLogger("ringspot.tasks.references")

MAX_RETRIES = 2
#: Milliseconds. The full plant-virus reference loads in seconds; this bounds a stuck run.
LOAD_TIME_LIMIT = 30 * 60_000
HTTP_TIMEOUT = 60
RETRY_OPTIONS = {"max_retries": MAX_RETRIES, "min_backoff": 1_000, "max_backoff": 30_000}


@dataclass
class ReferenceRun(RunState):
    """A run on one reference: its ids from the process context, then what the steps read and built."""

    db: Database
    ref_id: str
    user_id: str
    source_id: str | None = None
    upload_id: str | None = None
    #: A CSV (accession, otu, isolate, segment) settling what the records' text cannot.
    mapping_upload_id: str | None = None
    #: The release a remote load or an update installs.
    release_info: dict | None = None
    #: The reference file a remote load or an update downloads.
    path: Path | None = None
    raw: dict | None = None
    data: dict | None = None
    documents: tuple[list, list, list] = ([], [], [])
    plan: dict | None = None
    #: OTUs (``reference.json`` shape) grouping the records of a file added to the reference.
    groups: list[dict] | None = None

    @classmethod
    def of(cls, run, settings: Settings) -> ReferenceRun:
        context = run.context
        return cls(
            run,
            settings,
            db=connect(settings.mongodb_uri),
            ref_id=context["ref_id"],
            user_id=context["user_id"],
            source_id=context.get("source_id"),
            upload_id=context.get("upload_id"),
            mapping_upload_id=context.get("mapping_upload_id"),
            release_info=context.get("release"),
            path=path_in_store(settings.data_path, "temp", f"{run.process_id}.reference.json.gz"),
        )


CLONE: Workflow[ReferenceRun] = Workflow("clone_reference")
IMPORT: Workflow[ReferenceRun] = Workflow("import_reference")
REMOTE: Workflow[ReferenceRun] = Workflow("remote_reference")
CHECK_RELEASE: Workflow[ReferenceRun] = Workflow("check_remote_release")
UPDATE: Workflow[ReferenceRun] = Workflow("update_remote_reference")
DELETE: Workflow[ReferenceRun] = Workflow("delete_reference")
RECORDS: Workflow[ReferenceRun] = Workflow("import_records")


# ---------------------------------------------------------------- starting


def _start(db: Database, task, workflow: Workflow, ref_id: str, user_id: str, process_id: str, undo=None, **context):
    return start_process(
        db,
        task,
        workflow,
        process_id=process_id,
        user_id=user_id,
        context={"ref_id": ref_id, "user_id": user_id, **context},
        undo=undo,
    )


def start_clone(db: Database, source: dict, user_id: str, **fields) -> tuple[dict, dict]:
    """A new reference and the process that fills it with copies of ``source``'s OTUs."""
    process_id = new_id()
    ref = references.create_clone(db, source, user_id, process_id, **fields)
    undo = partial(references.hide_reference, db, ref)
    return ref, _start(db, clone_reference, CLONE, ref["_id"], user_id, process_id, undo, source_id=source["_id"])


def start_import(db: Database, upload: dict, user_id: str, mapping: dict | None = None, **fields) -> tuple[dict, dict]:
    """A new reference and the process that fills it from an uploaded ``reference.json.gz``, GenBank or FASTA
    (with an optional ``mapping`` upload for the records)."""
    process_id = new_id()
    ref = references.create_import(db, upload, user_id, process_id, **fields)
    upload_ids = [upload["_id"], *([mapping["_id"]] if mapping else [])]
    uploads.reserve(db, upload_ids)  # the file is reserved with the reference; the mapping too

    def undo() -> None:
        references.hide_reference(db, ref)
        uploads.release(db, upload_ids)

    context = {"upload_id": upload["_id"], "mapping_upload_id": mapping["_id"] if mapping else None}
    return ref, _start(db, import_reference, IMPORT, ref["_id"], user_id, process_id, undo, **context)


def start_records_import(db: Database, ref: dict, upload: dict, mapping: dict | None, user_id: str) -> dict:
    """The process that adds a GenBank or FASTA upload's records to ``ref`` (with an optional ``mapping`` upload)."""
    upload_ids = [upload["_id"], *([mapping["_id"]] if mapping else [])]
    uploads.reserve(db, upload_ids)
    context = {"upload_id": upload["_id"], "mapping_upload_id": mapping["_id"] if mapping else None}
    undo = partial(uploads.release, db, upload_ids)
    return _start(db, import_records, RECORDS, ref["_id"], user_id, new_id(), undo, **context)


def start_remote(db: Database, slug: str, user_id: str, **fields) -> tuple[dict, dict]:
    """A new reference and the process that fills it from the latest release of ``slug``."""
    process_id = new_id()
    ref = references.create_remote(db, slug, user_id, process_id, **fields)
    undo = partial(references.hide_reference, db, ref)
    return ref, _start(db, remote_reference, REMOTE, ref["_id"], user_id, process_id, undo)


def start_removal(db: Database, ref: dict, user_id: str) -> dict:
    """The process that removes the reference's indexes and OTUs; the caller then hides the reference."""
    return _start(db, delete_reference, DELETE, ref["_id"], user_id, new_id())


def start_release_check(db: Database, ref: dict, user_id: str) -> dict:
    """The process that asks the release source for a remote reference's latest release."""
    references.require_remote(ref)
    return _start(db, check_remote_release, CHECK_RELEASE, ref["_id"], user_id, new_id())


def start_update(db: Database, ref: dict, user_id: str) -> tuple[dict, dict]:
    """Install the latest stored release: its ``updates`` entry and the process that applies it."""
    process_id = new_id()
    update = references.begin_update(db, ref, user_id, process_id)
    release = ref["release"]
    undo = partial(references.abandon_update, db, ref["_id"], release["id"])
    process = _start(db, update_remote_reference, UPDATE, ref["_id"], user_id, process_id, undo, release=release)
    return update, process


# ---------------------------------------------------------------- shared by the steps


def _reference(state: ReferenceRun) -> dict:
    """The reference the process works on; gone means removed meanwhile, which no retry mends."""
    try:
        return references.get_reference_or_404(state.db, state.ref_id)
    except NotFound:
        raise StepFailed("Reference does not exist") from None


def _final(state: ReferenceRun, error: BaseException) -> bool:
    """True when no retry will follow: a known failure, a time-out, or the last attempt."""
    if isinstance(error, (*FINAL_ERRORS, TimeLimitExceeded)) or not isinstance(error, Exception):
        return True
    return state.run.document.get("attempts", 1) > MAX_RETRIES


def _build(state: ReferenceRun, sources: list[dict], method_name: str, describe, remote: bool = False) -> None:
    """Clear the reference's content and build the documents of ``sources`` in memory."""
    content.clear_content(state.db, state.ref_id)
    state.documents = content.build_documents(
        sources, state.ref_id, state.user_id, method_name, remote=remote, describe=describe
    )


def _insert_otus(state: ReferenceRun, workflow: Workflow, step) -> None:
    otus, sequences, _ = state.documents
    progress = workflow.progress_within(state, step)
    content.insert_batches(state.db, "otus", otus, lambda f: progress(f / 3))
    content.insert_batches(state.db, "sequences", sequences, lambda f: progress(1 / 3 + 2 * f / 3))


def _validated(state: ReferenceRun) -> dict:
    """The downloaded reference file, read and checked."""
    try:
        return content.load_validated(state.path)
    except ReferenceFileError as error:
        raise StepFailed(error.message) from None


def _workflow(state: ReferenceRun) -> Workflow:
    return {w.process_type: w for w in (CLONE, IMPORT, REMOTE)}[state.run.document["type"]]


# ---------------------------------------------------------------- loading: clone, import, remote


@CLONE.step
def copy_otus(state: ReferenceRun) -> None:
    """Copy the source reference's OTUs and sequences."""
    assert state.source_id is not None
    _build(state, content.clone_sources(state.db, state.source_id), "clone", lambda otu: f"Cloned {otu['name']}")
    _insert_otus(state, CLONE, copy_otus)


@IMPORT.step
def load_file(state: ReferenceRun) -> None:
    """Read the uploaded file: reference.json.gz, GenBank or FASTA records."""
    assert state.upload_id is not None
    mapping = _mapping(state)
    try:
        with uploads.local_upload(state.settings.data_path, state.upload_id) as path:
            state.raw = load_any_reference(path, mapping=mapping)
    except NotFound:
        raise StepFailed("File does not exist") from None


def _mapping(state: ReferenceRun) -> dict[str, dict[str, str]]:
    """The run's mapping upload, read (none given: an empty mapping)."""
    if not state.mapping_upload_id:
        return {}
    try:
        with uploads.local_upload(state.settings.data_path, state.mapping_upload_id) as path:
            return read_mapping_file(path)
    except NotFound:
        raise StepFailed("Mapping file does not exist") from None
    except RecordError as error:
        raise StepFailed(str(error)) from None


@IMPORT.step
def validate(state: ReferenceRun) -> None:
    """Check the file's schema, duplicates, sequences and OTUs."""
    state.data, state.raw = validate_reference(state.raw), None


@IMPORT.step
def set_metadata(state: ReferenceRun) -> None:
    """Take the reference's data type and organism from the file."""
    assert state.data is not None
    references.set_content_type(state.db, state.ref_id, state.data["data_type"], state.data["organism"])


@REMOTE.step
def download(state: ReferenceRun) -> None:
    """Fetch the latest release and download its reference file."""
    assert state.path is not None
    state.release_info = fetch_latest_release(state.settings, _reference(state)["remotes_from"]["slug"])
    download_release(state.settings, state.release_info, state.path)


@REMOTE.step
def unpack(state: ReferenceRun) -> None:
    """Read and validate the downloaded file."""
    state.data = _validated(state)


@IMPORT.step
@REMOTE.step
def import_otus(state: ReferenceRun) -> None:
    """Insert the OTUs and their sequences; a remote reference's keep the ids the release gives them."""
    assert state.data is not None
    remote = state.release_info is not None
    method_name = "remote" if remote else "import"
    _build(state, state.data["otus"], method_name, lambda otu: f"Imported {otu['name']}", remote=remote)
    _insert_otus(state, _workflow(state), import_otus)


@CLONE.step
@IMPORT.step
@REMOTE.step
def create_history(state: ReferenceRun) -> None:
    """Write one history entry per OTU (and, for a remote reference, record the release installed)."""
    progress = _workflow(state).progress_within(state, create_history)
    content.insert_batches(state.db, "history", state.documents[2], progress)
    if not references.reference_exists(state.db, state.ref_id):
        # The reference was removed while it loaded; its delete may have run already.
        content.clear_content(state.db, state.ref_id)
    elif state.release_info is not None and state.data is not None:
        data = state.data
        references.record_remote_install(
            state.db, state.ref_id, state.release_info, state.user_id, data["data_type"], data["organism"]
        )


def _load(state: ReferenceRun) -> None:
    """Run a load; when it fails, clear what it inserted, and when no retry follows, the reference too."""
    try:
        _workflow(state).run(state)
    except BaseException as error:
        final = _final(state, error)
        content.clear_content(state.db, state.ref_id)
        if final:
            references.hide_reference(state.db, {"_id": state.ref_id})
        log.info("reference_load_undone ref_id=%s final=%s", state.ref_id, final)
        _release(state, final)
        if isinstance(error, ReferenceFileError):
            raise StepFailed(error.message) from None
        raise
    _release(state, True)


def _release(state: ReferenceRun, final: bool) -> None:
    """Give back what the load held (``final``: no retry will need it again)."""
    if state.upload_id and final:
        uploads.release(state.db, [i for i in (state.upload_id, state.mapping_upload_id) if i])
    if state.path is not None:
        state.path.unlink(missing_ok=True)  # a retry downloads again


@actor(queue_name=queues.REFERENCES, time_limit=LOAD_TIME_LIMIT, **RETRY_OPTIONS)
def clone_reference(process_id: str) -> None:
    _load(ReferenceRun.of(current(), from_env()))


@actor(queue_name=queues.REFERENCES, time_limit=LOAD_TIME_LIMIT, **RETRY_OPTIONS)
def import_reference(process_id: str) -> None:
    _load(ReferenceRun.of(current(), from_env()))


@actor(queue_name=queues.REFERENCES, time_limit=LOAD_TIME_LIMIT, **RETRY_OPTIONS)
def remote_reference(process_id: str) -> None:
    _load(ReferenceRun.of(current(), from_env()))


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


# ---------------------------------------------------------------- checking for and installing releases


@CHECK_RELEASE.step
def fetch_release(state: ReferenceRun) -> None:
    """Ask the release source for the latest release and store it."""
    slug = _reference(state)["remotes_from"]["slug"]
    references.store_release(state.db, state.ref_id, fetch_latest_release(state.settings, slug))


@actor(queue_name=queues.REFERENCES, time_limit=5 * 60_000, **RETRY_OPTIONS)
def check_remote_release(process_id: str) -> None:
    CHECK_RELEASE.run(ReferenceRun.of(current(), from_env()))


@UPDATE.step
def download_and_extract(state: ReferenceRun) -> None:
    """Download the release's reference file, then read and validate it."""
    assert state.release_info is not None and state.path is not None
    download_release(state.settings, state.release_info, state.path)
    state.data = _validated(state)


@UPDATE.step
def update_otus(state: ReferenceRun) -> None:
    """Write OTUs that changed as new versions and add the new ones, with history."""
    assert state.release_info is not None and state.data is not None
    name = state.release_info["name"]
    state.plan = content.plan_update(state.db, state.ref_id, state.data, state.user_id, name)
    progress = UPDATE.progress_within(state, update_otus)
    content.apply_changes(state.db, state.plan, state.user_id, name, progress)


@UPDATE.step
def remove_otus(state: ReferenceRun) -> None:
    """Remove the OTUs the release no longer has."""
    assert state.release_info is not None and state.plan is not None
    content.apply_removals(state.db, state.plan, state.user_id, state.release_info["name"])


@UPDATE.step
def update_reference(state: ReferenceRun) -> None:
    """Record the release as installed."""
    assert state.release_info is not None and state.data is not None
    data = state.data
    references.finish_update(
        state.db, state.ref_id, state.release_info, state.user_id, data["data_type"], data["organism"]
    )


@actor(queue_name=queues.REFERENCES, time_limit=LOAD_TIME_LIMIT, **RETRY_OPTIONS)
def update_remote_reference(process_id: str) -> None:
    state = ReferenceRun.of(current(), from_env())
    try:
        UPDATE.run(state)
    except BaseException as error:
        if _final(state, error) and state.release_info is not None:
            references.abandon_update(state.db, state.ref_id, state.release_info["id"])
        raise
    finally:
        if state.path is not None:
            state.path.unlink(missing_ok=True)


# ---------------------------------------------------------------- delete


@DELETE.step
def delete_indexes(state: ReferenceRun) -> None:
    """Delete the indexes no analysis uses, with their files."""
    content.delete_indexes(state.db, state.settings.data_path, state.ref_id)


@DELETE.step
def delete_otus(state: ReferenceRun) -> None:
    """Delete the OTUs, sequences and history (OTUs analyses used stay rebuildable)."""
    content.delete_otus(state.db, state.ref_id, state.user_id)


@actor(queue_name=queues.REFERENCES, time_limit=LOAD_TIME_LIMIT, **RETRY_OPTIONS)
def delete_reference(process_id: str) -> None:
    DELETE.run(ReferenceRun.of(current(), from_env()))


# ---------------------------------------------------------------- adding a file's records to a reference


@RECORDS.step
def read_file_records(state: ReferenceRun) -> None:
    """Read the uploaded GenBank or FASTA records, apply the mapping file and group them into OTUs."""
    assert state.upload_id is not None
    mapping = _mapping(state)
    try:
        with uploads.local_upload(state.settings.data_path, state.upload_id) as path:
            if _is_reference_json(path):
                raise StepFailed("The file is a reference.json.gz; records are added from a GenBank or FASTA file")
            with open(path, "rb") as handle:
                state.groups = group_records(apply_mapping(read_records(handle, "The file"), mapping))
    except NotFound:
        raise StepFailed("File does not exist") from None
    except RecordError as error:
        raise StepFailed(str(error)) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise StepFailed(f"The file is not a complete gzip stream: {error}") from None


def _is_reference_json(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return sniff_format(open_text(handle).read(4096).encode("latin-1")) == "json"
    except (OSError, EOFError, zlib.error):
        return False  # a broken gzip stream: reading the records says what is wrong


@RECORDS.step
def check_against_reference(state: ReferenceRun) -> None:
    """Check the records against the reference: accessions it holds, source types it allows."""
    assert state.groups is not None
    ref = _reference(state)
    if not state.run.context.get("checked"):
        # A redelivered message finds the accessions its first run added: they are skipped, not refused.
        _refuse_present_accessions(state, state.groups)
    for group in state.groups:
        for isolate in group["isolates"]:
            if _source_type_refused(ref, isolate["source_type"]):
                accession = isolate["sequences"][0]["accession"]
                raise StepFailed(f"Record {accession}: source type {isolate['source_type']!r} is not allowed")
    state.run.report(checked=True)


def _refuse_present_accessions(state: ReferenceRun, groups: list[dict]) -> None:
    present = {_unversioned(accession): accession for accession in otus.reference_accessions(state.db, state.ref_id)}
    for accession in _accessions(groups):
        held = present.get(_unversioned(accession))
        if held is not None:
            also = "" if held == accession else f" (as {held})"
            raise StepFailed(f"Accession {accession} is already in the reference{also}")


def _source_type_refused(ref: dict, source_type: str) -> bool:
    """True when ``core.otus.add_isolate`` would refuse the source type, said before anything is written."""
    try:
        otus.check_source_type(ref, source_type)
    except BadRequest:
        return True
    return False


def _accessions(groups: list[dict]) -> list[str]:
    return [s["accession"] for group in groups for isolate in group["isolates"] for s in isolate["sequences"]]


def _unversioned(accession: str) -> str:
    return accession.split(".")[0]


@RECORDS.step
def add_records(state: ReferenceRun) -> None:
    """Add the records: new isolates of the OTUs the reference has, new OTUs for other organisms."""
    assert state.groups is not None
    ref = _reference(state)
    present = otus.reference_accessions(state.db, state.ref_id)
    progress = RECORDS.progress_within(state, add_records)
    for number, group in enumerate(state.groups):
        state.check_cancelled()
        otu_id = _otu_for(state, ref, group)
        for isolate in group["isolates"]:
            _add_isolate_records(state, ref, otu_id, isolate, present)
        progress((number + 1) / len(state.groups))


def _otu_for(state: ReferenceRun, ref: dict, group: dict) -> str:
    """The id of the reference's OTU named like ``group`` (its schema extended by new segments), or of a new one."""
    otu = otus.find_otu_by_name(state.db, state.ref_id, group["name"])
    if otu is None:
        schema, name, taxid = group["schema"], group["name"], group.get("taxid")
        return otus.create_otu(
            state.db, ref, name=name, abbreviation="", schema=schema, user_id=state.user_id, taxid=taxid
        )["_id"]
    known = {segment["name"] for segment in otu.get("schema") or []}
    new_segments = [segment for segment in group["schema"] if segment["name"] not in known]
    if new_segments:
        otus.edit_otu(state.db, otu, {"schema": [*(otu.get("schema") or []), *new_segments]}, state.user_id)
    return otu["_id"]


def _add_isolate_records(state: ReferenceRun, ref: dict, otu_id: str, isolate: dict, present: set[str]) -> None:
    """Add an isolate's records that the reference does not hold yet, as an isolate of the OTU."""
    sequences = [s for s in isolate["sequences"] if s["accession"] not in present]
    if not sequences:
        return
    fields = ("accession", "definition", "host", "segment", "sequence")
    records = [{key: sequence[key] for key in fields} for sequence in sequences]
    otu = otus.get_otu_or_404(state.db, otu_id)
    isolate_id = _isolate_to_fill(state, otu, isolate, {s["segment"] for s in sequences})
    if isolate_id is None:
        # One change per isolate: its records arrive together, as they do in the file.
        otus.add_isolate_with_sequences(
            state.db,
            ref,
            otu,
            source_type=isolate["source_type"],
            source_name=isolate["source_name"],
            sequences=records,
            user_id=state.user_id,
        )
    else:
        for data in records:
            otus.create_sequence(state.db, otus.get_otu_or_404(state.db, otu_id), isolate_id, data, state.user_id)
    present.update(data["accession"] for data in records)


def _isolate_to_fill(state: ReferenceRun, otu: dict, isolate: dict, segments: set) -> str | None:
    """An isolate of the OTU from the same source whose segments the records do not take (the
    segments a file adds to an isolate the reference has), else None: the records become a new isolate."""
    source = (isolate["source_type"], isolate["source_name"])
    if all((i["source_type"], i["source_name"]) != source for i in otu["isolates"]):
        return None  # the usual case, known without reading the OTU's sequences
    for existing in otus.join_otu(state.db, otu)["isolates"]:
        taken = {s["segment"] for s in existing["sequences"]}
        if (existing["source_type"], existing["source_name"]) == source and not segments & taken:
            return existing["id"]
    return None


@actor(queue_name=queues.REFERENCES, time_limit=LOAD_TIME_LIMIT, **RETRY_OPTIONS)
def import_records(process_id: str) -> None:
    state = ReferenceRun.of(current(), from_env())
    try:
        RECORDS.run(state)
    except BaseException as error:
        _release(state, _final(state, error))
        raise
    _release(state, True)
