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
    count_and_validate_pair,
    count_records,
    gzip_copy,
    open_maybe_gzip,
    read_fastq,
    read_fastq_blocks,
)

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
