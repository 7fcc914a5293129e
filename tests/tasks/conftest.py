"""Fixtures of the job tests."""

from __future__ import annotations

import pytest

from ..analyses_data import build_index_files, load_otus
from ..diagnosis_data import add_missing_virus


@pytest.fixture(scope="session")
def plant(tmp_path_factory):
    """The plant-virus reference with the measles genome it lacks, and its default-isolate index:
    built once (bowtie2-build, ~30 s) for every Pathoscope test that maps real samples."""
    otus = add_missing_virus(load_otus())
    return {"otus": otus, "files": build_index_files(otus, tmp_path_factory.mktemp("plant-index"))}
