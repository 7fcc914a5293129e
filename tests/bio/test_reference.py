"""reference.json.gz: real files load and round-trip; bad files fail with the right id."""

import copy
import doctest
import gzip
import io
import json
import time
from pathlib import Path

import pytest
from Bio import SeqIO

from ringspot.bio import reference
from ringspot.bio.reference import (
    ReferenceFileError,
    blocking_issues,
    default_isolate,
    export_reference,
    iter_all_isolate_fasta,
    iter_default_isolate_fasta,
    load_reference_file,
    validate_reference,
    verify_otu,
    write_fasta,
    write_reference_file,
)

DATA = Path("/work/shared/data/reference")
SMALL_REFERENCE = DATA / "example-20otus.reference.json.gz"
PLANT_REFERENCE = DATA / "ref-plant-viruses-v1.5.0.reference.json.gz"
INDEX_OTUS = DATA / "plant-viruses-index.otus.json.gz"


def counts(data: dict) -> tuple[int, int, int]:
    otus = data["otus"]
    isolates = [isolate for otu in otus for isolate in otu["isolates"]]
    sequences = [sequence for isolate in isolates for sequence in isolate["sequences"]]
    return len(otus), len(isolates), len(sequences)


def gzipped(data) -> io.BytesIO:
    text = data if isinstance(data, (str, bytes)) else json.dumps(data)
    return io.BytesIO(gzip.compress(text.encode() if isinstance(text, str) else text))


def sequence(_id="s1", accession="NC_1", segment="RNA 1", seq="ACGTACGTAC", **extra):
    return {
        "_id": _id,
        "accession": accession,
        "definition": f"{accession} complete genome",
        "host": "Vitis vinifera",
        "segment": segment,
        "sequence": seq,
        **extra,
    }


def isolate(id="abc", default=True, sequences=None):
    return {
        "id": id,
        "source_type": "isolate",
        "source_name": id.upper(),
        "default": default,
        "sequences": sequences if sequences is not None else [sequence()],
    }


def otu(_id="otu1", name="Foo virus", abbreviation="FV", isolates=None, schema=None):
    return {
        "_id": _id,
        "name": name,
        "abbreviation": abbreviation,
        "schema": schema if schema is not None else [{"name": "RNA 1", "molecule": "ssRNA+", "required": True}],
        "taxid": None,
        "isolates": isolates if isolates is not None else [isolate()],
    }


def reference_data(*otus):
    return {
        "created_at": "2022-03-28T19:15:18.479570+00:00",
        "data_type": "genome",
        "name": None,
        "organism": "virus",
        "otus": list(otus) or [otu()],
    }


def raises(data, **kwargs) -> ReferenceFileError:
    with pytest.raises(ReferenceFileError) as info:
        validate_reference(data, **kwargs)
    return info.value


@pytest.fixture(scope="module")
def plant_reference():
    return validate_reference(load_reference_file(PLANT_REFERENCE))


@pytest.fixture(scope="module")
def index_otus():
    with gzip.open(INDEX_OTUS) as handle:
        return json.load(handle)


def test_doctests_pass():
    assert doctest.testmod(reference).failed == 0


# Real files


def test_small_reference_has_20_otus():
    data = validate_reference(load_reference_file(SMALL_REFERENCE))
    assert counts(data) == (20, 22, 26)
    assert data["data_type"] == "genome"
    assert data["organism"] == "virus"


def test_plant_reference_loads_and_validates_in_about_a_second():
    started = time.perf_counter()
    raw = load_reference_file(PLANT_REFERENCE)
    loaded = time.perf_counter()
    data = validate_reference(raw)
    validated = time.perf_counter()
    print(
        f"\nplant-virus reference: load {loaded - started:.3f} s, "
        f"validate {validated - loaded:.3f} s, total {validated - started:.3f} s"
    )
    assert counts(data) == (2084, 3648, 4783)
    assert data["name"] == "v1.5.0"
    # Generous bound: the point is "about a second", not a flaky benchmark.
    assert validated - started < 10


def test_load_accepts_a_path_string_and_an_unseekable_stream():
    class Unseekable(io.RawIOBase):
        def __init__(self, payload):
            self._inner = io.BytesIO(payload)

        def readable(self):
            return True

        def readinto(self, buffer):
            chunk = self._inner.read(min(len(buffer), 1000))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    payload = SMALL_REFERENCE.read_bytes()
    from_stream = load_reference_file(io.BufferedReader(Unseekable(payload), buffer_size=7))
    assert from_stream == load_reference_file(str(SMALL_REFERENCE))


def test_validating_twice_changes_nothing(plant_reference):
    assert validate_reference(copy.deepcopy(plant_reference)) == plant_reference


@pytest.mark.parametrize("path", [SMALL_REFERENCE, PLANT_REFERENCE], ids=["small", "plant"])
def test_export_then_reload_gives_identical_content(path, tmp_path):
    original = validate_reference(load_reference_file(path))
    exported = export_reference(
        original["otus"],
        original["data_type"],
        original["organism"],
        name=original["name"],
        created_at=original["created_at"],
    )
    assert exported == original

    target = tmp_path / "reference.json.gz"
    write_reference_file(exported, target, compresslevel=1)  # level 6 costs 2 s on the big file
    assert load_reference_file(target) == exported
    assert validate_reference(load_reference_file(target)) == original


def test_export_keeps_everything_the_source_file_holds():
    # Apart from filling taxid/segment/host defaults, validation drops nothing from a real file.
    with gzip.open(SMALL_REFERENCE) as handle:
        raw = json.load(handle)
    exported = export_reference(validate_reference(copy.deepcopy(raw))["otus"], "genome", "virus")
    for raw_otu, exported_otu in zip(raw["otus"], exported["otus"], strict=False):
        raw_otu.setdefault("taxid", None)
        for raw_isolate in raw_otu["isolates"]:
            for raw_sequence in raw_isolate["sequences"]:
                raw_sequence.setdefault("segment", None)
        assert exported_otu == raw_otu


def test_written_file_is_deterministic_and_has_no_timestamp(tmp_path):
    data = validate_reference(load_reference_file(SMALL_REFERENCE))
    first, second = tmp_path / "a.json.gz", tmp_path / "b.json.gz"
    write_reference_file(data, first)
    shuffled = dict(reversed(list(data.items())))
    write_reference_file(shuffled, second)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes()[4:8] == b"\x00\x00\x00\x00"  # gzip MTIME field
    # No temporary file is left beside the written ones.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.json.gz", "b.json.gz"]


def test_export_of_database_documents_uses_remote_ids_and_drops_database_fields(index_otus):
    exported = export_reference(index_otus, "genome", "virus", name="plant viruses")
    first = exported["otus"][0]
    assert first["_id"] == index_otus[0]["remote"]["id"]
    assert set(first) == {"_id", "name", "abbreviation", "schema", "taxid", "isolates"}
    assert set(first["isolates"][0]["sequences"][0]) == {
        "_id",
        "accession",
        "definition",
        "host",
        "segment",
        "sequence",
    }
    assert counts(validate_reference(exported)) == counts({"otus": index_otus})

    local = export_reference(index_otus, "genome", "virus", prefer_remote_ids=False)
    assert local["otus"][0]["_id"] == index_otus[0]["_id"]


def test_export_formats_datetimes_as_utc_iso():
    import datetime

    exported = export_reference([otu()], "genome", "virus", created_at=datetime.datetime(2024, 1, 2, 3, 4, 5, 600000))
    assert exported["created_at"] == "2024-01-02T03:04:05.600000Z"


# Undecodable files


@pytest.mark.parametrize("payload", [b'{"otus": []}', b"", b"\x1f"], ids=["json", "empty", "one-byte"])
def test_plain_file_is_not_gzipped(payload):
    with pytest.raises(ReferenceFileError) as info:
        load_reference_file(io.BytesIO(payload))
    assert info.value.id == "not_gzipped"
    assert str(info.value) == "Reference file is not gzip-compressed"


def test_truncated_gzip_is_reported_as_corrupt():
    truncated = SMALL_REFERENCE.read_bytes()[:5000]
    with pytest.raises(ReferenceFileError) as info:
        load_reference_file(io.BytesIO(truncated))
    assert info.value.id == "not_gzipped"
    assert "truncated or corrupt" in str(info.value)


def test_gzip_of_non_json_is_invalid_json():
    with pytest.raises(ReferenceFileError) as info:
        load_reference_file(gzipped('{"otus": [\n  {"_id": "a",}\n]}'))
    assert info.value.id == "invalid_json"
    assert str(info.value).startswith("Reference file is not valid JSON:")
    assert "line 2 column" in str(info.value)


def test_gzip_of_binary_garbage_is_invalid_json():
    with pytest.raises(ReferenceFileError) as info:
        load_reference_file(gzipped(b"\xff\xfe\xfa garbage"))
    assert info.value.id == "invalid_json"


def test_json_that_is_not_an_object_is_invalid_schema():
    with pytest.raises(ReferenceFileError) as info:
        load_reference_file(gzipped([otu()]))
    assert info.value.id == "invalid_schema"
    assert "not a list" in str(info.value)


def test_inflating_past_the_limit_is_too_large():
    with pytest.raises(ReferenceFileError) as info:
        load_reference_file(SMALL_REFERENCE, max_size=1000)
    assert info.value.id == "too_large"


# Schema


def test_missing_otus_is_invalid_schema():
    data = reference_data()
    del data["otus"]
    error = raises(data)
    assert error.id == "invalid_schema"
    assert str(error) == 'Reference file: field "otus" is missing'


def test_empty_otus_is_invalid_schema():
    data = reference_data()
    data["otus"] = []
    error = raises(data)
    assert (error.id, str(error)) == (
        "invalid_schema",
        'Reference file: field "otus" must hold at least one OTU',
    )


def test_isolate_without_sequences_is_invalid_schema():
    error = raises(reference_data(otu(isolates=[isolate("abc"), isolate("def", False, [])])))
    assert error.id == "invalid_schema"
    assert str(error) == ('OTU "Foo virus" isolate "def": field "sequences" must hold at least one sequence')


def test_otu_without_isolates_is_invalid_schema():
    error = raises(reference_data(otu(isolates=[])))
    assert (error.id, str(error)) == (
        "invalid_schema",
        'OTU "Foo virus": field "isolates" must hold at least one isolate',
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda d: d["otus"][0].pop("name"),
            'OTU "otu1": field "name" is missing',
        ),
        (
            lambda d: d["otus"][0].update(name="  "),
            'OTU "otu1": field "name" must not be empty',
        ),
        (
            lambda d: d["otus"][0]["isolates"][0].update(default="true"),
            'OTU "Foo virus" isolate "abc": field "default" must be true or false, not a string',
        ),
        (
            lambda d: d["otus"][0]["isolates"][0]["sequences"][0].update(sequence=None),
            'OTU "Foo virus" isolate "abc" sequence "NC_1": field "sequence" must be a string, not null',
        ),
        (
            lambda d: d["otus"][0]["isolates"][0]["sequences"][0].pop("_id"),
            'OTU "Foo virus" isolate "abc" sequence "NC_1": field "_id" is missing',
        ),
        (
            lambda d: d["otus"][0].update(taxid=True),
            'OTU "Foo virus": field "taxid" must be an integer or null, not true or false',
        ),
        (
            lambda d: d.update(data_type="protein"),
            'Reference file: "data_type" must be "genome" or "barcode", not "protein"',
        ),
        (
            lambda d: d["otus"][0]["schema"][0].update(molecule="RNA"),
            'OTU "Foo virus" schema segment "RNA 1": molecule "RNA" is not one of "", "ssDNA", '
            '"dsDNA", "ssRNA", "ssRNA+", "ssRNA-", "dsRNA"',
        ),
        (
            lambda d: d["otus"][0]["schema"].append(dict(d["otus"][0]["schema"][0])),
            'OTU "Foo virus": schema names segment "RNA 1" twice',
        ),
        (
            lambda d: d["otus"].append("Bar virus"),
            "OTU #2 must be an object, not a string",
        ),
    ],
)
def test_schema_problems_name_the_field_and_where(change, message):
    data = reference_data()
    change(data)
    error = raises(data)
    assert (error.id, str(error)) == ("invalid_schema", message)


def test_two_default_isolates_is_invalid_schema():
    isolates = [isolate("abc"), isolate("def", True, [sequence("s2")])]
    error = raises(reference_data(otu(isolates=isolates)))
    assert (error.id, str(error)) == (
        "invalid_schema",
        'OTU "Foo virus": more than one default isolate ("abc", "def")',
    )


def test_defaults_are_filled_and_unknown_fields_dropped():
    data = {
        "otus": [
            {
                "_id": "o1",
                "name": "Foo virus",
                "lower_name": "foo virus",
                "isolates": [
                    {
                        "id": "i1",
                        "source_type": "isolate",
                        "source_name": "A",
                        "default": True,
                        "sequences": [{"_id": "s1", "accession": "A1", "definition": "d", "sequence": "acgu"}],
                    }
                ],
            }
        ]
    }
    clean = validate_reference(data)
    assert clean == {
        "created_at": None,
        "data_type": "genome",
        "name": None,
        "organism": "",
        "otus": [
            {
                "_id": "o1",
                "name": "Foo virus",
                "abbreviation": "",
                "schema": [],
                "taxid": None,
                "isolates": [
                    {
                        "id": "i1",
                        "source_type": "isolate",
                        "source_name": "A",
                        "default": True,
                        "sequences": [
                            {
                                "_id": "s1",
                                "accession": "A1",
                                "definition": "d",
                                "host": "",
                                "segment": None,
                                "sequence": "acgu",
                            }
                        ],
                    }
                ],
            }
        ],
    }


def test_barcode_targets_are_kept():
    data = reference_data(otu(isolates=[isolate(sequences=[sequence(target="CytB")])], schema=[]))
    data.update(data_type="barcode", targets=[{"name": "CytB", "length": 400}])
    clean = validate_reference(data)
    assert clean["targets"] == [{"name": "CytB", "length": 400}]
    assert clean["otus"][0]["isolates"][0]["sequences"][0]["target"] == "CytB"
    exported = export_reference(clean["otus"], "barcode", "virus", targets=clean["targets"])
    assert validate_reference(exported) == dict(clean, created_at=None)


# Duplicates


def test_duplicate_otu_names_are_compared_case_insensitively():
    error = raises(
        reference_data(
            otu("o1", "Foo virus", "FV", [isolate("a", sequences=[sequence("s1")])]),
            otu("o2", "FOO Virus", "FV2", [isolate("b", sequences=[sequence("s2")])]),
        )
    )
    assert error.id == "duplicates"
    assert str(error) == (
        'Duplicate OTU name: "Foo virus" (OTU id "o1") and "FOO Virus" (OTU id "o2"); '
        "names are compared case-insensitively"
    )


def test_duplicate_abbreviations_are_reported_but_empty_ones_are_not():
    empty = reference_data(
        otu("o1", "Foo virus", "", [isolate("a", sequences=[sequence("s1")])]),
        otu("o2", "Bar virus", "", [isolate("b", sequences=[sequence("s2")])]),
    )
    validate_reference(empty)

    error = raises(
        reference_data(
            otu("o1", "Foo virus", "FV", [isolate("a", sequences=[sequence("s1")])]),
            otu("o2", "Bar virus", "FV", [isolate("b", sequences=[sequence("s2")])]),
        )
    )
    assert (error.id, str(error)) == (
        "duplicates",
        'Duplicate OTU abbreviation "FV": OTU "Foo virus" and OTU "Bar virus"',
    )


def test_duplicate_otu_ids_are_reported():
    error = raises(
        reference_data(
            otu("o1", "Foo virus", "FV", [isolate("a", sequences=[sequence("s1")])]),
            otu("o1", "Bar virus", "BV", [isolate("b", sequences=[sequence("s2")])]),
        )
    )
    assert (error.id, str(error)) == (
        "duplicates",
        'Duplicate OTU id "o1": OTU "Foo virus" and OTU "Bar virus"',
    )


def test_duplicate_sequence_ids_across_otus_are_reported():
    error = raises(
        reference_data(
            otu("o1", "Foo virus", "FV", [isolate("a", sequences=[sequence("s1", "NC_1")])]),
            otu("o2", "Bar virus", "BV", [isolate("b", sequences=[sequence("s1", "NC_2")])]),
        )
    )
    assert (error.id, str(error)) == (
        "duplicates",
        'Duplicate sequence id "s1": OTU "Foo virus" isolate "a" sequence "NC_1" and '
        'OTU "Bar virus" isolate "b" sequence "NC_2"',
    )


def test_duplicate_isolate_ids_in_one_otu_are_reported():
    error = raises(
        reference_data(
            otu(
                isolates=[
                    isolate("a", sequences=[sequence("s1")]),
                    isolate("a", False, [sequence("s2")]),
                ]
            )
        )
    )
    assert (error.id, str(error)) == ("duplicates", 'OTU "Foo virus": two isolates have the id "a"')


# Sequences


def test_non_iupac_letter_is_named_with_its_position():
    seq = "ACGTACGTACGTACGTJACGT"  # J is the 17th letter
    error = raises(reference_data(otu(isolates=[isolate("abc", sequences=[sequence(seq=seq)])])))
    assert error.id == "invalid_sequence"
    assert str(error) == (
        'OTU "Foo virus" isolate "abc" sequence "NC_1": letter "J" at position 17 is not an IUPAC nucleotide code'
    )


def test_whitespace_in_a_sequence_is_shown_escaped():
    error = raises(reference_data(otu(isolates=[isolate(sequences=[sequence(seq="ACGT\nACGT")])])))
    assert error.id == "invalid_sequence"
    assert 'character "\\n" at position 5' in str(error)


def test_every_iupac_code_is_accepted_in_either_case():
    codes = "ACGTURYKMSWBDHVN"
    data = reference_data(otu(isolates=[isolate(sequences=[sequence(seq=codes + codes.lower())])]))
    validate_reference(data)


def test_the_first_problem_in_file_order_is_reported():
    data = reference_data(
        otu("o1", "Foo virus", "FV", [isolate("a", sequences=[sequence("s1", seq="ACJT")])]),
        otu("o2", "Foo virus", "BV", [isolate("b", sequences=[sequence("s2")])]),
    )
    assert raises(data).id == "invalid_sequence"
    data["otus"][0]["isolates"][0]["sequences"][0]["sequence"] = "ACGT"
    assert raises(data).id == "duplicates"


# Verification during validation


def test_inconsistent_isolates_fail_verification():
    data = reference_data(
        otu(
            isolates=[
                isolate("a", True, [sequence("s1"), sequence("s2", "NC_2")]),
                isolate("b", False, [sequence("s3", "NC_3")]),
            ],
            schema=[],
        )
    )
    error = raises(data)
    assert error.id == "verification"
    assert str(error) == (
        'OTU "Foo virus": isolates have different numbers of sequences (isolate "a": 2, isolate "b": 1)'
    )
    assert error.details["otu_id"] == "otu1"
    assert error.details["issues"]["isolate_inconsistency"] is True
    assert error.to_dict()["id"] == "verification"
    validate_reference(data, verify=False)


def test_empty_sequence_fails_verification():
    empty = isolate("abc", sequences=[sequence("s9", seq="")])
    error = raises(reference_data(otu(isolates=[empty])))
    assert (error.id, str(error)) == (
        "verification",
        'OTU "Foo virus" isolate "abc" sequence "s9" is empty',
    )


def test_no_default_isolate_fails_verification():
    error = raises(reference_data(otu(isolates=[isolate("abc", default=False)])))
    assert (error.id, str(error)) == ("verification", 'OTU "Foo virus" has no default isolate')


def test_segment_mismatch_does_not_block_validation():
    data = reference_data(otu(isolates=[isolate(sequences=[sequence(segment=None)])]))
    validate_reference(data)
    assert verify_otu(data["otus"][0])["segment_mismatch"]


# verify_otu


def joined_otu(isolates, schema=None):
    return {"_id": "o1", "name": "Foo virus", "schema": schema or [], "isolates": isolates}


def test_verify_returns_none_for_a_good_otu():
    assert verify_otu(otu()) is None


def test_verify_reports_every_key():
    issues = verify_otu(joined_otu([]))
    assert issues == {
        "empty_otu": True,
        "empty_isolate": [],
        "empty_sequence": [],
        "isolate_inconsistency": False,
        "no_default_isolate": False,
        "segment_mismatch": [],
    }
    assert blocking_issues(issues) == ["empty_otu"]


def test_verify_lists_empty_isolates_without_calling_them_inconsistent():
    issues = verify_otu(joined_otu([isolate("a"), isolate("b", False, [])]))
    assert issues["empty_isolate"] == ["b"]
    assert issues["isolate_inconsistency"] is False


def test_verify_lists_empty_sequences():
    sequences = [sequence("s1"), sequence("s2", seq="")]
    issues = verify_otu(joined_otu([isolate("a", sequences=sequences)]))
    assert issues["empty_sequence"] == ["s2"]


def test_verify_flags_isolates_with_different_sequence_counts():
    issues = verify_otu(joined_otu([isolate("a", sequences=[sequence("s1"), sequence("s2")]), isolate("b", False)]))
    assert issues["isolate_inconsistency"] is True
    assert blocking_issues(issues) == ["isolate_inconsistency"]


def test_verify_flags_an_otu_without_default_isolate():
    issues = verify_otu(joined_otu([isolate("a", False), isolate("b", False)]))
    assert issues["no_default_isolate"] is True


def segmented(_id, segment):
    return sequence(_id, accession=f"NC_{_id}", segment=segment)


def test_verify_flags_sequences_outside_the_schema_and_missing_required_segments():
    schema = [
        {"name": "RNA 1", "molecule": "ssRNA+", "required": True},
        {"name": "RNA 2", "molecule": "ssRNA+", "required": True},
        {"name": "RNA 3", "molecule": "ssRNA+", "required": False},
    ]
    issues = verify_otu(
        joined_otu(
            [
                isolate("a", True, [segmented("s1", "RNA 1"), segmented("s2", "RNA 2")]),
                isolate("b", False, [segmented("s3", "RNA 1"), segmented("s4", "RNA 9")]),
                isolate("c", False, [segmented("s5", None), segmented("s6", "")]),
            ],
            schema,
        )
    )
    assert blocking_issues(issues) == []
    assert issues["segment_mismatch"] == [
        {"isolate_id": "b", "sequence_id": "s4", "segment": "RNA 9", "reason": "unknown_segment"},
        {"isolate_id": "b", "sequence_id": None, "segment": "RNA 2", "reason": "missing_segment"},
        {"isolate_id": "c", "sequence_id": "s5", "segment": None, "reason": "no_segment"},
        {"isolate_id": "c", "sequence_id": "s6", "segment": "", "reason": "no_segment"},
        {"isolate_id": "c", "sequence_id": None, "segment": "RNA 1", "reason": "missing_segment"},
        {"isolate_id": "c", "sequence_id": None, "segment": "RNA 2", "reason": "missing_segment"},
    ]


def test_verify_ignores_segments_when_the_otu_has_no_schema():
    assert verify_otu(joined_otu([isolate(sequences=[sequence(segment="anything")])])) is None


def test_verify_issues_are_json_ready():
    bad = isolate("a", False, [sequence(segment=None)])
    issues = verify_otu(joined_otu([bad], otu()["schema"]))
    assert json.loads(json.dumps(issues)) == issues


def test_plant_reference_only_has_segment_mismatches(plant_reference):
    flagged = {otu["name"]: verify_otu(otu) for otu in plant_reference["otus"] if verify_otu(otu)}
    assert all(blocking_issues(issues) == [] for issues in flagged.values())
    assert len(flagged) == 30
    assert flagged["Grapevine latent viroid"]["segment_mismatch"][0]["reason"] == "no_segment"


def test_database_otus_verify_too(index_otus):
    assert all(not blocking_issues(verify_otu(otu)) for otu in index_otus)


# FASTA


def test_default_isolate_fasta_covers_one_isolate_per_otu(plant_reference, tmp_path):
    records = list(iter_default_isolate_fasta(plant_reference["otus"]))
    expected = sum(len(default_isolate(otu)["sequences"]) for otu in plant_reference["otus"])
    assert len(records) == expected == 2986
    assert len({sequence_id for sequence_id, _ in records}) == len(records)

    path = tmp_path / "ref.fa"
    with open(path, "w") as handle:
        assert write_fasta(records, handle) == len(records)
    parsed = [(record.id, str(record.seq)) for record in SeqIO.parse(path, "fasta")]
    assert parsed == records


def test_default_isolate_fasta_reads_database_documents(index_otus):
    records = list(iter_default_isolate_fasta(index_otus))
    assert len(records) == sum(
        len(isolate["sequences"]) for otu in index_otus for isolate in otu["isolates"] if isolate["default"]
    )


def test_otu_without_default_isolate_cannot_be_indexed():
    with pytest.raises(ValueError, match='OTU "Foo virus" has no default isolate'):
        list(iter_default_isolate_fasta([otu(isolates=[isolate(default=False)])]))


def test_all_isolate_fasta_keeps_file_order_for_the_chosen_otus(plant_reference):
    otus = plant_reference["otus"]
    chosen = [otus[5]["_id"], otus[1]["_id"]]
    records = list(iter_all_isolate_fasta(otus, chosen))
    expected = [
        (sequence["_id"], sequence["sequence"])
        for otu in (otus[1], otus[5])
        for isolate in otu["isolates"]
        for sequence in isolate["sequences"]
    ]
    assert records == expected


def test_fasta_ids_with_whitespace_are_refused():
    with pytest.raises(ValueError, match="record 2"):
        write_fasta([("s1", "AC"), ("s 2", "GT")], io.StringIO())
