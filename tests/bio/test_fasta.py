"""FASTA reading and the subtraction's nucleotide composition."""

from __future__ import annotations

import doctest
import gzip
import io
from pathlib import Path

import pytest

from ringspot.bio import fasta
from ringspot.bio.fasta import (
    Header,
    nucleotide_composition,
    read_fasta,
    read_fasta_pieces,
)

HOST = Path(__file__).resolve().parents[3] / "shared" / "data" / "subtraction" / "host.fa"
SCAFFOLDS = HOST.parents[1] / "nuvs" / "scaffolds_paired.fa"


def composition_as_virtool_computed_it(path: Path) -> tuple[int, dict[str, float]]:
    """create_subtraction's compute_gc_and_count, line by line."""
    count = 0
    nucleotides = {"a": 0, "t": 0, "g": 0, "c": 0, "n": 0}
    with open(path) as handle:
        for line in handle:
            if line[0] == ">":
                count += 1
                continue
            for letter in nucleotides:
                nucleotides[letter] += line.lower().count(letter)
    total = sum(nucleotides.values())
    return count, {letter: round(n / total, 3) for letter, n in nucleotides.items()}


def test_doctests_pass():
    assert doctest.testmod(fasta).failed == 0


def test_host_composition():
    count, composition = nucleotide_composition(HOST)
    assert count == 6
    assert (count, composition) == composition_as_virtool_computed_it(HOST)
    assert composition == {"a": 0.256, "t": 0.328, "g": 0.179, "c": 0.237, "n": 0.0}
    assert list(composition) == ["a", "t", "g", "c", "n"]


def test_gzipped_host_gives_the_same_composition(tmp_path):
    path = tmp_path / "host.fa.gz"
    path.write_bytes(gzip.compress(HOST.read_bytes()))
    assert nucleotide_composition(path) == nucleotide_composition(HOST)


def test_composition_counts_lower_case_and_skips_other_codes(tmp_path):
    path = tmp_path / "mixed.fa"
    path.write_bytes(b">one\nacgtNNRY\n>two\nAA\n")
    assert nucleotide_composition(path) == (
        2,
        {"a": round(3 / 8, 3), "t": 0.125, "g": 0.125, "c": 0.125, "n": 0.25},
    )


def test_scaffolds_composition_matches_the_line_by_line_count():
    assert nucleotide_composition(SCAFFOLDS) == composition_as_virtool_computed_it(SCAFFOLDS)


def test_reads_host_records():
    with open(HOST, "rb") as handle:
        records = list(read_fasta(handle))
    lines = HOST.read_text().splitlines()
    assert [record.id for record in records] == ["host_1", "host_2", "host_3", "host_4", "host_6", "host_7"]
    assert [record.sequence for record in records] == lines[1::2]


@pytest.mark.parametrize("block_bytes", [1, 7, 100, 1 << 20])
def test_block_boundaries_do_not_change_records(block_bytes):
    with open(SCAFFOLDS, "rb") as handle:
        expected = list(read_fasta(handle))
    with open(SCAFFOLDS, "rb") as handle:
        pieces = list(read_fasta_pieces(handle, block_bytes=block_bytes))
    headers = [piece for piece in pieces if isinstance(piece, Header)]
    assert [header.text for header in headers] == [record.description for record in expected]
    assert headers[1].line == SCAFFOLDS.read_text().splitlines().index(">" + headers[1].text) + 1


def test_a_sequence_on_one_long_line_streams_in_pieces():
    text = b">chr1\n" + b"ACGT" * 5000 + b"\n>chr2\nGG\n"
    pieces = list(read_fasta_pieces(io.BytesIO(text), block_bytes=1000))
    assert len(pieces) > 10  # not one 20 kb string
    records = list(read_fasta(io.BytesIO(text)))
    assert [len(record.sequence) for record in records] == [20000, 2]


# Bad input: each error names the line and the likely cause.


def write(tmp_path: Path, text: bytes, name: str = "host.fa") -> Path:
    path = tmp_path / name
    path.write_bytes(text)
    return path


@pytest.mark.parametrize("content", [b"", b"\n\n"], ids=["empty", "blank"])
def test_empty_file(tmp_path, content):
    with pytest.raises(ValueError, match=r"host\.fa: file is empty: no FASTA records found"):
        nucleotide_composition(write(tmp_path, content))


def test_fastq_given_as_fasta(tmp_path):
    path = write(tmp_path, b"@r1\nACGT\n+\nIIII\n")
    with pytest.raises(ValueError, match=r"line 1 starts with '@': this looks like FASTQ, not FASTA"):
        nucleotide_composition(path)


def test_text_before_the_first_header(tmp_path):
    path = write(tmp_path, b"\nACGT\n>s1\nACGT\n")
    with pytest.raises(ValueError, match=r"line 2: expected a '>' header line but found 'ACGT'"):
        nucleotide_composition(path)


def test_header_without_a_name(tmp_path):
    path = write(tmp_path, b">s1\nACGT\n>  \nACGT\n")
    with pytest.raises(ValueError, match=r"host\.fa: line 3: header has no sequence name"):
        nucleotide_composition(path)


def test_letter_that_is_not_a_nucleotide(tmp_path):
    path = write(tmp_path, b">s1\nACGT\nACGT\n>s2\nAC\nACJT\n")
    with pytest.raises(ValueError, match=r"line 6: 'J' is not a nucleotide letter"):
        nucleotide_composition(path)


def test_protein_fasta_is_refused(tmp_path):
    path = write(tmp_path, b">p1\nMKVLAAGIVE\n")
    with (
        pytest.raises(ValueError, match=r"line 2: 'L' is not a nucleotide letter.*nucleotide FASTA"),
        open(path, "rb") as handle,
    ):
        list(read_fasta(handle, str(path)))
