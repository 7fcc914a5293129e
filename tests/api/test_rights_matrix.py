"""Who may reach what, for every route of the API at once.

Per route and method: anonymous callers get 401 (unless the route is public), a job key
gets 403 on every route outside the Job API, and a job key never reaches another job's
objects. ``MATRIX`` below then names, for every route, the right it needs, and checks each
role against the real objects of one world (``rights_world.World``).
"""

import re

import pytest

from ringspot.core import processes

PUBLIC = {("POST", "/api/account/login"), ("GET", "/api/openapi.json")}
#: A route variable, with its converter (``<name>``, ``<int:n>``, ``<any(csv, xlsx):extension>``).
PLACEHOLDER = re.compile(r"<(?:([a-z]+(?:\([^)]*\))?):)?([a-z_]+)>")
#: A value each constrained converter accepts, so the route is reached at all.
CONVERTER_EXAMPLES = {"any(csv, xlsx)": "csv"}


def routes(app):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api"):
            continue
        path = PLACEHOLDER.sub(lambda m: CONVERTER_EXAMPLES.get(m.group(1), "nothere"), rule.rule)
        access = getattr(app.view_functions[rule.endpoint], "access", "user")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule.rule, path, access


def test_every_route_needs_credentials(app, client):
    checked = 0
    for method, rule, path, _access in routes(app):
        if (method, rule) in PUBLIC:
            continue
        response = client.open(path, method=method, json={})
        assert response.status_code == 401, f"{method} {rule} -> {response.status_code}"
        assert response.json["id"] == "requires_authorization"
        checked += 1
    assert checked > 80


def test_job_keys_work_only_on_the_job_api(app, client, db):
    job, key = processes.create_process(db, "build_index", user_id="admin", workflow=True, context={})
    auth = (f"job-{job['_id']}", key)
    for method, rule, path, access in routes(app):
        if (method, rule) in PUBLIC:
            continue
        response = client.open(path, method=method, json={}, auth=auth)
        if access == "user":
            assert response.status_code == 403, f"{method} {rule} -> {response.status_code}"
        elif "<" in rule:
            # Job API routes on objects: objects of no job of ours are missing or forbidden, never served.
            assert response.status_code in (400, 403, 404, 409, 422), f"{method} {rule} -> {response.status_code}"
        else:
            # Global Job API reads (e.g. the installed HMM status) hold nothing of another job.
            assert method == "GET" and response.status_code == 200, f"{method} {rule} -> {response.status_code}"


def test_user_keys_never_reach_job_only_routes(app, admin):
    for method, rule, path, access in routes(app):
        if access != "job":
            continue
        response = admin.client.open(path, method=method, json={}, auth=(admin.id, admin.key))
        assert response.status_code == 403, f"{method} {rule} -> {response.status_code}"


@pytest.mark.parametrize("prefix", ["/api/users", "/api/webhooks"])
def test_administration_needs_an_administrator(app, plain_user, prefix):
    for method, rule, path, _access in routes(app):
        if rule.startswith(prefix):
            response = plain_user.client.open(path, method=method, json={}, auth=(plain_user.id, plain_user.key))
            assert response.status_code == 403, f"{method} {rule} -> {response.status_code}"


# ==================================================================== the matrix on real objects
#
# Every route and method under /api, against the real objects of ``rights_world.World``, called
# by each role:
#
# - ``anonymous``: 401 ``requires_authorization`` (public routes excepted);
# - ``plain``, a user with no permission, no reference membership and not in the sample's group:
#   403. The API does not hide objects a user may not read: it answers 403 ``insufficient_rights``
#   for reference and sample rights (seed 000: "403 Insufficient rights ... sample rights") and
#   403 ``not_permitted`` for missing permissions and administration, never 404 for an object
#   that exists;
# - ``near``, a user holding every right of the same kind except the one needed (all other
#   permissions; the other three reference rights; read but not write on the sample; write but
#   not ownership; every permission but no administrator flag): 403 as well;
# - ``holder``, a user holding exactly the right needed (or, on Job API routes, the job the
#   object belongs to): passes the rights check and gets the row's ``ok`` status;
# - ``other_job``, the key of a NuVs job of another sample: 403 on user routes and on the objects
#   of other jobs (never 2xx, never 404), 200 on the global reads a job needs (HMM status, files);
# - ``own_job`` (routes users and jobs share): the object's own job, which passes;
# - ``admin``: passes, like the holder.
#
# Requests carry a valid body, so that rights, not validation, decide. Roles that should be
# refused go first; after any request that succeeded the world is restored from a snapshot.

from dataclasses import dataclass, field  # noqa: E402

from ringspot.core.auth import PERMISSIONS  # noqa: E402

from .rights_world import REFERENCE_RIGHTS, World  # noqa: E402

OK = "ok"


@dataclass(frozen=True)
class Right:
    """What a route needs, and so who is refused (``near``) and who passes (``holder``)."""

    kind: str
    arg: str = ""

    def __str__(self):
        return f"{self.kind}({self.arg})" if self.arg else self.kind

    def roles(self) -> list[tuple[str, str | None, bool]]:
        """(role, setup, passes): refused roles first, then the ones that pass."""
        kind, arg = self.kind, self.arg
        if kind == "public":
            return [("anonymous", None, True)]
        if kind == "job":
            return [
                ("anonymous", None, False),
                ("plain", None, False),
                ("admin", None, False),
                ("other_job", None, False),
                (f"{arg}_job", None, True),
            ]
        near = {
            "user": [],
            "perm": [f"near_{arg}"],
            "admin": ["perm_all"],
            "ref_read": [],
            "ref": [f"ref_near_{arg}"],
            "sample_read": [],
            "sample_write": ["lab:read_only"],
            "sample_write+ref_read": ["lab", "ref_reader"],
            "sample_owner": ["lab"],
            "upload": ["perm_all"],  # every permission, but not the uploader
            "process": ["near_cancel_job"],
        }[kind]
        holder = {
            "user": "plain",
            "perm": f"perm_{arg}",
            "admin": "admin",
            "ref_read": "ref_reader",
            "ref": f"ref_{arg}",
            "sample_read": "lab",
            "sample_write": "lab",
            "sample_write+ref_read": "analyst",
            "sample_owner": "owner",
            "upload": f"perm_{arg}",  # the uploader (see rights_world)
            "process": "perm_cancel_job",  # the world's processes are admin's
        }[kind]
        roles = [("anonymous", None, False)] + ([("plain", None, False)] if kind != "user" else [])
        roles += [(*r.split(":"), False) if ":" in r else (r, None, False) for r in near]
        roles += [("other_job", None, False), (holder, None, True)]
        return roles + ([("admin", None, True)] if holder != "admin" else [])


PUBLIC_ROUTE = Right("public")
USER = Right("user")
ADMIN = Right("admin")
REF_READ = Right("ref_read")
SAMPLE_READ = Right("sample_read")
SAMPLE_WRITE = Right("sample_write")
SAMPLE_OWNER = Right("sample_owner")
PROCESS_READ = Right("process")  # the process's user, or a holder of cancel_job


def perm(name):
    assert name in PERMISSIONS
    return Right("perm", name)


def ref(name):
    assert name in REFERENCE_RIGHTS
    return Right("ref", name)


def upload(permission):
    """The uploader's own upload (the world gives each to the holder of ``permission``)."""
    assert permission in PERMISSIONS
    return Right("upload", permission)


def job(name):
    return Right("job", name)


@dataclass(frozen=True)
class Row:
    right: Right
    ok: int | tuple = 200  # status of the roles that pass
    json: dict | None = None
    data: bytes | None = None
    query: str = ""
    params: dict = field(default_factory=dict)
    own_job: str | None = None  # routes users and jobs share: the job allowed through
    job_ok: int | None = None  # its status, when not ``ok`` (jobs send other bodies)
    other_job: int = 403  # the status of another job's key
    hides: tuple[str, ...] = ()  # lists: world objects ``plain`` may not read, so must not see listed


OTU = "/api/otus/<otu_id>"
ISOLATE = OTU + "/isolates/<isolate_id>"
SEQ = ISOLATE + "/sequences/<sequence_id>"
REF = "/api/refs/<ref_id>"
GZ = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00"

MATRIX: dict[tuple[str, str], Row] = {
    # ---------------------------------------------------------------- account: the caller's own
    ("GET", "/api/account"): Row(USER),
    ("PATCH", "/api/account"): Row(USER, 400, json={"old_password": "wrong-password", "password": "newpassword1"}),
    ("GET", "/api/account/keys"): Row(USER),
    ("POST", "/api/account/keys"): Row(USER, 201, json={"name": "another"}),
    ("DELETE", "/api/account/keys"): Row(USER, 204),
    ("GET", "/api/account/keys/<key_id>"): Row(USER),
    ("PATCH", "/api/account/keys/<key_id>"): Row(USER, json={"permissions": {}}),
    ("DELETE", "/api/account/keys/<key_id>"): Row(USER, 204),
    ("POST", "/api/account/login"): Row(PUBLIC_ROUTE, 400, json={"username": "plain", "password": "wrong-password"}),
    ("POST", "/api/account/logout"): Row(USER, 204),
    ("GET", "/api/openapi.json"): Row(PUBLIC_ROUTE),
    # ---------------------------------------------------------------- references
    ("GET", "/api/refs"): Row(USER, hides=("ref_id",)),
    ("POST", "/api/refs"): Row(perm("create_ref"), 201, json={"name": "Another reference"}),
    ("GET", REF): Row(REF_READ),
    ("PATCH", REF): Row(ref("modify"), json={"description": "edited"}),
    ("POST", REF): Row(ref("modify"), json={"description": "edited"}),
    ("DELETE", REF): Row(ref("remove"), 202),
    ("GET", REF + "/export"): Row(REF_READ),
    ("GET", REF + "/indexes"): Row(REF_READ),
    ("POST", REF + "/indexes"): Row(ref("build"), 201),
    ("GET", REF + "/history"): Row(REF_READ),
    ("GET", REF + "/otus"): Row(REF_READ),
    ("POST", REF + "/otus"): Row(ref("modify_otu"), 201, json={"name": "Cucumber mosaic virus"}),
    # The world's reference upload is another user's: the right holder gets past the rights check
    # to "File does not exist" (400); an administrator may use it (202).
    ("POST", REF + "/otus/import"): Row(ref("modify_otu"), (202, 400), json={"upload_id": "<upload_reference>"}),
    ("GET", REF + "/release"): Row(REF_READ, 400),  # not a remote reference
    ("POST", REF + "/release"): Row(ref("modify"), 400),
    ("GET", REF + "/updates"): Row(REF_READ, 400),
    ("POST", REF + "/updates"): Row(ref("modify"), 400),
    ("GET", REF + "/users"): Row(REF_READ),
    ("POST", REF + "/users"): Row(ref("modify"), 201, json={"user_id": "plain", "build": True}),
    ("GET", REF + "/users/<member_id>"): Row(REF_READ, params={"member_id": "spare_user"}),
    ("PATCH", REF + "/users/<member_id>"): Row(ref("modify"), json={"build": True}, params={"member_id": "spare_user"}),
    ("DELETE", REF + "/users/<member_id>"): Row(ref("modify"), 204, params={"member_id": "spare_user"}),
    ("GET", REF + "/groups"): Row(REF_READ),
    ("POST", REF + "/groups"): Row(ref("modify"), 201, json={"group_id": "spare"}),
    ("GET", REF + "/groups/<member_id>"): Row(REF_READ, params={"member_id": "refgroup"}),
    ("PATCH", REF + "/groups/<member_id>"): Row(ref("modify"), json={"build": True}, params={"member_id": "refgroup"}),
    ("DELETE", REF + "/groups/<member_id>"): Row(ref("modify"), 204, params={"member_id": "refgroup"}),
    # ---------------------------------------------------------------- OTUs, isolates, sequences, history
    ("GET", "/api/otus"): Row(USER, hides=("otu_id",)),
    ("GET", OTU): Row(REF_READ),
    ("PATCH", OTU): Row(ref("modify_otu"), json={"abbreviation": "TMV2"}),
    ("DELETE", OTU): Row(ref("modify_otu"), 204),
    ("GET", OTU + "/history"): Row(REF_READ),
    ("GET", OTU + "/isolates"): Row(REF_READ),
    ("POST", OTU + "/isolates"): Row(ref("modify_otu"), 201, json={"source_type": "isolate", "source_name": "B"}),
    ("GET", ISOLATE): Row(REF_READ),
    ("PATCH", ISOLATE): Row(ref("modify_otu"), json={"source_name": "C"}),
    ("DELETE", ISOLATE): Row(ref("modify_otu"), 204),
    ("PUT", ISOLATE + "/default"): Row(ref("modify_otu")),
    ("GET", ISOLATE + "/sequences"): Row(REF_READ),
    ("POST", ISOLATE + "/sequences"): Row(
        ref("modify_otu"), 201, json={"accession": "X1", "definition": "d", "sequence": "ACGT"}
    ),
    ("GET", SEQ): Row(REF_READ),
    ("PATCH", SEQ): Row(ref("modify_otu"), json={"definition": "edited"}),
    ("DELETE", SEQ): Row(ref("modify_otu"), 204),
    ("GET", "/api/history"): Row(USER, hides=("change_id",)),
    ("GET", "/api/history/<change_id>"): Row(REF_READ),
    ("DELETE", "/api/history/<change_id>"): Row(ref("modify_otu"), 204),
    # ---------------------------------------------------------------- indexes
    ("GET", "/api/indexes"): Row(USER, hides=("index_id",)),
    ("GET", "/api/indexes/<index_id>"): Row(REF_READ, own_job="index"),
    ("PATCH", "/api/indexes/<index_id>"): Row(job("index"), 409),  # already finalized
    ("POST", "/api/indexes/<index_id>/files"): Row(job("index"), 201, data=b"bowtie2", query="name=reference.2.bt2"),
    ("GET", "/api/indexes/<index_id>/files/<name>"): Row(REF_READ, own_job="index", params={"name": "reference.1.bt2"}),
    # ---------------------------------------------------------------- samples
    ("GET", "/api/samples"): Row(USER, hides=("sample_id",)),
    ("POST", "/api/samples"): Row(
        perm("create_sample"), 201, json={"name": "Another sample", "files": ["<upload_reads>"]}
    ),
    ("GET", "/api/samples/<sample_id>"): Row(SAMPLE_READ, own_job="sample"),
    ("PATCH", "/api/samples/<sample_id>"): Row(
        SAMPLE_WRITE, json={"notes": "edited"}, own_job="sample", job_ok=422
    ),  # the job finalizes with ``quality``
    ("DELETE", "/api/samples/<sample_id>"): Row(SAMPLE_WRITE, 409),  # the alignment job uses it
    ("PATCH", "/api/samples/<sample_id>/rights"): Row(SAMPLE_OWNER, json={"all_read": True}),
    ("GET", "/api/samples/<sample_id>/reads/<name>"): Row(
        SAMPLE_READ, own_job="sample", params={"name": "reads_1.fq.gz"}
    ),
    ("PUT", "/api/samples/<sample_id>/reads/<name>"): Row(
        job("sample"),
        409,
        data=GZ,  # already finalized
        params={"name": "reads_1.fq.gz"},
    ),
    ("GET", "/api/samples/<sample_id>/analyses"): Row(SAMPLE_READ),
    ("POST", "/api/samples/<sample_id>/analyses"): Row(
        Right("sample_write+ref_read"), 201, json={"workflow": "pathoscope_bowtie", "ref_id": "<ref_id>"}
    ),
    ("POST", "/api/samples/<sample_id>/alignments"): Row(
        Right("sample_write+ref_read"), 201, json={"accession": "NC_001367.1", "ref_id": "<ref_id>"}
    ),
    # ---------------------------------------------------------------- analyses
    ("GET", "/api/analyses"): Row(USER, hides=("analysis_id",)),
    ("GET", "/api/analyses/<analysis_id>"): Row(SAMPLE_READ, own_job="analysis"),
    ("PATCH", "/api/analyses/<analysis_id>"): Row(job("analysis"), 409, json={"results": {}}),  # already finalized
    ("DELETE", "/api/analyses/<analysis_id>"): Row(SAMPLE_WRITE, 204, own_job="analysis", job_ok=409),
    ("POST", "/api/analyses/<analysis_id>/files"): Row(job("analysis"), 409, data=b"x", query="name=more.tsv"),
    ("GET", "/api/analyses/<analysis_id>/files/<name>"): Row(
        SAMPLE_READ, own_job="analysis", params={"name": "report.tsv"}
    ),
    ("GET", "/api/analyses/<analysis_id>/hits/<sequence_id>/coverage.<fmt>"): Row(SAMPLE_READ),
    ("PUT", "/api/analyses/<analysis_id>/<sequence_index>/blast"): Row(SAMPLE_WRITE, 409, json={}),  # not NuVs
    ("POST", "/api/analyses"): Row(
        Right("sample_write+ref_read"), 201, json={"sample_ids": ["<sample_id>"], "ref_id": "<ref_id>"}
    ),
    ("GET", "/api/analyses/<analysis_id>/diagnosis.<any(csv, xlsx):extension>"): Row(
        SAMPLE_READ, params={"extension": "xlsx"}
    ),
    ("GET", "/api/analyses/<analysis_id>/contigs.fa"): Row(SAMPLE_READ, 422),  # not NuVs
    ("GET", "/api/analyses/<analysis_id>/orfs.faa"): Row(SAMPLE_READ, 422),  # not NuVs
    ("GET", "/api/reports/diagnosis"): Row(REF_READ, query="ref_id=<ref_id>&label=plate"),
    # ---------------------------------------------------------------- alignments
    ("GET", "/api/alignments"): Row(USER, hides=("alignment_id",)),
    ("GET", "/api/alignments/<alignment_id>"): Row(SAMPLE_READ, own_job="alignment"),
    ("PATCH", "/api/alignments/<alignment_id>"): Row(
        job("alignment"),
        409,
        json={"statistics": {"mapped_reads": 1, "length": 240, "breadth": 0.5, "mean_depth": 1.0, "identity": 99.0}},
    ),
    ("DELETE", "/api/alignments/<alignment_id>"): Row(SAMPLE_WRITE, 409),  # its job has not ended
    ("POST", "/api/alignments/<alignment_id>/files"): Row(job("alignment"), 201, data=b"x", query="name=coverage.svg"),
    ("GET", "/api/alignments/<alignment_id>/<name>"): Row(
        SAMPLE_READ, own_job="alignment", params={"name": "depth.json.gz"}
    ),
    # ---------------------------------------------------------------- subtractions
    ("GET", "/api/subtractions"): Row(USER),
    ("POST", "/api/subtractions"): Row(
        perm("modify_subtraction"), 201, json={"name": "Another host", "upload_id": "<upload_subtraction>"}
    ),
    ("GET", "/api/subtractions/<subtraction_id>"): Row(USER, own_job="subtraction"),
    ("PATCH", "/api/subtractions/<subtraction_id>"): Row(
        perm("modify_subtraction"), json={"nickname": "h"}, own_job="subtraction", job_ok=422
    ),
    ("DELETE", "/api/subtractions/<subtraction_id>"): Row(perm("modify_subtraction"), 409),  # a sample uses it
    ("POST", "/api/subtractions/<subtraction_id>/files"): Row(
        job("subtraction"),
        409,
        data=b"x",  # finalized
        query="name=subtraction.2.bt2",
    ),
    ("GET", "/api/subtractions/<subtraction_id>/files/<name>"): Row(
        USER, own_job="subtraction", params={"name": "subtraction.1.bt2"}
    ),
    # ---------------------------------------------------------------- uploads
    ("GET", "/api/uploads"): Row(USER, hides=("upload_reads", "upload_reference")),
    ("POST", "/api/uploads"): Row(perm("upload_file"), 201, data=b">a\nACGT\n", query="name=new.fa&type=subtraction"),
    ("GET", "/api/uploads/<upload_id>"): Row(
        upload("create_sample"), own_job="sample", params={"upload_id": "<upload_reads>"}
    ),
    ("DELETE", "/api/uploads/<upload_id>"): Row(upload("remove_file"), 204),
    # ---------------------------------------------------------------- HMMs
    ("GET", "/api/hmms"): Row(USER),
    ("GET", "/api/hmms/<hmm_id>"): Row(USER),
    ("GET", "/api/hmms/status"): Row(USER, other_job=200),
    ("GET", "/api/hmms/status/updates"): Row(USER),
    ("POST", "/api/hmms/status/updates"): Row(
        perm("modify_hmm"), 202, json={"upload_id": "<upload_hmm>", "annotations_upload_id": "<upload_annotations>"}
    ),
    ("GET", "/api/hmms/files/<name>"): Row(USER, other_job=200, params={"name": "profiles.hmm"}),  # NuVs jobs read it
    # ---------------------------------------------------------------- jobs and processes
    ("GET", "/api/jobs"): Row(USER, hides=("job_id", "analysis_job")),
    ("GET", "/api/jobs/counts"): Row(USER),  # numbers only: what an autoscaler polls
    ("GET", "/api/jobs/<job_id>"): Row(PROCESS_READ, own_job="analysis", params={"job_id": "<analysis_job>"}),
    ("PUT", "/api/jobs/<job_id>/cancel"): Row(perm("cancel_job"), 409),  # already complete
    ("DELETE", "/api/jobs/<job_id>"): Row(perm("remove_job"), 204),
    # Running: 409 while its heartbeat is fresh, 200 (claimed again, as after a crash) once it is stale.
    ("POST", "/api/jobs/<job_id>/claim"): Row(job("analysis"), (200, 409), params={"job_id": "<analysis_job>"}),
    ("PUT", "/api/jobs/<job_id>/ping"): Row(job("analysis"), params={"job_id": "<analysis_job>"}),
    ("POST", "/api/jobs/<job_id>/status"): Row(
        job("analysis"), 201, json={"state": "running", "progress": 0.5}, params={"job_id": "<analysis_job>"}
    ),
    ("GET", "/api/processes"): Row(USER, hides=("process_id",)),
    ("GET", "/api/processes/<process_id>"): Row(PROCESS_READ),
    ("DELETE", "/api/processes/<process_id>"): Row(perm("cancel_job"), 202),  # or the process's own user
    # ---------------------------------------------------------------- administration
    ("GET", "/api/groups"): Row(USER),
    ("POST", "/api/groups"): Row(ADMIN, 201, json={"group_id": "newgroup"}),
    ("GET", "/api/groups/<group_id>"): Row(USER),
    ("PATCH", "/api/groups/<group_id>"): Row(ADMIN, json={"permissions": {"upload_file": True}}),
    ("DELETE", "/api/groups/<group_id>"): Row(ADMIN, 204),
    ("GET", "/api/users"): Row(ADMIN),
    ("POST", "/api/users"): Row(ADMIN, 201, json={"user_id": "newuser", "password": "hunter2hunter2"}),
    ("GET", "/api/users/<user_id>"): Row(ADMIN),
    ("PATCH", "/api/users/<user_id>"): Row(ADMIN, json={"force_reset": True}),
    ("DELETE", "/api/users/<user_id>"): Row(ADMIN, 204),
    ("GET", "/api/webhooks"): Row(ADMIN),
    ("POST", "/api/webhooks"): Row(ADMIN, 201, json={"url": "http://127.0.0.1:1/other", "events": ["index.ready"]}),
    ("GET", "/api/webhooks/<webhook_id>"): Row(ADMIN),
    ("PATCH", "/api/webhooks/<webhook_id>"): Row(ADMIN, json={"active": False}),
    ("DELETE", "/api/webhooks/<webhook_id>"): Row(ADMIN, 204),
    ("GET", "/api/webhooks/<webhook_id>/deliveries"): Row(ADMIN),
}


def all_routes(app) -> set[tuple[str, str]]:
    return {(method, rule) for method, rule, _, _ in routes(app)}


def test_the_matrix_names_every_route(app):
    missing = sorted(all_routes(app) - set(MATRIX))
    stale = sorted(set(MATRIX) - all_routes(app))
    assert not missing, f"routes missing from MATRIX (say who may call them): {missing}"
    assert not stale, f"MATRIX rows for routes that no longer exist: {stale}"


def test_the_matrix_agrees_with_how_views_declare_access(app):
    access = {(method, rule): a for method, rule, _, a in routes(app)}
    for key, row in MATRIX.items():
        if row.right.kind == "public":
            assert access[key] == "public", key
        elif row.right.kind == "job":
            assert access[key] == "job", key
        elif row.own_job or row.other_job != 403:
            assert access[key] == "user_or_job", key
        else:
            assert access[key] == "user", key


def substitute(text: str, world: World, params: dict) -> str:
    values = {**world.ids, **substitute_json(params, world, {})}
    return PLACEHOLDER.sub(lambda m: values[m.group(2)], text)


def substitute_json(value, world: World, params: dict):
    if isinstance(value, dict):
        return {k: substitute_json(v, world, params) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_json(v, world, params) for v in value]
    if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
        return world.ids[value[1:-1]]
    return value


def refused_id(row: Row, role: str) -> str:
    """``not_permitted`` for a missing permission, administration or the wrong kind of caller;
    ``insufficient_rights`` for rights on an object (a reference, a sample, another job's object)."""
    kind = row.right.kind
    if kind == "job" or (role == "other_job" and not row.own_job):
        return "insufficient_rights" if role == "other_job" and kind == "job" else "not_permitted"
    if role == "other_job":
        return "insufficient_rights"
    return (
        "insufficient_rights"
        if kind
        in (
            "ref_read",
            "ref",
            "sample_read",
            "sample_write",
            "sample_write+ref_read",
            "sample_owner",
            "upload",
            "process",
        )
        else "not_permitted"
    )


@pytest.fixture
def world(client, db, settings, stub_broker, make_user, tmp_path):
    return World(client, db, settings, stub_broker, make_user, tmp_path)


def test_rights_matrix_on_real_objects(app, client, world):
    """Each route x role gives the status the table says; the first mismatches are listed together."""
    problems, calls = [], 0
    for (method, rule), row in sorted(MATRIX.items(), key=lambda item: (item[0][1], item[0][0])):
        path = substitute(rule, world, row.params) + (f"?{substitute(row.query, world, {})}" if row.query else "")
        body = {"json": substitute_json(row.json, world, row.params)} if row.json is not None else {}
        if row.data is not None:
            body = {"data": row.data}
        roles = row.right.roles()
        if row.own_job:
            roles.append((f"{row.own_job}_job", None, True))
        for role, setup, passes in roles:
            if setup == "read_only":
                world.db.samples.update_one({"_id": world.ids["sample_id"]}, {"$set": {"group_write": False}})
            headers = world.auth[role] if role != "anonymous" else {}
            response = client.open(path, method=method, headers=headers, **body)
            calls += 1
            if role == "other_job":
                passes = row.other_job == 200
            if passes and role == f"{row.own_job}_job" and row.job_ok:
                want = (row.job_ok,)
            elif passes:
                want = row.ok if isinstance(row.ok, tuple) else (row.ok,)
            else:
                want = (401,) if role == "anonymous" else (403,)
            got, text = response.status_code, response.get_data().decode("utf-8", "replace")
            if got not in want:
                problems.append(f"{method} {rule} as {role} [{row.right}]: {got}, want {want}: {text[:150]}")
            elif got == 403 and response.json["id"] != refused_id(row, role):
                problems.append(
                    f"{method} {rule} as {role} [{row.right}]: 403 {response.json['id']}, want {refused_id(row, role)}"
                )
            for key in row.hides:
                if role in ("plain", "admin") and (world.ids[key] in text) != (role == "admin"):
                    problems.append(f"{method} {rule} as {role}: {key} {'missing' if role == 'admin' else 'listed'}")
            if setup or (method != "GET" and got < 400):
                world.restore()
    print(f"{calls} calls")
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems)


def test_index_lists_hold_only_indexes_of_readable_references(client, world):
    """Like ``GET /api/indexes/:id`` (403 without read right on the reference), both index lists."""
    index_id = world.ids["index_id"]
    for query in ("", "?ready=true"):
        for role, listed in (("plain", False), ("perm_all", False), ("ref_reader", True), ("admin", True)):
            response = client.get(f"/api/indexes{query}", headers=world.auth[role])
            assert response.status_code == 200
            assert (index_id in response.get_data(as_text=True)) is listed, (query, role)


def test_cloning_needs_read_right_on_the_source(client, world):
    """``create_ref`` lets a user create references, not copy one they may not read (nor learn it exists)."""
    creator = world.auth["perm_create_ref"]
    missing = client.post("/api/refs", json={"name": "Copy", "clone_from": "nothere"}, headers=creator)
    private = client.post("/api/refs", json={"name": "Copy", "clone_from": world.ids["ref_id"]}, headers=creator)
    assert (
        (private.status_code, private.json)
        == (missing.status_code, missing.json)
        == (
            400,
            {"id": "bad_request", "message": "Source reference does not exist"},
        )
    )
    assert world.db.refs.count_documents({"name": "Copy"}) == 0


def test_a_private_reference_answers_no_accession_lookup(client, world):
    """Whether an accession is in a reference one may not read gets one answer, found or not."""
    path = f"/api/samples/{world.ids['sample_id']}/alignments"
    answers = [
        client.post(path, json={"accession": accession, "ref_id": world.ids["ref_id"]}, headers=world.auth["lab"])
        for accession in ("NC_001367.1", "NC_999999.1")
    ]
    assert [(r.status_code, r.json) for r in answers] == [(403, answers[0].json)] * 2
    by_id = [
        client.post(path, json={"sequence_id": sequence_id}, headers=world.auth["lab"])
        for sequence_id in (world.ids["sequence_id"], "nothere")
    ]
    assert [(r.status_code, r.json["message"]) for r in by_id] == [(400, "Sequence does not exist")] * 2
    assert world.db.alignments.count_documents({"user.id": "lab"}) == 0


def test_a_private_samples_name_is_not_in_use_for_those_who_cannot_read_it(client, world):
    name = world.db.samples.find_one({"_id": world.ids["sample_id"]})["name"]
    body = {"name": name, "files": [world.ids["upload_reads"]]}
    seen = client.post("/api/samples", json=body, headers=world.auth["admin"])
    assert (seen.status_code, seen.json["message"]) == (400, "Sample name is already in use")
    unseen = client.post("/api/samples", json=body, headers=world.auth["perm_create_sample"])
    assert unseen.status_code == 201, unseen.json
    assert world.db.samples.count_documents({"name": name}) == 2


USES_OF_UPLOADS = {
    # upload -> (the request that uses it, as the route's permission holder who is not its uploader)
    "upload_reads": ("POST", "/api/samples", "perm_all", {"name": "Taken", "files": ["<upload>"]}),
    "upload_subtraction": ("POST", "/api/subtractions", "perm_all", {"name": "Taken", "upload_id": "<upload>"}),
    "upload_reference": ("POST", "/api/refs", "perm_all", {"name": "Taken", "import_from": "<upload>"}),
    "upload_hmm": (
        "POST",
        "/api/hmms/status/updates",
        "perm_all",
        {"upload_id": "<upload>", "annotations_upload_id": "<upload>"},
    ),
}


def with_upload(body: dict, upload_id: str) -> dict:
    return {k: ([upload_id] if v == ["<upload>"] else upload_id if v == "<upload>" else v) for k, v in body.items()}


@pytest.mark.parametrize("key", sorted(USES_OF_UPLOADS))
def test_another_users_upload_is_used_like_a_missing_one(client, world, key):
    """Someone else's upload id in a body gets the very answer of an id that does not exist; nothing is made."""
    method, path, role, body = USES_OF_UPLOADS[key]
    missing = client.open(path, method=method, json=with_upload(body, "nothere"), headers=world.auth[role])
    theirs = client.open(path, method=method, json=with_upload(body, world.ids[key]), headers=world.auth[role])
    assert missing.status_code == 400
    assert (theirs.status_code, theirs.json) == (missing.status_code, with_upload_id(missing.json, world.ids[key]))
    assert not world.db.uploads.find_one({"_id": world.ids[key], "reserved": True})
    assert world.db.processes.count_documents({"user.id": role}) == 0


def with_upload_id(body: dict, upload_id: str) -> dict:
    """An error message may name the id it was given."""
    return {k: v.replace("nothere", upload_id) if isinstance(v, str) else v for k, v in body.items()}


def test_uploads_are_listed_only_to_their_uploader_and_administrators(client, world):
    for role, sees in (("perm_create_sample", {"upload_reads"}), ("perm_all", set()), ("admin", set(USES_OF_UPLOADS))):
        listed = {
            doc["id"] for doc in client.get("/api/uploads?per_page=100", headers=world.auth[role]).json["documents"]
        }
        for key in USES_OF_UPLOADS:
            assert (world.ids[key] in listed) is (key in sees), (role, key)


def test_jobs_show_what_they_are_about_only_to_readers_of_their_objects(client, world):
    """``args`` and ``context`` name private objects: the queue's keepers see the jobs, not what they work on."""
    private = (world.ids["ref_id"], world.ids["sample_id"])
    for path in (f"/api/jobs/{world.ids['analysis_job']}", f"/api/processes/{world.ids['process_id']}", "/api/jobs"):
        keeper = client.get(path, headers=world.auth["perm_cancel_job"])
        assert keeper.status_code == 200
        assert not any(object_id in keeper.get_data(as_text=True) for object_id in private), path
        admin = client.get(path, headers=world.auth["admin"])
        assert all(object_id in admin.get_data(as_text=True) for object_id in private), path
    job = client.get(f"/api/jobs/{world.ids['analysis_job']}", headers=world.auth["perm_cancel_job"]).json
    assert job["id"] == world.ids["analysis_job"] and "args" not in job and "context" not in job
    # The sample's owner reads their own job on it whole; not their job on someone else's upload.
    context = {"sample_id": world.ids["sample_id"]}
    readable, _ = processes.create_process(world.db, "create_sample", user_id="owner", workflow=True, context=context)
    own = client.get(f"/api/jobs/{readable['_id']}", headers=world.auth["owner"]).json
    assert own["context"] == context and "args" in own
    taken = client.get(f"/api/jobs/{world.ids['sample_job']}", headers=world.auth["owner"]).json
    assert "context" not in taken and world.ids["upload_reads"] not in str(taken)
    # A user's list holds their own processes only.
    listed = client.get("/api/processes?per_page=100", headers=world.auth["owner"]).json["documents"]
    assert {doc["id"] for doc in listed} == {world.ids["sample_job"], readable["_id"]}
