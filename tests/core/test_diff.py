"""History diffs: every stored diff patches back to the exact older OTU, after JSON or BSON."""

import copy
import doctest
import gzip
import json
import random
from pathlib import Path

import bson
import pytest

from ringspot.core import diff as diff_module
from ringspot.core.diff import diff_otus, patch_back

REFERENCE = Path("/work/shared/data/reference/example-20otus.reference.json.gz")


@pytest.fixture(scope="module")
def real_otus():
    with gzip.open(REFERENCE) as handle:
        return json.load(handle)["otus"]


@pytest.fixture
def joined_otu(real_otus):
    """A real multi-isolate OTU shaped like a stored joined OTU document."""
    otu = copy.deepcopy(next(otu for otu in real_otus if len(otu["isolates"]) > 1))
    otu.update(version=0, verified=True, lower_name=otu["name"].lower(), reference={"id": "ref1"})
    return otu


def through_json(value):
    return json.loads(json.dumps(value))


def through_bson(value):
    # What a history document's diff looks like after MongoDB has stored and returned it.
    return bson.decode(bson.encode({"diff": value}))["diff"]


def contains_tuple(value) -> bool:
    if isinstance(value, tuple):
        return True
    if isinstance(value, list):
        return any(contains_tuple(item) for item in value)
    if isinstance(value, dict):
        return any(contains_tuple(item) for item in value.values())
    return False


def bump(otu):
    otu["version"] += 1
    return otu


def edit_history(start, edits, store=through_json):
    """Apply each edit to a copy of the previous version; return (versions, stored diffs)."""
    versions = [copy.deepcopy(start)]
    diffs = []
    for edit in edits:
        new = copy.deepcopy(versions[-1])
        edit(new)
        bump(new)
        diffs.append(store(diff_otus(versions[-1], new)))
        versions.append(new)
    return versions, diffs


def assert_every_version_restores(versions, diffs):
    current = versions[-1]
    for target in range(len(versions)):
        newest_first = list(reversed(diffs[target:]))
        assert patch_back(current, newest_first) == versions[target], f"version {target}"


# Edits a user can make through the OTU, isolate and sequence endpoints.


def new_sequence(otu, _id, segment=None):
    return {
        "_id": _id,
        "accession": f"ACC_{_id}",
        "definition": "made in a test",
        "host": "",
        "segment": segment,
        "sequence": "ACGT" * 20,
    }


def edit_name(otu):
    otu["name"] = "Renamed virus"
    otu["lower_name"] = "renamed virus"


def remove_abbreviation(otu):
    otu["abbreviation"] = ""


def append_isolate(otu):
    otu["isolates"].append(
        {
            "id": "new1",
            "source_type": "isolate",
            "source_name": "N1",
            "default": False,
            "sequences": [new_sequence(otu, "seqnew1")],
        }
    )


def insert_isolate_first(otu):
    otu["isolates"].insert(
        0,
        {
            "id": "new0",
            "source_type": "strain",
            "source_name": "N0",
            "default": False,
            "sequences": [new_sequence(otu, "seqnew0")],
        },
    )


def remove_middle_isolate(otu):
    if len(otu["isolates"]) > 1:
        del otu["isolates"][len(otu["isolates"]) // 2]


def set_last_isolate_default(otu):
    if not otu["isolates"]:
        return
    for isolate in otu["isolates"]:
        isolate["default"] = False
    otu["isolates"][-1]["default"] = True


def add_sequence(otu):
    if otu["isolates"]:
        otu["isolates"][0]["sequences"].append(new_sequence(otu, "seqadd"))


def remove_first_sequence(otu):
    if otu["isolates"] and otu["isolates"][0]["sequences"]:
        del otu["isolates"][0]["sequences"][0]


def edit_sequence(otu):
    if not otu["isolates"] or not otu["isolates"][-1]["sequences"]:
        return
    sequence = otu["isolates"][-1]["sequences"][0]
    sequence["sequence"] = sequence["sequence"][10:] + "NNNN"
    sequence["segment"] = None


def add_schema_segment(otu):
    otu["schema"].append({"name": "RNA 9", "molecule": "ssRNA+", "required": False})


def drop_and_add_fields(otu):
    otu.pop("taxid", None)
    otu["issues"] = {"empty_otu": False, "segment_mismatch": [{"isolate_id": "x", "segment": None}]}


def remove_all_isolates(otu):
    otu["isolates"] = []


EDITS = [
    edit_name,
    remove_abbreviation,
    append_isolate,
    insert_isolate_first,
    remove_middle_isolate,
    set_last_isolate_default,
    add_sequence,
    remove_first_sequence,
    edit_sequence,
    add_schema_segment,
    drop_and_add_fields,
    remove_all_isolates,
]


def test_doctests_pass():
    assert doctest.testmod(diff_module).failed == 0


def test_diff_matches_virtools_stored_shape():
    old = {"abbreviation": "ABTV", "version": 0}
    new = {"abbreviation": "", "version": 1}
    assert diff_otus(old, new) == [
        ["change", "abbreviation", ["ABTV", ""]],
        ["change", "version", [0, 1]],
    ]


@pytest.mark.parametrize("edit", EDITS, ids=lambda edit: edit.__name__)
def test_each_edit_is_json_ready_and_patches_back(joined_otu, edit):
    new = copy.deepcopy(joined_otu)
    edit(new)
    bump(new)
    diff = diff_otus(joined_otu, new)
    assert diff
    assert not contains_tuple(diff)
    assert through_json(diff) == diff
    assert patch_back(new, [through_json(diff)]) == joined_otu
    assert patch_back(new, [through_bson(diff)]) == joined_otu


@pytest.mark.parametrize("store", [through_json, through_bson], ids=["json", "bson"])
def test_a_chain_of_edits_restores_every_version(joined_otu, store):
    versions, diffs = edit_history(joined_otu, EDITS, store)
    assert_every_version_restores(versions, diffs)


def test_random_edits_on_every_real_otu_restore_every_version(real_otus):
    rng = random.Random(20240607)
    for otu in real_otus:
        start = dict(copy.deepcopy(otu), version=0)
        edits = [rng.choice(EDITS[:-1]) for _ in range(8)] + [rng.choice(EDITS)]
        versions, diffs = edit_history(start, edits)
        assert_every_version_restores(versions, diffs)


@pytest.mark.parametrize("kept", [0, 1, 2])
@pytest.mark.parametrize("removed", [1, 2, 3, 5])
def test_removing_several_trailing_list_items_patches_back_in_order(kept, removed):
    # dictdiffer.swap alone restores [] -> [a, b, c] as [a, c, b].
    old = {"isolates": [{"id": str(n)} for n in range(kept + removed)]}
    new = {"isolates": old["isolates"][:kept]}
    assert patch_back(new, [through_json(diff_otus(old, new))]) == old
    assert patch_back(old, [through_json(diff_otus(new, old))]) == new


def test_patch_back_leaves_current_and_diffs_untouched(joined_otu):
    versions, diffs = edit_history(joined_otu, EDITS)
    current = copy.deepcopy(versions[-1])
    stored = copy.deepcopy(diffs)
    restored = patch_back(current, list(reversed(diffs)))
    assert current == versions[-1]
    assert diffs == stored
    # The result shares nothing with the diffs: editing it cannot corrupt stored history.
    restored["isolates"][0]["sequences"].clear()
    assert diffs == stored


def test_no_diffs_gives_an_equal_copy(joined_otu):
    restored = patch_back(joined_otu, [])
    assert restored == joined_otu
    assert restored is not joined_otu


def test_identical_versions_have_an_empty_diff(joined_otu):
    assert diff_otus(joined_otu, copy.deepcopy(joined_otu)) == []


def test_whole_otu_entries_are_refused_with_a_reason(joined_otu):
    with pytest.raises(ValueError, match="diff 1 .* create and remove entries"):
        patch_back(joined_otu, [[], joined_otu])
