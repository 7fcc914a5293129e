"""``install_hmms``: check, press and install a vFam profile set with its annotations.

A server operation (database and file store directly). Nothing of the new set is visible
until its last step switches the installed set in one write; any failure before that removes
what the run made and leaves the previous profiles in use.
"""

from __future__ import annotations

import logging

from pymongo.database import Database

from ..bio import hmmer
from ..core import hmms, processes, uploads
from ..core.db import connect
from ..core.settings import from_env
from ..workers import queues
from ..workers.runtime import Cancelled, actor, current

log = logging.getLogger("ringspot.tasks.hmms")


def start_install(db: Database, upload_id: str, annotations_upload_id: str, user_id: str | None) -> dict:
    """Create the install process, then enqueue it; a failed enqueue frees the install slot."""
    process = hmms.create_install(db, upload_id, annotations_upload_id, user_id)
    try:
        install_hmms.send(process_id=process["_id"])
    except Exception:
        processes.finish(db, process["_id"], "error", "Could not enqueue the install")
        uploads.release(db, [upload_id, annotations_upload_id])
        hmms.abandon_install(
            db, from_env().data_path, process["_id"], process["context"]["set_id"], "Could not enqueue the install"
        )
        raise
    return process


# No retries: a failed install is a bad file far more often than a passing fault; the user retries.
@actor(queue_name=queues.HMMS, max_retries=0, time_limit=4 * 3600 * 1000)
def install_hmms(process_id: str) -> None:
    run = current()
    settings = from_env()
    db = connect(settings.mongodb_uri)
    context = run.context
    set_id = context["set_id"]
    user_id = (run.document.get("user") or {}).get("id")
    state: dict = {}

    if (hmms.installed_set(db) or {}).get("id") == set_id:
        return  # a redelivered message for an install that already switched

    def unpack_profiles():
        """Copy the uploaded profiles into the new set's folder, decompressed."""
        state["profiles"] = hmms.unpack_profiles(settings.data_path, context["upload_id"], set_id)

    def check_profiles():
        """Check every profile is a complete HMMER3 model with a unique name."""
        state["names"] = hmmer.validate_profiles(state["profiles"])

    def check_annotations():
        """Check the annotations describe exactly the profiles' clusters."""
        annotations = hmms.load_annotations(uploads.upload_path(settings.data_path, context["annotations_upload_id"]))
        hmmer.validate_annotations(annotations, state["names"])
        state["docs"] = hmms.annotation_documents(annotations, set_id)

    def press_profiles():
        """Press the profiles for hmmscan, once for this set."""
        hmmer.hmmpress(state["profiles"], timeout=settings.tool_timeout, cancel=run.cancel)

    def import_annotations():
        """Store the annotations, hidden until the switch, and the file jobs download."""
        hmms.import_annotations(db, state["docs"], set_id)
        hmms.write_annotations_file(settings.data_path, set_id, state["docs"])

    def switch_profiles():
        """Make the new set the installed one."""
        used = {
            name: {"id": upload["_id"], "name": upload["name"]}
            for name, upload in (
                ("profiles", uploads.get_upload_or_404(db, context["upload_id"])),
                ("annotations", uploads.get_upload_or_404(db, context["annotations_upload_id"])),
            )
        }
        installed = hmms.switch_installed(
            db,
            process_id=process_id,
            set_id=set_id,
            profile_names=state["names"],
            sha256=hmms.file_sha256(state["profiles"]),
            uploads_used=used,
            user_id=user_id,
        )
        log.info("hmms_installed set_id=%s version=%s profiles=%d", set_id, installed["version"], installed["count"])

    try:
        run.run_steps(
            [unpack_profiles, check_profiles, check_annotations, press_profiles, import_annotations, switch_profiles]
        )
    except BaseException as error:
        message = "Cancelled" if isinstance(error, Cancelled) else (str(error) or type(error).__name__)
        hmms.abandon_install(db, settings.data_path, process_id, set_id, message)
        raise
    finally:
        uploads.release(db, [context["upload_id"], context["annotations_upload_id"]])
