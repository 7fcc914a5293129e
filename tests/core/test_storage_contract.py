"""Every query shape ``core/`` relies on, run against each wire-compatible server we support.

nx-27017 is the embedded default, SecantusDB a second implementation, and a real MongoDB
when ``MONGODB_URI`` names one (set ``RINGSPOT_CONTRACT_MONGODB_URI``). A shape that one
server gets wrong fails here rather than as a subtle bug in a feature.
"""

from __future__ import annotations

import os
import subprocess

import pymongo
import pytest
from pymongo.errors import DuplicateKeyError

from ringspot.core.db import any_of, append, update_array
from ringspot.core.pagination import paginate
from ringspot.core.utils import ago, new_id, now, to_json

from ..conftest import VENV_BIN, free_port, wait_port


@pytest.fixture(scope="module")
def secantus_server(tmp_path_factory):
    port = free_port()
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "secantusd-py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(tmp_path_factory.mktemp("secantus")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_port(port)
    yield f"mongodb://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


SERVERS = ["nx-27017", "secantusdb"] + (["mongodb"] if os.environ.get("RINGSPOT_CONTRACT_MONGODB_URI") else [])


@pytest.fixture(params=SERVERS)
def db(request):
    if request.param == "nx-27017":
        uri = request.getfixturevalue("database_server")
    elif request.param == "secantusdb":
        uri = request.getfixturevalue("secantus_server")
    else:
        uri = os.environ["RINGSPOT_CONTRACT_MONGODB_URI"]
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    name = f"contract_{new_id()}"
    yield client[name]
    client.drop_database(name)
    client.close()


def test_insert_and_read_back_with_millisecond_times(db):
    t = now()
    db.processes.insert_one({"_id": "p1", "created_at": t, "context": {"ref_id": "r1"}, "status": []})
    doc = db.processes.find_one({"_id": "p1"})
    assert doc["created_at"] == t
    assert doc["created_at"].endswith("000Z")


def test_claim_by_conditional_update_succeeds_once(db):
    db.processes.insert_one({"_id": "p1", "state": "waiting", "attempts": 0})
    update = {"$set": {"state": "running"}, "$inc": {"attempts": 1}}
    assert db.processes.update_one({"_id": "p1", "state": "waiting"}, update).modified_count == 1
    assert db.processes.update_one({"_id": "p1", "state": "waiting"}, update).modified_count == 0
    assert db.processes.find_one({"_id": "p1"})["attempts"] == 1


def test_stale_heartbeat_query_on_iso_times_written_later(db):
    db.processes.insert_many([{"_id": "old", "state": "running"}, {"_id": "new", "state": "running"}])
    db.processes.update_one({"_id": "old"}, {"$set": {"heartbeat_at": ago(300)}})
    db.processes.update_one({"_id": "new"}, {"$set": {"heartbeat_at": now()}})
    cutoff = ago(60)
    assert [d["_id"] for d in db.processes.find({"state": "running", "heartbeat_at": {"$lt": cutoff}})] == ["old"]
    assert [d["_id"] for d in db.processes.find({}).sort("heartbeat_at", -1)] == ["new", "old"]


def test_update_array_appends_and_removes_sub_documents(db):
    db.refs.insert_one({"_id": "r", "groups": [], "context": {}})
    append(db.refs, "r", "groups", {"id": "g1", "build": False})
    append(db.refs, "r", "groups", {"id": "g2", "build": True, "at": now()})
    update_array(db.refs, "r", "groups", lambda groups: [g for g in groups if g["id"] != "g1"])
    db.refs.update_one({"_id": "r"}, {"$set": {"context.a": 1}})
    doc = db.refs.find_one({"_id": "r"})
    assert [g["id"] for g in doc["groups"]] == ["g2"]
    assert isinstance(doc["groups"][0], dict)
    assert doc["context"] == {"a": 1}


def test_update_array_loses_no_append_under_concurrency(db):
    from concurrent.futures import ThreadPoolExecutor

    db.processes.insert_one({"_id": "p", "status": []})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: append(db.processes, "p", "status", {"n": n}), range(40)))
    assert sorted(s["n"] for s in db.processes.find_one({"_id": "p"})["status"]) == list(range(40))


def test_positional_update_of_one_array_element(db):
    db.refs.insert_one({"_id": "r", "users": [{"id": "a", "build": False}, {"id": "b", "build": False}]})
    assert db.refs.update_one({"_id": "r", "users.id": "b"}, {"$set": {"users.$.build": True}}).modified_count == 1
    assert db.refs.find_one({"_id": "r"})["users"] == [{"id": "a", "build": False}, {"id": "b", "build": True}]


def test_update_array_can_refuse_a_duplicate(db):
    db.indexes.insert_one({"_id": "i", "files": []})

    def add(files):
        return None if any(f["name"] == "a" for f in files) else files + [{"name": "a"}]

    assert update_array(db.indexes, "i", "files", add) == [{"name": "a"}]
    assert update_array(db.indexes, "i", "files", add) is None


def test_membership_existence_and_regex_filters(db):
    db.otus.insert_many(
        [
            {"_id": "1", "name": "Tobacco mosaic virus", "reference": {"id": "r"}, "verified": True, "workflow": "x"},
            {"_id": "2", "name": "Potato virus Y", "reference": {"id": "r"}, "verified": False},
            {"_id": "3", "name": "tobacco rattle virus", "reference": {"id": "q"}, "verified": True},
        ]
    )
    assert db.otus.count_documents({"name": {"$regex": "tobacco", "$options": "i"}}) == 2
    assert db.otus.count_documents({"_id": {"$in": ["1", "3"]}, "verified": True}) == 2
    assert db.otus.count_documents({"_id": {"$nin": ["1"]}}) == 2
    assert db.otus.count_documents({"workflow": {"$exists": True}}) == 1
    assert db.otus.count_documents({"reference.id": "r", "verified": False}) == 1


def test_visibility_query_with_or_and_in(db):
    db.refs.insert_many(
        [
            {"_id": "mine", "user": {"id": "me"}, "users": [], "groups": []},
            {"_id": "shared", "user": {"id": "x"}, "users": [{"id": "me"}], "groups": []},
            {"_id": "group", "user": {"id": "x"}, "users": [], "groups": [{"id": "lab"}]},
            {"_id": "public", "user": {"id": "x"}, "users": [], "groups": [], "public": True},
            {"_id": "hidden", "user": {"id": "x"}, "users": [], "groups": []},
        ]
    )
    query = {"$or": [{"public": True}, {"user.id": "me"}, {"users.id": "me"}, any_of("groups.id", ["lab", "other"])]}
    assert sorted(d["_id"] for d in db.refs.find(query)) == ["group", "mine", "public", "shared"]


def test_paginate_counts_sorts_and_slices(db):
    db.history.insert_many(
        [{"_id": f"h{i:03d}", "n": i, "reference": {"id": "r" if i % 2 else "q"}} for i in range(40)]
    )
    page = paginate(db.history, {"reference.id": "r"}, page=2, per_page=5, sort=[("n", -1)])
    assert page["total_count"] == 40
    assert page["found_count"] == 20
    assert page["page_count"] == 4
    assert [d["n"] for d in page["documents"]] == [29, 27, 25, 23, 21]


def test_update_many_and_delete_many(db):
    db.history.insert_many([{"_id": str(i), "index": {"id": "unbuilt"}, "reference": {"id": "r"}} for i in range(10)])
    tagged = db.history.update_many({"reference.id": "r", "index.id": "unbuilt"}, {"$set": {"index": {"id": "i1"}}})
    assert tagged.modified_count == 10
    assert db.history.count_documents({"index.id": "i1"}) == 10
    assert db.history.delete_many({"index.id": "i1"}).deleted_count == 10


def test_unique_index_raises_duplicate_key(db):
    db.samples.create_index([("name", 1)], unique=True)
    db.samples.insert_one({"_id": "a", "name": "S1"})
    with pytest.raises(DuplicateKeyError):
        db.samples.insert_one({"_id": "b", "name": "S1"})


def test_duplicate_id_raises_duplicate_key(db):
    db.users.insert_one({"_id": "bob"})
    with pytest.raises(DuplicateKeyError):
        db.users.insert_one({"_id": "bob"})


def test_projection_excludes_fields(db):
    db.indexes.insert_one({"_id": "i", "manifest": {"a": 1}, "version": 0})
    assert db.indexes.find_one({"_id": "i"}, {"manifest": 0}) == {"_id": "i", "version": 0}


def test_booleans_set_later_stay_truthy_and_render_as_booleans(db):
    db.indexes.insert_one({"_id": "i", "ready": False})
    db.indexes.update_one({"_id": "i"}, {"$set": {"ready": True}})
    doc = db.indexes.find_one({"_id": "i"})
    assert doc["ready"]
    assert to_json(doc)["ready"] is True
    assert db.indexes.count_documents({"ready": True}) == 1
    db.indexes.update_one({"_id": "i"}, {"$set": {"ready": False}})
    assert db.indexes.count_documents({"ready": False}) == 1
    assert to_json(db.indexes.find_one({"_id": "i"}))["ready"] is False


def test_in_on_an_embedded_document_field(db):
    db.analyses.insert_many([{"_id": str(i), "sample": {"id": f"s{i}"}} for i in range(3)])
    assert sorted(d["_id"] for d in db.analyses.find({"sample.id": {"$in": ["s0", "s2"]}})) == ["0", "2"]


def test_projection_of_a_whole_embedded_document(db):
    db.history.insert_one({"_id": "h", "otu": {"id": "o", "name": "n"}, "diff": []})
    assert db.history.find_one({"_id": "h"}, {"otu": 1}) == {"_id": "h", "otu": {"id": "o", "name": "n"}}
