"""Worker-side caches under ``DATA_PATH/cache``: indexes, subtractions, HMM sets, built genomes.

An entry is filled once in a scratch folder and renamed into place, so concurrent runs on
one worker never see half an entry; using an entry refreshes its time for a pruner.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..core.settings import Settings
from ..workers.jobclient import JobClient

#: Files of an index or subtraction that mapping needs.
MAPPING_FILE_SUFFIXES = (".bt2", ".bt2l", ".json.gz")


def cached(root: Path, key: str, fill: Callable[[Path], None]) -> tuple[Path, bool]:
    """``root/key`` and whether it was already there; made once by ``fill`` in a scratch folder."""
    final = root / key
    if final.is_dir():
        os.utime(final)  # last use, for whoever prunes the cache
        return final, True
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    try:
        fill(scratch)
        try:
            scratch.rename(final)
        except OSError:
            if not final.is_dir():  # not another run's copy winning the race: a real failure
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final, False


def cache_root(settings: Settings, kind: str) -> Path:
    return Path(settings.data_path) / "cache" / kind


def cached_mapping_files(job: JobClient, run, settings: Settings, kind: str, object_id: str) -> tuple[Path, bool, dict]:
    """The Bowtie2 files of an index or subtraction (``kind``: ``indexes``/``subtractions``), downloaded once.

    Returns (folder, whether it was cached, the object's document).
    """
    document = job.get(f"/api/{kind}/{object_id}")
    names = [f["name"] for f in document.get("files", []) if f["name"].endswith(MAPPING_FILE_SUFFIXES)]

    def fill(folder: Path) -> None:
        for name in names:
            job.download(f"/api/{kind}/{object_id}/files/{name}", folder / name)
            run.check_cancelled()

    folder, reused = cached(cache_root(settings, kind), object_id, fill)
    return folder, reused, document
