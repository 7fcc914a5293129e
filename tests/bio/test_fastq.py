"""FASTQ reading: real read files count right, and bad uploads fail naming where."""

from __future__ import annotations

import doctest
import gzip
import shutil
import zlib
from pathlib import Path

import pytest

from ringspot.bio import fastq
from ringspot.bio.fastq import (
    check_mates_share_names,
    count_and_validate_pair,
    count_records,
    gzip_copy,
    open_maybe_gzip,
    read_fastq,
    read_fastq_blocks,
    write_distinct_mates,
)
from tests.mate_names import CONVENTIONS, write_pair

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SAMPLES = DATA / "samples"
PAIRED_50 = SAMPLES / "example-paired-50bp"
RPRSV = SAMPLES / "rprsv-paired-nextseq"

# Counts measured independently with `gzip -dc FILE | wc -l` / 4.
REAL_COUNTS = {
    PAIRED_50 / "reads_1.fq.gz": 25000,
    PAIRED_50 / "reads_2.fq.gz": 25000,
    RPRSV / "paired_1.fq.gz": 10000,
    RPRSV / "paired_2.fq.gz": 10000,
    SAMPLES / "glrav1-grapevine-125reads.fq.gz": 125,
    DATA / "quality" / "all_n.fastq.gz": 200,
    DATA / "quality" / "binned.fastq.gz": 400,
    DATA / "quality" / "unbinned.fastq.gz": 400,
    DATA / "quality" / "variable.fastq": 300,
}


def lines_of(path: Path) -> list[bytes]:
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rb") as handle:
        return handle.read().splitlines()


def test_doctests_pass():
    assert doctest.testmod(fastq).failed == 0


@pytest.mark.parametrize("path", list(REAL_COUNTS), ids=lambda path: path.name)
def test_counts_every_record_of_real_files(path):
    assert count_records(path) == REAL_COUNTS[path]
    assert count_records(path) == len(lines_of(path)) // 4


def test_records_match_the_file_lines():
    path = SAMPLES / "glrav1-grapevine-125reads.fq.gz"
    lines = [line.decode() for line in lines_of(path)]
    with open_maybe_gzip(path) as handle:
        records = list(read_fastq(handle))
    assert len(records) == 125
    assert records[0].name == "HWI-ST1410:82:C2VAGACXX:7:1101:1531:1859 1:N:0:AGTCAA"
    assert [tuple(record) for record in records] == [
        (lines[i][1:], lines[i + 1], lines[i + 3]) for i in range(0, len(lines), 4)
    ]


def test_small_blocks_give_the_same_records():
    path = RPRSV / "paired_1.fq.gz"
    with open_maybe_gzip(path) as handle:
        expected = list(read_fastq(handle))
    with open_maybe_gzip(path) as handle:
        records = [record for block in read_fastq_blocks(handle, block_bytes=1000) for record in block.records()]
    assert records == expected


def test_gzip_is_detected_by_magic_bytes_not_extension(tmp_path):
    gzipped_without_extension = tmp_path / "reads.fq"
    shutil.copy(PAIRED_50 / "reads_1.fq.gz", gzipped_without_extension)
    plain_with_gz_extension = tmp_path / "plain.fq.gz"
    shutil.copy(DATA / "quality" / "variable.fastq", plain_with_gz_extension)
    assert count_records(gzipped_without_extension) == 25000
    assert count_records(plain_with_gz_extension) == 300


def test_crlf_and_missing_final_newline_are_read(tmp_path):
    path = tmp_path / "windows.fq"
    path.write_bytes(b"@r1\r\nACGT\r\n+\r\nIIII\r\n@r2\r\nAC\r\n+\r\nII")
    with open(path, "rb") as handle:
        assert [tuple(r) for r in read_fastq(handle)] == [
            ("r1", "ACGT", "IIII"),
            ("r2", "AC", "II"),
        ]


# Bad input: each error names the problem and where it is.


def write(tmp_path: Path, text: bytes, name: str = "reads.fq") -> Path:
    path = tmp_path / name
    path.write_bytes(text)
    return path


def test_truncated_gzip_names_the_first_missing_record(tmp_path):
    source = (PAIRED_50 / "reads_1.fq.gz").read_bytes()
    truncated = write(tmp_path, source[: len(source) // 2], "reads_1.fq.gz")
    # Independently: what a decompressor can still recover from the cut file.
    recovered = zlib.decompressobj(wbits=31).decompress(source[: len(source) // 2])
    whole_records = recovered.count(b"\n") // 4
    assert 0 < whole_records < 25000

    with pytest.raises(ValueError) as error:
        count_records(truncated)
    message = str(error.value)
    assert "reads_1.fq.gz" in message
    assert "gzip data is truncated or corrupt" in message
    assert f"at record {whole_records + 1} (line {4 * whole_records + 1})" in message


@pytest.mark.parametrize("where", [0.5, 0.999])
def test_corrupt_gzip_is_a_value_error_naming_a_record(tmp_path, where):
    # Damage either inflates to garbage (broken records) or fails the CRC at the end.
    source = bytearray((RPRSV / "paired_1.fq.gz").read_bytes())
    start = int(len(source) * where)
    source[start : start + 8] = bytes(8)
    corrupt = write(tmp_path, bytes(source), "paired_1.fq.gz")
    with pytest.raises(ValueError, match=r"paired_1\.fq\.gz: .*record \d+ \(line \d+\).*corrupt"):
        count_records(corrupt)


def test_fasta_given_as_reads_is_named(tmp_path):
    path = write(tmp_path, (DATA / "subtraction" / "host.fa").read_bytes(), "host.fq")
    with pytest.raises(ValueError, match=r"host\.fq: line 1 starts with '>': this looks like FASTA, not FASTQ"):
        count_records(path)


def test_gzipped_fasta_given_as_reads_is_named(tmp_path):
    path = write(tmp_path, gzip.compress((DATA / "subtraction" / "host.fa").read_bytes()))
    with pytest.raises(ValueError, match="looks like FASTA, not FASTQ"):
        count_records(path)


def test_sequence_and_quality_of_different_lengths(tmp_path):
    text = b"@r1\nACGT\n+\nIIII\n@r2\nACGT\n+\nIIII\n@r3\nACGTA\n+\nIIII\n"
    with pytest.raises(ValueError) as error:
        count_records(write(tmp_path, text))
    assert "record 3 (line 10): sequence has 5 letters but quality has 4 characters" in str(error.value)


def test_missing_plus_line(tmp_path):
    text = b"@r1\nACGT\n+\nIIII\n@r2\nACGT\nACGT\nIIII\n"
    with pytest.raises(ValueError, match=r"record 2 \(line 7\): third line should start with '\+'"):
        count_records(write(tmp_path, text))


def test_header_without_at_sign(tmp_path):
    text = b"@r1\nACGT\n+\nIIII\n\n@r2\nACGT\n+\nIIII\n"
    with pytest.raises(ValueError, match=r"record 2 \(line 5\): header should start with '@' but is ''"):
        count_records(write(tmp_path, text))


def test_quality_characters_outside_the_printable_range(tmp_path):
    text = b"@r1\nACGT\n+\nIIII\n@r2\nACGT\n+\nII I\n"
    with pytest.raises(ValueError, match=r"record 2 \(line 8\): quality character ' ' \(code 32\)"):
        count_records(write(tmp_path, text))


def test_file_ending_inside_a_record(tmp_path):
    lines = lines_of(SAMPLES / "glrav1-grapevine-125reads.fq.gz")
    path = write(tmp_path, b"\n".join(lines[:-2]) + b"\n")
    with pytest.raises(ValueError, match=r"file ends inside record 125 \(line 497\): it has 2 of 4 lines"):
        count_records(path)


@pytest.mark.parametrize("content", [b"", b"\n\n", gzip.compress(b"")], ids=["empty", "blank", "empty-gzip"])
def test_empty_file(tmp_path, content):
    with pytest.raises(ValueError, match=r"reads\.fq: file is empty: no FASTQ records found"):
        count_records(write(tmp_path, content))


def test_pair_counts_real_mates():
    assert count_and_validate_pair(RPRSV / "paired_1.fq.gz", RPRSV / "paired_2.fq.gz") == 10000
    assert count_and_validate_pair(PAIRED_50 / "reads_1.fq.gz", PAIRED_50 / "reads_2.fq.gz") == 25000


def test_mates_with_different_counts_name_the_short_one(tmp_path):
    lines = lines_of(RPRSV / "paired_2.fq.gz")
    short = write(tmp_path, gzip.compress(b"\n".join(lines[: 4 * 9990]) + b"\n"), "paired_2.fq.gz")
    with pytest.raises(ValueError) as error:
        count_and_validate_pair(RPRSV / "paired_1.fq.gz", short)
    message = str(error.value)
    assert f"{short} ran out first, at record 9991" in message
    assert "it has 9990 records" in message and "has 10000" in message


# gzip_copy


def test_gzip_copy_compresses_plain_reads(tmp_path):
    source = DATA / "quality" / "variable.fastq"
    target = gzip_copy(source, tmp_path / "reads_1.fq.gz")
    assert gzip.decompress(target.read_bytes()) == source.read_bytes()
    assert source.exists()
    assert not list(tmp_path.glob("*.partial"))


def test_gzip_copy_copies_or_moves_gzipped_reads(tmp_path):
    upload = tmp_path / "upload"
    shutil.copy(PAIRED_50 / "reads_1.fq.gz", upload)

    copied = gzip_copy(upload, tmp_path / "copy.fq.gz")
    assert copied.read_bytes() == upload.read_bytes()

    moved = gzip_copy(upload, tmp_path / "reads_1.fq.gz", move=True)
    assert not upload.exists()
    assert moved.read_bytes() == (PAIRED_50 / "reads_1.fq.gz").read_bytes()


def test_gzip_copy_refuses_a_truncated_gzip(tmp_path):
    source = (PAIRED_50 / "reads_1.fq.gz").read_bytes()
    upload = write(tmp_path, source[:-100], "upload")
    with pytest.raises(ValueError, match="gzip data is truncated or corrupt"):
        gzip_copy(upload, tmp_path / "reads_1.fq.gz", move=True)
    assert upload.exists()
    assert not (tmp_path / "reads_1.fq.gz").exists()


# mates


@pytest.mark.parametrize("convention", list(CONVENTIONS))
def test_every_naming_convention_gives_each_mate_its_own_name(convention, tmp_path):
    pair = write_pair((PAIRED_50 / "reads_1.fq.gz", PAIRED_50 / "reads_2.fq.gz"), tmp_path, convention, 3000)
    assert write_distinct_mates(pair, tmp_path / "mates.fq") == [3000, 3000]
    with open(tmp_path / "mates.fq", "rb") as handle:
        names = [record.name for record in read_fastq(handle)]
    assert len(names) == len(set(names)) == 6000
    assert all(name.endswith("/1") for name in names[:3000]) and all(name.endswith("/2") for name in names[3000:])
    check_mates_share_names(*pair, labels=("a", "b"))


def test_the_mapped_names_are_the_same_whatever_the_convention(tmp_path):
    mates = (RPRSV / "paired_1.fq.gz", RPRSV / "paired_2.fq.gz")
    written = {}
    for convention in ("casava", "slash", "semicolon", "sra"):
        folder = tmp_path / convention
        folder.mkdir()
        write_distinct_mates(write_pair(mates, folder, convention, 500), folder / "mates.fq")
        written[convention] = (folder / "mates.fq").read_bytes()
    assert len(set(written.values())) == 1
    # The real files (x;1 / x;2) give those very bytes, sequences and qualities untouched.
    write_distinct_mates(list(mates), tmp_path / "real.fq")
    with open(tmp_path / "real.fq", "rb") as handle:
        real = [next(handle) for _ in range(4 * 500)]
    assert b"".join(real) == written["sra"][: len(b"".join(real))]
    originals = lines_of(mates[0])[: 4 * 500]
    assert [line.rstrip(b"\n") for line in real][1::2] == originals[1::2]


def test_crlf_mates_are_renamed_with_unix_line_ends(tmp_path):
    path = write(tmp_path, b"@a 1:N:0:G\r\nACGT\r\n+a\r\nIIII\r\n@b\r\nGG\r\n+\r\nII", "r1.fq")
    write_distinct_mates([path], tmp_path / "out.fq")
    assert (tmp_path / "out.fq").read_bytes() == b"@a/1\nACGT\n+\nIIII\n@b/1\nGG\n+\nII\n"


def test_two_lanes_uploaded_as_mates_are_named(tmp_path):
    lane_1 = PAIRED_50 / "reads_1.fq.gz"
    lane_2 = write_pair((RPRSV / "paired_2.fq.gz", RPRSV / "paired_2.fq.gz"), tmp_path, "casava", 50)[1]
    with pytest.raises(ValueError) as error:
        check_mates_share_names(lane_1, lane_2, labels=("lane1.fq.gz", "lane2.fq.gz"))
    message = str(error.value)
    assert "lane1.fq.gz and lane2.fq.gz are not mates of one pair" in message
    assert "'GWNJ-0965:628:GW2007103249th:7:1101:3102:1309' in lane1.fq.gz" in message
    assert "'NS500598:7:H37Y5BGXX:1:11101:16849:1079' in lane2.fq.gz" in message
