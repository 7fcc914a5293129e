"""GenBank and FASTA records become OTUs, isolates and segments; bad records are named."""

import doctest
import gzip
import io
from pathlib import Path

import pytest

from ringspot.bio import records as records_module
from ringspot.bio.records import (
    RecordError,
    apply_mapping,
    read_mapping,
    read_records,
    reference_from_records,
)
from ringspot.bio.reference import validate_reference

GENBANK = Path(__file__).resolve().parents[3] / "shared" / "data" / "genbank"


def records_of(name: str):
    with open(GENBANK / name, "rb") as handle:
        return read_records(handle, name)


def otus_of(records) -> list[dict]:
    return validate_reference(reference_from_records(records))["otus"]


def test_doctests_pass():
    assert doctest.testmod(records_module).failed == 0


def test_genbank_and_fasta_of_the_same_segments_give_the_same_otu():
    from_genbank = otus_of(records_of("orungo_10segments.gb"))
    from_fasta = otus_of(records_of("orungo_10segments.fasta"))
    assert [otu["name"] for otu in from_genbank] == [otu["name"] for otu in from_fasta] == ["Orungo virus"]
    for otus in (from_genbank, from_fasta):
        (isolate,) = otus[0]["isolates"]
        assert (isolate["source_type"], isolate["source_name"]) == ("isolate", "UGMP 359")
        assert [segment["name"] for segment in otus[0]["schema"]] == [str(n) for n in range(1, 11)]
    sequences = [
        {s["accession"]: s["sequence"].upper() for s in o[0]["isolates"][0]["sequences"]}
        for o in (from_genbank, from_fasta)
    ]
    assert sequences[0] == sequences[1]
    assert len(sequences[0]) == 10


def test_genbank_keeps_host_taxid_and_definition():
    (otu,) = otus_of(records_of("orungo_10segments.gb"))
    sequence = otu["isolates"][0]["sequences"][0]
    assert otu["taxid"] == 40058
    assert sequence["host"] == "Homo sapiens"
    assert sequence["accession"] == "JQ610675.1"
    assert sequence["definition"] == "Orungo virus isolate UGMP 359 segment 1, complete sequence"


def test_isolates_of_one_organism_share_an_otu_with_one_default():
    (otu,) = otus_of(records_of("plant_BRRSV_5records.gb"))
    assert otu["name"] == "Blueberry red ringspot virus"
    assert len(otu["isolates"]) == 5
    assert [isolate["default"] for isolate in otu["isolates"]].count(True) == 1


def test_a_multi_virus_fasta_gives_one_otu_per_virus():
    otus = otus_of(records_of("mixed_4viruses.fasta"))
    names = {otu["name"]: otu["isolates"][0] for otu in otus}
    assert set(names) == {
        "Hepatitis C virus subtype 1a",
        "Tomato mosaic virus",
        "Human poliovirus 2",
        "Coxsackievirus A8",
    }
    assert (names["Human poliovirus 2"]["source_type"], names["Human poliovirus 2"]["source_name"]) == (
        "strain",
        "Sabin 2",
    )


def test_segments_named_in_fasta_headers_become_the_schema():
    (otu,) = otus_of(records_of("plant_PiVB_8segments.fasta"))
    assert otu["name"] == "Pistacia emaravirus"
    assert [s["name"] for s in otu["schema"]] == ["RNA1", "RNA2", "RNA3", "RNA4", "RNA5a", "RNA5b", "RNA6", "RNA7"]


def test_gzip_genbank_is_read_by_content():
    (otu,) = otus_of(records_of("sarscov2_NC_045512.2.gbk.gz"))
    assert otu["taxid"] == 2697049
    assert len(otu["isolates"][0]["sequences"][0]["sequence"]) == 29903


def test_duplicate_accession_is_named():
    text = (GENBANK / "plant_SCYLV_KF680098.1.gb").read_bytes()
    with pytest.raises(RecordError, match="KF680098.1 appears twice"):
        read_records(io.BytesIO(text + text))


def test_record_without_origin_is_named():
    text = (GENBANK / "plant_SCYLV_KF680098.1.gb").read_text()
    no_sequence = text[: text.index("ORIGIN")] + "//\n"
    with pytest.raises(RecordError, match="KF680098.1 has no sequence"):
        read_records(io.BytesIO(no_sequence.encode()))


def test_non_iupac_letters_and_empty_sequences_are_named():
    fasta = (GENBANK / "plant_PiVB_8segments.fasta").read_text().splitlines()
    fasta[1] = fasta[1][:10] + "J" + fasta[1][11:]
    with pytest.raises(RecordError, match="MH727572.1: 'J' at position 11"):
        read_records(io.BytesIO("\n".join(fasta).encode()))
    with pytest.raises(RecordError, match="X1.1 has an empty sequence"):
        read_records(io.BytesIO(b">X1.1 Some virus, complete genome\n>X2.1 Some virus\nACGT\n"))


def test_records_that_cannot_be_grouped_are_named_and_a_mapping_settles_them():
    fasta = b">AB000001.1 , complete genome\nACGTACGT\n>AB000002.1 Tomato mosaic virus\nACGTTT\n"
    records = read_records(io.BytesIO(fasta))
    with pytest.raises(RecordError, match="AB000001.1 names no organism"):
        reference_from_records(records)
    mapping = read_mapping(io.StringIO("accession,otu,isolate,segment\nAB000001,Tomato mosaic virus,X,\n"))
    (otu,) = otus_of(apply_mapping(records, mapping))
    assert otu["name"] == "Tomato mosaic virus"
    assert sorted(i["source_name"] for i in otu["isolates"]) == ["", "X"]


def test_two_records_for_one_segment_of_one_isolate_are_refused():
    fasta = (GENBANK / "orungo_10segments.fasta").read_text().replace("segment 2,", "segment 1,")
    with pytest.raises(RecordError, match='JQ610675.1 and JQ610676.1 are both segment "1"'):
        reference_from_records(read_records(io.BytesIO(fasta.encode())))


def test_other_content_says_what_is_accepted():
    with pytest.raises(RecordError, match="GenBank flat file or a FASTA"):
        read_records(io.BytesIO(gzip.compress(b"name,reads\nx,y\n")))
