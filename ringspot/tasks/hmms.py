"""``install_hmms``: check, press and install a vFam profile set with its annotations.

A server operation (database and file store directly). Nothing of the new set is visible
until its last step switches the installed set in one write; any failure before that removes
what the run made and leaves the previous profiles in use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..bio import hmmer
from ..core import hmms, uploads
from ..core.db import Database, connect
from ..core.settings import from_env
from ..core.utils import new_id
from ..workers import queues
from ..workers.runtime import Cancelled, RunState, Workflow, actor, current, start_process

log = logging.getLogger("ringspot.tasks.hmms")


@dataclass
class InstallRun(RunState):
    """An ``install_hmms`` run: the set it installs from two uploads, and what it found in them."""

    db: Database
    process_id: str
    set_id: str
    upload_id: str
    annotations_upload_id: str
    user_id: str | None = None
    profiles: Path | None = None
    names: list[str] = field(default_factory=list)
    documents: list[dict] = field(default_factory=list)


INSTALL_HMMS: Workflow[InstallRun] = Workflow("install_hmms")


def start_install(db: Database, upload_id: str, annotations_upload_id: str, user_id: str | None) -> dict:
    """Claim the install slot and start the install; if it cannot start, the slot and uploads are free again."""
    process_id = new_id()
    context = hmms.reserve_install(db, process_id, upload_id, annotations_upload_id)

    def undo() -> None:
        uploads.release(db, [upload_id, annotations_upload_id])
        hmms.abandon_install(db, from_env().data_path, process_id, context["set_id"], "Could not enqueue the install")

    return start_process(
        db, install_hmms, INSTALL_HMMS, process_id=process_id, user_id=user_id, context=context, undo=undo
    )


@INSTALL_HMMS.step
def unpack_profiles(state: InstallRun) -> None:
    """Copy the uploaded profiles into the new set's folder, decompressed."""
    state.profiles = hmms.unpack_profiles(state.settings.data_path, state.upload_id, state.set_id)


@INSTALL_HMMS.step
def check_profiles(state: InstallRun) -> None:
    """Check every profile is a complete HMMER3 model with a unique name."""
    assert state.profiles is not None
    state.names = hmmer.validate_profiles(state.profiles)


@INSTALL_HMMS.step
def check_annotations(state: InstallRun) -> None:
    """Check the annotations describe exactly the profiles' clusters."""
    with uploads.local_upload(state.settings.data_path, state.annotations_upload_id) as path:
        annotations = hmms.load_annotations(path)
    hmmer.validate_annotations(annotations, state.names)
    state.documents = hmms.annotation_documents(annotations, state.set_id)


@INSTALL_HMMS.step
def press_profiles(state: InstallRun) -> None:
    """Press the profiles for hmmscan, once for this set."""
    assert state.profiles is not None
    hmmer.hmmpress(state.profiles, timeout=state.settings.tool_timeout, cancel=state.cancel)


@INSTALL_HMMS.step
def import_annotations(state: InstallRun) -> None:
    """Store the annotations, hidden until the switch, and the file jobs download."""
    hmms.import_annotations(state.db, state.documents, state.set_id)
    hmms.write_annotations_file(state.settings.data_path, state.set_id, state.documents)


@INSTALL_HMMS.step
def switch_profiles(state: InstallRun) -> None:
    """Make the new set the installed one."""
    assert state.profiles is not None
    used = {
        name: {"id": upload["_id"], "name": upload["name"]}
        for name, upload in (
            ("profiles", uploads.get_upload_or_404(state.db, state.upload_id)),
            ("annotations", uploads.get_upload_or_404(state.db, state.annotations_upload_id)),
        )
    }
    installed = hmms.switch_installed(
        state.db,
        process_id=state.process_id,
        set_id=state.set_id,
        profile_names=state.names,
        sha256=hmms.file_sha256(state.profiles),
        uploads_used=used,
        user_id=state.user_id,
    )
    log.info("hmms_installed set_id=%s version=%s profiles=%d", state.set_id, installed["version"], installed["count"])


# No retries: a failed install is a bad file far more often than a passing fault; the user retries.
@actor(queue_name=queues.HMMS, max_retries=0, time_limit=4 * 3600 * 1000)
def install_hmms(process_id: str) -> None:
    run, settings = current(), from_env()
    db = connect(settings.mongodb_uri)
    context = run.context
    if (hmms.installed_set(db) or {}).get("id") == context["set_id"]:
        return  # a redelivered message for an install that already switched
    state = InstallRun(
        run,
        settings,
        db=db,
        process_id=process_id,
        set_id=context["set_id"],
        upload_id=context["upload_id"],
        annotations_upload_id=context["annotations_upload_id"],
        user_id=(run.document.get("user") or {}).get("id"),
    )
    try:
        INSTALL_HMMS.run(state)
    except BaseException as error:
        message = "Cancelled" if isinstance(error, Cancelled) else (str(error) or type(error).__name__)
        hmms.abandon_install(db, settings.data_path, process_id, state.set_id, message)
        raise
    finally:
        uploads.release(db, [state.upload_id, state.annotations_upload_id])
