"""One world of real objects for the rights matrix, the users who hold each right on them, and
a snapshot to put the world back after a request changed it.

Everything a route can name exists: a private reference with an OTU, isolate, sequence and
history, its ready index, a subtraction, a sample of ``owner`` readable and writable by the
group ``lab`` only, a finished Pathoscope analysis of it, an alignment, uploads, an installed
HMM set, a webhook, API keys; and one job per workflow attached to these objects, plus a job
of something else (``other_job``) whose key must reach none of them.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import dramatiq

from ringspot.core import auth, processes
from ringspot.core.hmms import STATUS_ID

from ..analyses_data import GLRAV1_READS, insert_index, insert_sample, insert_subtraction
from ..common import claim_with_token

REFERENCE_RIGHTS = ("build", "modify", "modify_otu", "remove")


def basic(name: str, secret: str) -> dict:
    token = base64.b64encode(f"{name}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def broker_job_key(stub_broker, job_id: str) -> str:
    """The key of a job the API enqueued, as its worker gets it: the message's claim token, claimed."""
    for queue in stub_broker.queues.values():
        for raw in list(queue.queue):
            message = dramatiq.Message.decode(raw)
            if message.kwargs.get("process_id") == job_id:
                return claim_with_token(job_id, message.kwargs["job_key"])
    raise AssertionError(f"no message for job {job_id}")


def _ok(response, *codes):
    assert response.status_code in (codes or (200, 201, 202, 204)), (response.status_code, response.get_json())
    return response.get_json()


class World:
    """Ids of the objects (``ids``), credentials per role (``auth[role]`` -> headers) and a snapshot."""

    def __init__(self, client, db, settings, stub_broker, make_user, tmp_path: Path):
        self.client, self.db, self.settings, self.broker = client, db, settings, stub_broker
        self.ids: dict[str, str] = {}
        self.auth: dict[str, dict] = {}
        self.tmp = tmp_path
        self._users(make_user)
        self._objects()
        self._snapshot()

    # ------------------------------------------------------------ users and keys

    def _user(self, make_user, name, **kwargs):
        user = make_user(name, **kwargs)
        self.auth[name] = basic(user.id, user.key)
        return user

    def _users(self, make_user):
        for group in ("lab", "refgroup", "spare"):
            auth.create_group(self.db, group)
        self.admin = self._user(make_user, "admin", administrator=True)
        for name in ("owner", "plain", "spare_user", "ref_reader", "analyst"):
            self._user(make_user, name, groups=["lab"] if name == "analyst" else ())
        self._user(make_user, "lab", groups=["lab"])
        self._user(make_user, "perm_all", permissions=auth.PERMISSIONS)
        for permission in auth.PERMISSIONS:
            self._user(make_user, f"perm_{permission}", permissions=[permission])
            self._user(make_user, f"near_{permission}", permissions=[p for p in auth.PERMISSIONS if p != permission])
        for right in REFERENCE_RIGHTS:
            self._user(make_user, f"ref_{right}")
            self._user(make_user, f"ref_near_{right}")

    def call(self, method, path, role="admin", **kwargs):
        return self.client.open(path, method=method, headers=self.auth[role], **kwargs)

    def job_auth(self, name: str, job_id: str, key: str):
        self.ids[name] = job_id
        self.auth[name] = basic(f"job-{job_id}", key)

    # ------------------------------------------------------------ objects

    def _objects(self):
        db, data_path, ids = self.db, self.settings.data_path, self.ids

        # A private reference (admin's), with an OTU, an isolate, a sequence and their history.
        ref = _ok(self.call("POST", "/api/refs", json={"name": "World reference", "organism": "virus"}))
        ids["ref_id"] = ref["id"]
        otu = _ok(
            self.call(
                "POST", f"/api/refs/{ref['id']}/otus", json={"name": "Tobacco mosaic virus", "abbreviation": "TMV"}
            )
        )
        ids["otu_id"] = otu["id"]
        isolate = _ok(
            self.call("POST", f"/api/otus/{otu['id']}/isolates", json={"source_type": "isolate", "source_name": "A"})
        )
        ids["isolate_id"] = isolate["id"]
        sequence = _ok(
            self.call(
                "POST",
                f"/api/otus/{otu['id']}/isolates/{isolate['id']}/sequences",
                json={"accession": "NC_001367.1", "definition": "TMV genome", "sequence": "ACGT" * 60},
            )
        )
        ids["sequence_id"] = sequence["id"]
        ids["change_id"] = _ok(self.call("GET", f"/api/refs/{ref['id']}/history"))["documents"][0]["id"]
        otu_version = _ok(self.call("GET", f"/api/otus/{otu['id']}"))["version"]

        # Members: each holds exactly one right, or every right but one ("near"), or none (readers).
        members = {"ref_reader": {}, "analyst": {}, "spare_user": {}}
        for right in REFERENCE_RIGHTS:
            members[f"ref_{right}"] = {right: True}
            members[f"ref_near_{right}"] = {r: True for r in REFERENCE_RIGHTS if r != right}
        for user_id, rights in members.items():
            _ok(self.call("POST", f"/api/refs/{ref['id']}/users", json={"user_id": user_id, **rights}))
        _ok(self.call("POST", f"/api/refs/{ref['id']}/groups", json={"group_id": "refgroup"}))

        # A ready index of the reference, with one file, and the build_index job that made it.
        files = self.tmp / "index_files"
        files.mkdir()
        (files / "reference.1.bt2").write_bytes(b"bowtie2 index")
        manifest_otus = [
            {"_id": otu["id"], "isolates": [{"id": isolate["id"], "sequences": [{"_id": sequence["id"]}]}]}
        ]
        index = insert_index(db, data_path, ref["id"], manifest_otus, files=files)
        ids["index_id"] = index["_id"]
        job, key = processes.create_process(
            db, "build_index", user_id="admin", workflow=True, context={"index_id": index["_id"], "ref_id": ref["id"]}
        )
        db.indexes.update_one({"_id": index["_id"]}, {"$set": {"job": {"id": job["_id"]}}})
        self.job_auth("index_job", job["_id"], key)

        # A subtraction and its create_subtraction job.
        files = self.tmp / "subtraction_files"
        files.mkdir()
        (files / "subtraction.1.bt2").write_bytes(b"bowtie2 index")
        subtraction = insert_subtraction(db, data_path, files)
        ids["subtraction_id"] = subtraction["_id"]
        job, key = processes.create_process(
            db, "create_subtraction", user_id="admin", workflow=True, context={"subtraction_id": subtraction["_id"]}
        )
        db.subtractions.update_one({"_id": subtraction["_id"]}, {"$set": {"job": {"id": job["_id"]}}})
        self.job_auth("subtraction_job", job["_id"], key)

        # owner's sample: group "lab" may read and write it, nobody else.
        sample = insert_sample(
            db,
            data_path,
            GLRAV1_READS,
            user_id="owner",
            subtractions=[subtraction["_id"]],
            group="lab",
            group_read=True,
            group_write=True,
            all_read=False,
            all_write=False,
        )
        ids["sample_id"] = sample["_id"]
        job, key = processes.create_process(
            db, "create_sample", user_id="owner", workflow=True, context={"sample_id": sample["_id"]}
        )
        db.samples.update_one({"_id": sample["_id"]}, {"$set": {"job": {"id": job["_id"]}}})
        self.job_auth("sample_job", job["_id"], key)

        # A finished Pathoscope analysis of the sample, with a result file and a hit on the sequence.
        analysis = _ok(
            self.call(
                "POST",
                f"/api/samples/{sample['_id']}/analyses",
                json={"workflow": "pathoscope_bowtie", "ref_id": ref["id"]},
            )
        )
        ids["analysis_id"] = analysis["id"]
        self.job_auth("analysis_job", analysis["job"]["id"], broker_job_key(self.broker, analysis["job"]["id"]))
        # The key comes from the job's claim (``broker_job_key``): the job is running already.
        job_call = lambda method, path, **kw: self.call(method, path, "analysis_job", **kw)  # noqa: E731
        _ok(job_call("POST", f"/api/analyses/{analysis['id']}/files?name=report.tsv", data=b"otu\treads\n"))
        align = [1] * 240
        hit = {
            "id": sequence["id"],
            "otu": {"id": otu["id"], "version": otu_version},
            "final": {"pi": 1.0, "best": 1.0, "high": 1.0, "low": 0.0, "reads": 10},
            "initial": {"pi": 1.0, "best": 1.0, "high": 1.0, "low": 0.0, "reads": 10},
            "align": align,
            "coverage": 1.0,
            "depth": 1,
        }
        _ok(
            job_call(
                "PATCH",
                f"/api/analyses/{analysis['id']}",
                json={"results": {"read_count": 10, "subtracted_count": 0, "hits": [hit]}},
            )
        )
        # The job stays running: a finished job's key opens nothing any more.

        # An alignment of the sample to the sequence; its job (still waiting) uploaded one file.
        alignment = _ok(
            self.call("POST", f"/api/samples/{sample['_id']}/alignments", json={"sequence_id": sequence["id"]})
        )
        ids["alignment_id"] = alignment["id"]
        job_id = alignment["job"]["$ref"].rsplit("/", 1)[1]
        self.job_auth("alignment_job", job_id, broker_job_key(self.broker, job_id))
        _ok(
            self.call(
                "POST",
                f"/api/alignments/{alignment['id']}/files?name=depth.json.gz",
                "alignment_job",
                data=b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x8b\x8e\x05\x00)\xbb\x4c\x0d\x02\x00\x00\x00",
            )
        )
        ids["process_id"] = job_id  # a waiting process of admin's: cancellable
        finished, _ = processes.create_process(db, "nuvs", user_id="admin", workflow=True, context={})
        processes.finish(db, finished["_id"], "complete", None)
        ids["job_id"] = finished["_id"]  # a finished job: removable, no longer cancellable

        # Uploads of every type.
        for upload_type, name in (
            ("reference", "reference.json.gz"),
            ("reads", "reads.fq.gz"),
            ("subtraction", "host.fa"),
            ("hmm", "profiles.hmm"),
            ("hmm", "annotations.json"),
        ):
            doc = _ok(self.call("POST", f"/api/uploads?name={name}&type={upload_type}", data=b"content"))
            ids.setdefault(f"upload_{upload_type}", doc["id"])
            if name == "annotations.json":
                ids["upload_annotations"] = doc["id"]
        ids["upload_id"] = ids["upload_reference"]
        # An upload is its uploader's: each belongs to the holder of the permission that uses it.
        owners = {
            "upload_reads": "perm_create_sample",
            "upload_subtraction": "perm_modify_subtraction",
            "upload_hmm": "perm_modify_hmm",
            "upload_annotations": "perm_modify_hmm",
            "upload_reference": "perm_remove_file",
        }
        for key, owner in owners.items():
            db.uploads.update_one({"_id": ids[key]}, {"$set": {"user": {"id": owner}}})
        # The sample's create_sample job reads the upload it was made from.
        db.processes.update_one({"_id": ids["sample_job"]}, {"$set": {"context.upload_ids": [ids["upload_reads"]]}})

        # An installed HMM set with one annotation and its profiles file.
        db.status.replace_one(
            {"_id": STATUS_ID},
            {
                "_id": STATUS_ID,
                "installed": {"id": "set1", "version": "1", "sha256": "0" * 64},
                "updating": False,
                "process": None,
                "errors": [],
                "updates": [{"id": "set1", "version": "1"}],
            },
            upsert=True,
        )
        db.hmm.insert_one(
            {
                "_id": "hmm1",
                "cluster": 1,
                "names": ["capsid protein"],
                "families": {"Virgaviridae": 1},
                "count": 1,
                "length": 100,
                "mean_entropy": 0.5,
                "total_entropy": 50,
                "genera": {},
                "set": {"id": "set1"},
            }
        )
        hmm_dir = Path(data_path) / "hmms" / "set1"
        hmm_dir.mkdir(parents=True)
        (hmm_dir / "profiles.hmm").write_text("HMMER3/f\n")
        ids["hmm_id"] = "hmm1"

        ids["webhook_id"] = _ok(
            self.call("POST", "/api/webhooks", json={"url": "http://127.0.0.1:1/hook", "events": ["process.complete"]})
        )["id"]
        ids.update(user_id="spare_user", group_id="spare", key_id="test_0", sequence_index="0", fmt="svg")

        # A job of something else: a NuVs analysis of another sample, on another index.
        job, key = processes.create_process(
            db,
            "nuvs",
            user_id="admin",
            workflow=True,
            context={
                "analysis_id": "elsewhere",
                "sample_id": "elsewhere",
                "index_id": "elsewhere",
                "ref_id": "elsewhere",
                "subtraction_ids": ["elsewhere"],
            },
        )
        self.job_auth("other_job", job["_id"], key)

    # ------------------------------------------------------------ snapshot

    def _snapshot(self):
        self._collections = {name: list(self.db[name].find({})) for name in self.db.list_collection_names()}
        self._files = self.tmp / "store_snapshot"
        shutil.copytree(self.settings.data_path, self._files)

    def restore(self):
        """Put back every document and file as they were once the world was built."""
        for name in set(self.db.list_collection_names()) | set(self._collections):
            self.db[name].delete_many({})
            if self._collections.get(name):
                self.db[name].insert_many(self._collections[name])
        shutil.rmtree(self.settings.data_path, ignore_errors=True)
        shutil.copytree(self._files, self.settings.data_path)
        auth.forget_api_keys()
        self.broker.flush_all()
