"""Who may reach what, for every route of the API at once.

Per route and method: anonymous callers get 401 (unless the route is public), a job key
gets 403 on every route outside the Job API, and a job key never reaches another job's
objects. Finer rules (reference, sample and permission rights) are tested with each resource.
"""

import re

import pytest

from viroscope.core import processes

PUBLIC = {("POST", "/api/account/login"), ("GET", "/api/openapi.json")}


def routes(app):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", "nothere", rule.rule)
        access = getattr(app.view_functions[rule.endpoint], "access", "user")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule.rule, path, access


def test_every_route_needs_credentials(app, client):
    checked = 0
    for method, rule, path, access in routes(app):
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
    for method, rule, path, access in routes(app):
        if rule.startswith(prefix):
            response = plain_user.client.open(path, method=method, json={}, auth=(plain_user.id, plain_user.key))
            assert response.status_code == 403, f"{method} {rule} -> {response.status_code}"
