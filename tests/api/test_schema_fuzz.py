"""Hostile input on every endpoint: schemathesis generates requests from /api/openapi.json.

Run as an administrator and as a user without rights: no request may end in a 5xx, and
every response must be one the document allows. A second run sends what the document forbids
(out-of-range pages and versions, wrong types, missing fields): each must be refused with a 4xx.
Hypothesis is derandomized so runs repeat.
"""

import base64

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ringspot.core import auth

EXAMPLES_PER_OPERATION = 5
NEGATIVE_EXAMPLES_PER_OPERATION = 2
#: Credentials are supplied on purpose, so the auth-probing checks do not apply.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def authorizations(db) -> list[str]:
    """Basic headers of an administrator and of a user without any right."""
    headers = []
    for user_id, administrator in (("fuzz_admin", True), ("fuzz_nobody", False)):
        auth.create_user(db, user_id, "fuzzing-password", administrator=administrator)
        _, key = auth.create_api_key(db, db.users.find_one({"_id": user_id}), "fuzz", {})
        headers.append("Basic " + base64.b64encode(f"{user_id}:{key}".encode()).decode())
    return headers


def fuzz(operation, headers: list[str], failures: list[str], mode=GenerationMode.POSITIVE) -> None:
    negative = mode == GenerationMode.NEGATIVE

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=NEGATIVE_EXAMPLES_PER_OPERATION if negative else EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        for authorization in headers:
            response = case.call(headers={"Authorization": authorization})
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")
                return
            if negative:
                continue  # what the document forbids is refused somehow; only a 5xx is wrong
            try:
                case.validate_response(response, checks=CHECKS)
            except BaseExceptionGroup as error:  # schemathesis check failures, reported with the others
                failures.append(f"{case.method} {case.formatted_path}: {str(error)[:300]}")
                return

    run()


def test_no_server_errors_and_responses_match_the_document(app, db):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    headers = authorizations(db)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operations += 1
        fuzz(result.ok(), headers, failures)
    assert operations > 80
    assert not failures, "\n".join(failures)


def test_what_the_document_forbids_is_refused_without_server_errors(app, db):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    headers = authorizations(db)
    failures: list[str] = []
    for result in schema.get_all_operations():
        fuzz(result.ok(), headers, failures, GenerationMode.NEGATIVE)
    assert not failures, "\n".join(failures)
