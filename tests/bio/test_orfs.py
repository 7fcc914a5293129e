"""NuVs ORFs: translation, six-frame stop-to-stop search checked against an independent
Biopython implementation, the contig list, the ORF FASTA and ``ringspot orfs``."""

from __future__ import annotations

import doctest
import gzip
import io
import itertools
import json
import re
import time
from pathlib import Path

import pytest
from Bio.Data import CodonTable
from Bio.Seq import Seq
from Bio.SeqIO.FastaIO import SimpleFastaParser
from Bio.SeqRecord import SeqRecord
from click.testing import CliRunner

from ringspot.bio import orfs
from ringspot.bio.orfs import (
    find_orfs,
    process_contigs,
    read_fasta,
    reverse_complement,
    translate,
    write_orfs_fasta,
)
from ringspot.cli.orfs import orfs as orfs_command

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
NUVS = DATA / "nuvs"


def read_records(name: str) -> list[tuple[str, str]]:
    with open(NUVS / name) as handle:
        return list(SimpleFastaParser(handle))


def reference_orfs(seq: str) -> set[tuple]:
    """ORFs by a straightforward second implementation: Biopython's translation and runs of
    100+ non-stop residues found by regex, positions derived on each strand then mapped back."""
    length = len(seq)
    found = set()
    for strand, nuc in ((1, seq), (-1, str(Seq(seq).reverse_complement()))):
        for frame in range(3):
            usable = nuc[frame:][: (length - frame) // 3 * 3]
            protein = str(Seq(usable).translate())
            for run in re.finditer(r"[^*]{100,}", protein):
                closed_by_stop = run.end() < len(protein)
                first = frame + 3 * run.start()
                # A closed ORF includes its stop codon; an open one runs to the contig's end.
                last = frame + 3 * run.end() + 3 if closed_by_stop else length
                start, end = (first, last) if strand == 1 else (length - last, length - first)
                found.add((strand, frame, start, end, run.group()))
    return found


def as_tuples(found: list[dict]) -> set[tuple]:
    return {(o["strand"], o["frame"], o["pos"][0], o["pos"][1], o["pro"]) for o in found}


# translate / reverse_complement


def test_translate_follows_the_standard_code_for_every_codon():
    table = CodonTable.unambiguous_dna_by_id[1]
    for codon in map("".join, itertools.product("ACGT", repeat=3)):
        expected = "*" if codon in table.stop_codons else table.forward_table[codon]
        assert translate(codon) == expected, codon


@pytest.mark.parametrize(
    "codon, residue",
    [("CTN", "L"), ("GTN", "V"), ("TCN", "S"), ("CCN", "P"), ("ACN", "T"), ("GCN", "A"), ("CGN", "R"), ("GGN", "G")],
)
def test_translate_reads_four_fold_codons_with_n_in_third_position(codon, residue):
    assert translate(codon) == residue


@pytest.mark.parametrize("codon", ["TAN", "ATN", "NCT", "GNA", "NNN", "A-G", "RCT"])
def test_translate_gives_x_for_any_other_codon(codon):
    assert translate(codon) == "X"


def test_translate_ignores_a_trailing_partial_codon_and_reads_lowercase():
    assert translate("atggctTAAgc") == "MA*"


def test_reverse_complement_knows_acgtn_in_both_cases():
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("acgtn") == "nacgt"


@pytest.mark.parametrize("letter", ["R", "Y", "U", "-", "*"])
def test_reverse_complement_rejects_other_letters_naming_them(letter):
    with pytest.raises(ValueError, match=re.escape(repr(letter))):
        reverse_complement("ACG" + letter + "T")


# find_orfs


def test_has_orfs_fa_has_16_orfs():
    ((_, seq),) = read_records("has_orfs.fa")
    assert len(find_orfs(seq)) == 16


@pytest.mark.parametrize("name", ["has_orfs.fa", "scaffolds_paired.fa", "scaffolds_single.fa"])
def test_orfs_match_an_independent_implementation(name):
    for title, seq in read_records(name):
        assert as_tuples(find_orfs(seq)) == reference_orfs(seq), title


@pytest.mark.parametrize("name", ["scaffolds_paired.fa", "scaffolds_single.fa"])
def test_orf_counts_match_an_independent_implementation(name):
    records = read_records(name)
    ours = sum(len(find_orfs(seq)) for _, seq in records)
    theirs = sum(len(reference_orfs(seq)) for _, seq in records if len(seq) > 300)
    assert ours == theirs > 0


@pytest.mark.parametrize("name", ["has_orfs.fa", "scaffolds_paired.fa", "scaffolds_single.fa"])
def test_every_orf_position_slices_out_its_protein(name):
    checked = 0
    for _, seq in read_records(name):
        for orf in find_orfs(seq):
            start, end = orf["pos"]
            assert 0 <= start < end <= len(seq)
            coding = Seq(seq[start:end])
            if orf["strand"] == -1:
                coding = coding.reverse_complement()
            assert orf["nuc"] == str(coding)
            protein = str(coding[: len(coding) // 3 * 3].translate())
            assert protein in (orf["pro"], orf["pro"] + "*")
            assert len(orf["pro"]) >= 100
            checked += 1
    assert checked > 0


def test_orfs_need_a_contig_longer_than_300_bp():
    open_reading = "GCT" * 100  # 300 bp: frame 0 holds 100 residues on both strands
    assert find_orfs(open_reading) == []
    assert {(o["strand"], o["frame"]) for o in find_orfs(open_reading + "G")} >= {(1, 0), (-1, 0)}


def test_orfs_of_99_residues_are_not_reported():
    seq = "TAA" + "GCT" * 99 + "TAA" + "TAG" * 60  # + strand frame 0 has a 99-residue stretch only
    assert [o for o in find_orfs(seq) if o["strand"] == 1 and o["frame"] == 0] == []


def test_orf_needs_no_start_codon_and_pos_includes_the_stop():
    seq = "CC" + "TAA" + "GCT" * 100 + "TGA" + "CCC" * 20
    orf = next(o for o in find_orfs(seq) if o["strand"] == 1 and o["frame"] == 2 and o["pro"].startswith("A"))
    assert orf["pro"] == "A" * 100
    assert orf["pos"] == [5, 308]
    assert orf["nuc"].endswith("TGA")


def test_open_orf_on_the_minus_strand_is_clipped_to_the_contig():
    # Virtool would store start = -2 here (len - frame - 3*aa_end - 3 with no closing stop).
    seq = "A" + "AGC" * 110
    minus = [o for o in find_orfs(seq) if o["strand"] == -1 and o["frame"] == 0]
    assert [o["pos"] for o in minus] == [[0, len(seq)]]


def test_find_orfs_is_fast_on_a_real_assembly():
    records = read_records("scaffolds_paired.fa")
    best = min(_time(lambda: [find_orfs(seq) for _, seq in records]) for _ in range(3))
    assert best < 0.5


def _time(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


# process_contigs / FASTA


def test_process_contigs_keeps_contigs_of_300_bp_or_more_that_have_orfs():
    records = read_records("scaffolds_paired.fa")
    contigs = process_contigs(records)
    expected = [seq for _, seq in records if len(seq) >= 300 and find_orfs(seq)]
    assert [c["sequence"] for c in contigs] == expected
    assert [c["index"] for c in contigs] == list(range(len(contigs)))


def test_process_contigs_numbers_orfs_and_leaves_hits_empty():
    ((_, seq),) = read_records("has_orfs.fa")
    (contig,) = process_contigs([seq])
    assert [o["index"] for o in contig["orfs"]] == list(range(16))
    for orf, found in zip(contig["orfs"], find_orfs(seq), strict=False):
        assert orf == {
            "index": orf["index"],
            "frame": found["frame"],
            "strand": found["strand"],
            "pos": found["pos"],
            "pro": found["pro"],
            "hits": [],
        }


def test_process_contigs_accepts_strings_pairs_and_seqrecords():
    ((title, seq),) = read_records("has_orfs.fa")
    as_pairs = process_contigs([(title, seq)])
    assert process_contigs([seq]) == as_pairs
    assert process_contigs([SeqRecord(Seq(seq), id=title)]) == as_pairs


def test_process_contigs_names_the_contig_with_a_bad_letter():
    with pytest.raises(ValueError, match=r"contig 2 \(bad\): cannot complement 'R'"):
        process_contigs([("ok", "ACGT"), ("bad", "ACGR" * 100)])


def test_write_orfs_fasta_names_records_by_contig_and_orf():
    contigs = process_contigs(read_records("scaffolds_single.fa"))
    handle = io.StringIO()
    written = write_orfs_fasta(contigs, handle)
    handle.seek(0)
    records = list(SimpleFastaParser(handle))
    assert written == len(records) == sum(len(c["orfs"]) for c in contigs)
    expected = [(f"sequence_{c['index']}.{o['index']}", o["pro"]) for c in contigs for o in c["orfs"]]
    assert records == expected


def test_read_fasta_reads_multiline_records():
    with open(NUVS / "scaffolds_paired.fa") as handle:
        assert list(read_fasta(handle)) == read_records("scaffolds_paired.fa")


@pytest.mark.parametrize(
    "text, message",
    [("ACGT\n", r"line 1: expected a '>' header"), (">a\nAC GT\n", r"line 2: ' ' cannot appear")],
)
def test_read_fasta_rejects_what_is_not_fasta(text, message):
    with pytest.raises(ValueError, match=message):
        list(read_fasta(io.StringIO(text)))


def test_doctests_pass():
    assert doctest.testmod(orfs).failed == 0


# ringspot orfs


def test_cli_writes_the_contig_list_without_hits(tmp_path):
    out = tmp_path / "orfs.json"
    result = CliRunner().invoke(orfs_command, [str(NUVS / "scaffolds_paired.fa"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    expected = process_contigs(read_records("scaffolds_paired.fa"))
    for contig in expected:
        for orf in contig["orfs"]:
            del orf["hits"]
    assert written == expected


def test_cli_reads_gzipped_fasta_and_writes_to_stdout(tmp_path):
    packed = tmp_path / "assembly.fa.gz"
    packed.write_bytes(gzip.compress((NUVS / "has_orfs.fa").read_bytes()))
    result = CliRunner().invoke(orfs_command, [str(packed)])
    assert result.exit_code == 0
    (contig,) = json.loads(result.stdout)
    assert len(contig["orfs"]) == 16


def test_cli_reports_a_missing_file_without_traceback(tmp_path):
    result = CliRunner().invoke(orfs_command, [str(tmp_path / "nope.fa")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("content", [b"hello\nworld\n", b"", b"\x00\xff\xfe binary"])
def test_cli_reports_a_file_that_is_not_fasta(tmp_path, content):
    path = tmp_path / "contigs.fa"
    path.write_bytes(content)
    result = CliRunner().invoke(orfs_command, [str(path), "--out", str(tmp_path / "out.json")])
    assert result.exit_code == 1
    assert "is not a FASTA file of contigs" in result.output
    assert isinstance(result.exception, SystemExit)
    assert not (tmp_path / "out.json").exists()
