"""The quality document equals FastQC's figures, on every real read set and on the shapes reads come in.

FastQC 0.11.9 (Debian's ``fastqc``, which ``make setup`` installs) runs here, once for the
module, in a temporary folder, over every read file of ``shared/data/samples`` and
``shared/data/quality`` and over read sets made from them:

* the small-RNA lane cut to its first reads (the one set large enough to slow FastQC down;
  every other real set is whole);
* reads of 18 to 300 nt, cut from the real measles reads in order, so FastQC groups long
  positions into ranges;
* the measles mates renamed ``/1`` ``/2`` (beside Casava 1.8 in example-paired-50bp, ``;1``
  ``;2`` in rprsv-paired-nextseq and SRA's shared names in mev-d8-srr7517490);
* one read alone, and one pair.

FastQC's own limits file switches off the modules the document does not read (duplication,
k-mers, adapters ...): the others print the same figures, a third sooner.

Each ``fastqc_data.txt`` is read from FastQC's zip and laid out here, independently of
ringspot, as the workflow spec says Virtool's ``parse_fastqc`` did: position ranges
expanded to one row per position, a row holding NaN replaced by its first number, and
mates combined (counts and per-read quality bins summed, %GC and every per-position value
averaged). Every number must equal the double FastQC prints.
"""

from __future__ import annotations

import gzip
import math
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ringspot.bio.quality import quality_of_files

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SAMPLES = DATA / "samples"

#: Reads kept of the small-RNA lane (125,000 reads): FastQC takes long over the whole lane.
SRNA_READS = 20_000
#: Reads of 18..300 nt made from the measles reads, and measles pairs renamed /1 /2.
LONG_READS = 3_000
RENAMED_PAIRS = 2_000

#: FastQC modules the quality document does not read, switched off (``--limits``).
UNREAD_MODULES = (
    "duplication",
    "kmer",
    "n_content",
    "overrepresented",
    "gc_sequence",
    "tile",
    "sequence_length",
    "adapter",
)

#: Read sets as given to ``quality_of_files``: name -> files (FastQC's input names).
READ_SETS: dict[str, list[str]] = {
    "glrav1-grapevine-125reads": ["glrav1.fq.gz"],
    "example-paired-50bp (Casava 1.8)": ["paired50_1.fq.gz", "paired50_2.fq.gz"],
    "rprsv-paired-nextseq (;1 ;2)": ["rprsv_1.fq.gz", "rprsv_2.fq.gz"],
    "mev-d8-srr7517490 (SRA names)": ["mev_1.fq.gz", "mev_2.fq.gz"],
    "ctv-srna-qiaseq-lane1 (first reads)": ["ctv.fq.gz"],
    "quality/all_n": ["all_n.fq.gz"],
    "quality/binned": ["binned.fq.gz"],
    "quality/unbinned": ["unbinned.fq.gz"],
    "quality/variable (plain text)": ["variable.fastq"],
    "18-300 nt": ["long.fq.gz"],
    "mev renamed /1 /2": ["slash_1.fq.gz", "slash_2.fq.gz"],
    "one read": ["one.fq.gz"],
    "one pair": ["one_1.fq.gz", "one_2.fq.gz"],
}

#: Real files used whole, by FastQC input name.
WHOLE_FILES = {
    "glrav1.fq.gz": SAMPLES / "glrav1-grapevine-125reads.fq.gz",
    "paired50_1.fq.gz": SAMPLES / "example-paired-50bp" / "reads_1.fq.gz",
    "paired50_2.fq.gz": SAMPLES / "example-paired-50bp" / "reads_2.fq.gz",
    "rprsv_1.fq.gz": SAMPLES / "rprsv-paired-nextseq" / "paired_1.fq.gz",
    "rprsv_2.fq.gz": SAMPLES / "rprsv-paired-nextseq" / "paired_2.fq.gz",
    "mev_1.fq.gz": SAMPLES / "mev-d8-srr7517490" / "SRR7517490_R1.fastq.gz",
    "mev_2.fq.gz": SAMPLES / "mev-d8-srr7517490" / "SRR7517490_R2.fastq.gz",
    "all_n.fq.gz": DATA / "quality" / "all_n.fastq.gz",
    "binned.fq.gz": DATA / "quality" / "binned.fastq.gz",
    "unbinned.fq.gz": DATA / "quality" / "unbinned.fastq.gz",
    "variable.fastq": DATA / "quality" / "variable.fastq",
}


def records(path: Path) -> Iterator[tuple[bytes, bytes, bytes]]:
    """(header, sequence, quality) of each record, read plainly with the standard library."""
    with gzip.open(path, "rb") as handle:
        lines = handle.read().splitlines()
    for start in range(0, len(lines), 4):
        yield lines[start], lines[start + 1], lines[start + 3]


def write_fastq(path: Path, reads: list[tuple[bytes, bytes, bytes]]) -> None:
    with gzip.open(path, "wb") as handle:
        handle.write(b"".join(b"%s\n%s\n+\n%s\n" % read for read in reads))


def long_reads(count: int) -> list[tuple[bytes, bytes, bytes]]:
    """Reads of 18..300 nt: the measles mate-1 bases and qualities cut in order at those lengths."""
    sequence = b"".join(read[1] for read in records(WHOLE_FILES["mev_1.fq.gz"]))
    quality = b"".join(read[2] for read in records(WHOLE_FILES["mev_1.fq.gz"]))
    reads, start = [], 0
    for number in range(count):
        length = 18 + (number * 97) % 283  # 97 and 283 coprime: every length 18..300 occurs
        reads.append((b"@SRR7517490.cut%d" % number, sequence[start : start + length], quality[start : start + length]))
        start += length
    return reads


def renamed(path: Path, mate: int, count: int) -> list[tuple[bytes, bytes, bytes]]:
    reads = [read for _, read in zip(range(count), records(path), strict=False)]
    return [(b"%s/%d" % (header.split()[0], mate), sequence, quality) for header, sequence, quality in reads]


def first_reads(path: Path, count: int) -> list[tuple[bytes, bytes, bytes]]:
    return [read for _, read in zip(range(count), records(path), strict=False)]


def make_inputs(folder: Path) -> None:
    for name, source in WHOLE_FILES.items():
        (folder / name).symlink_to(source)
    write_fastq(folder / "ctv.fq.gz", first_reads(SAMPLES / "ctv-srna-qiaseq-lane1" / "reads.fastq.gz", SRNA_READS))
    write_fastq(folder / "long.fq.gz", long_reads(LONG_READS))
    write_fastq(folder / "slash_1.fq.gz", renamed(WHOLE_FILES["mev_1.fq.gz"], 1, RENAMED_PAIRS))
    write_fastq(folder / "slash_2.fq.gz", renamed(WHOLE_FILES["mev_2.fq.gz"], 2, RENAMED_PAIRS))
    write_fastq(folder / "one.fq.gz", first_reads(WHOLE_FILES["glrav1.fq.gz"], 1))
    write_fastq(folder / "one_1.fq.gz", first_reads(WHOLE_FILES["paired50_1.fq.gz"], 1))
    write_fastq(folder / "one_2.fq.gz", first_reads(WHOLE_FILES["paired50_2.fq.gz"], 1))


def fastqc_stem(name: str) -> str:
    """FastQC names its report after the input without .gz and .fq / .fastq."""
    return name.removesuffix(".gz").removesuffix(".fq").removesuffix(".fastq")


def fastqc_modules(text: str) -> dict[str, list[list[str]]]:
    """The rows of each module of ``fastqc_data.txt``, column headers left out."""
    modules: dict[str, list[list[str]]] = {}
    rows: list[list[str]] | None = None
    for line in text.splitlines():
        if line.startswith(">>END_MODULE"):
            rows = None
        elif line.startswith(">>"):
            rows = modules[line[2:].split("\t")[0]] = []
        elif rows is not None and not line.startswith("#"):
            rows.append(line.split("\t"))
    return modules


def positions(label: str) -> range:
    low, _, high = label.partition("-")
    return range(int(low), int(high or low) + 1)


def per_position(rows: list[list[str]]) -> list[list[float]]:
    """One row per position (a group's row repeated), NaN rows as Virtool replaced them."""
    expanded: list[list[float]] = []
    for label, *values in rows:
        numbers = [float(value) for value in values]
        if any(math.isnan(number) for number in numbers):
            first = next((number for number in numbers if not math.isnan(number)), 0.0)
            numbers = [first] * len(numbers)
        expanded.extend(list(numbers) for _ in positions(label))
    return expanded


def fastqc_document(text: str) -> dict:
    """FastQC's figures for one file, laid out as the sample's quality document."""
    modules = fastqc_modules(text)
    basic = {measure: value for measure, value in modules["Basic Statistics"]}
    low, _, high = basic["Sequence length"].partition("-")
    bins = [0] * 50
    for score, count in modules["Per sequence quality scores"]:
        bins += [0] * (int(score) + 1 - len(bins))
        bins[int(score)] = int(float(count))
    return {
        "count": int(basic["Total Sequences"]),
        "encoding": basic["Encoding"],
        "gc": float(basic["%GC"]),
        "length": [int(low), int(high or low)],
        "bases": per_position(modules["Per base sequence quality"]),
        "composition": per_position(modules["Per base sequence content"]),
        "sequences": bins,
        "labels": [row[0] for row in modules["Per base sequence quality"]],
    }


def combined(first: dict, second: dict) -> dict:
    """Two mates' documents combined as the workflow spec says Virtool combined them."""

    def average(rows_1: list[list[float]], rows_2: list[list[float]]) -> list[list[float]]:
        shared = [[(a + b) / 2 for a, b in zip(r1, r2, strict=True)] for r1, r2 in zip(rows_1, rows_2, strict=False)]
        longer = rows_1 if len(rows_1) > len(rows_2) else rows_2
        return shared + longer[len(shared) :]

    size = max(len(first["sequences"]), len(second["sequences"]))
    bins_1 = first["sequences"] + [0] * (size - len(first["sequences"]))
    bins_2 = second["sequences"] + [0] * (size - len(second["sequences"]))
    return {
        "count": first["count"] + second["count"],
        "encoding": first["encoding"],
        "gc": (first["gc"] + second["gc"]) / 2,
        "length": [min(first["length"][0], second["length"][0]), max(first["length"][1], second["length"][1])],
        "bases": average(first["bases"], second["bases"]),
        "composition": average(first["composition"], second["composition"]),
        "sequences": [a + b for a, b in zip(bins_1, bins_2, strict=True)],
    }


@pytest.fixture(scope="module")
def fastqc(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """(input folder, FastQC's document per input file), FastQC run once over all inputs."""
    assert shutil.which("fastqc"), "fastqc is not installed: `make setup` installs Debian's fastqc"
    folder = tmp_path_factory.mktemp("fastqc_inputs")
    out = tmp_path_factory.mktemp("fastqc_reports")
    make_inputs(folder)
    limits = out / "limits.txt"
    limits.write_text("".join(f"{module}\tignore\t1\n" for module in UNREAD_MODULES))
    names = sorted({name for files in READ_SETS.values() for name in files})
    subprocess.run(
        ["fastqc", "--quiet", "--threads", "2", "--format", "fastq", "--limits", str(limits), "--outdir", str(out)]
        + [str(folder / name) for name in names],
        check=True,
        capture_output=True,
        timeout=600,
    )
    documents = {}
    for name in names:
        stem = fastqc_stem(name)
        with zipfile.ZipFile(out / f"{stem}_fastqc.zip") as archive:
            documents[name] = fastqc_document(archive.read(f"{stem}_fastqc/fastqc_data.txt").decode())
    return folder, documents


def without_labels(document: dict) -> dict:
    return {key: value for key, value in document.items() if key != "labels"}


def assert_same_document(mine: dict, theirs: dict) -> None:
    """Field by field, row by row, so a failure names the field and the position."""
    assert mine.keys() == theirs.keys()
    for field in ("count", "encoding", "gc", "length", "sequences"):
        assert mine[field] == theirs[field], field
    for field in ("bases", "composition"):
        assert len(mine[field]) == len(theirs[field]), field
        for position, (row, expected) in enumerate(zip(mine[field], theirs[field], strict=True), 1):
            assert row == expected, (field, position, row, expected)


@pytest.mark.parametrize("name", sorted({name for files in READ_SETS.values() for name in files}))
def test_each_file_equals_fastqc(name, fastqc):
    folder, documents = fastqc
    assert_same_document(quality_of_files([folder / name]), without_labels(documents[name]))


@pytest.mark.parametrize("read_set", [name for name, files in READ_SETS.items() if len(files) == 2])
def test_mates_combine_as_the_spec_says(read_set, fastqc):
    folder, documents = fastqc
    first, second = READ_SETS[read_set]
    expected = combined(without_labels(documents[first]), without_labels(documents[second]))
    assert_same_document(quality_of_files([folder / first, folder / second]), expected)


def test_reads_of_18_to_300_nt_are_grouped_by_fastqc_and_expanded_per_position(fastqc):
    folder, documents = fastqc
    theirs = documents["long.fq.gz"]
    assert theirs["length"] == [18, 300]
    # FastQC prints positions 1-9 alone and then ranges; the document has a row per position.
    assert theirs["labels"][:10] == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10-14"]
    assert theirs["labels"][-1] == "300"
    mine = quality_of_files([folder / "long.fq.gz"])
    assert len(mine["bases"]) == len(mine["composition"]) == 300
    assert mine["bases"][9] == mine["bases"][13] != mine["bases"][14]


def test_one_read_has_no_percentiles_so_rows_repeat_the_mean(fastqc):
    folder, documents = fastqc
    mine = quality_of_files([folder / "one.fq.gz"])
    assert mine["count"] == 1 and sum(mine["sequences"]) == 1
    # FastQC prints NaN percentiles for positions read 100 times or fewer.
    assert all(len(set(row)) == 1 for row in mine["bases"])
    assert mine["bases"] == documents["one.fq.gz"]["bases"]


def test_real_sets_cover_the_naming_conventions():
    """The read sets above really carry the naming conventions they stand for."""
    header = {name: next(records(path))[0] for name, path in WHOLE_FILES.items() if name.endswith(".fq.gz")}
    assert header["paired50_1.fq.gz"].split()[1].startswith(b"2:N:0:")  # Casava 1.8
    assert header["rprsv_2.fq.gz"].endswith(b";2")
    assert header["mev_1.fq.gz"] == header["mev_2.fq.gz"] == b"@SRR7517490.65418"
