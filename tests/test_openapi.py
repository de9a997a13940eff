"""schemathesis against the fake over a socket: requests generated from an OpenAPI of
the v2 message API the fake serves (tests/data/qstash-v2.openapi.yaml), valid and
invalid alike. Whatever comes, no answer is a 5xx, and each has a status, content type
and body the file allows. The ``fuzz`` extra installs schemathesis (``make test`` does);
without it these tests are skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import checks  # noqa: E402
from schemathesis.specs.openapi import checks as openapi_checks  # noqa: E402

from pytest_qstash_tasks import QStashTasksServer  # noqa: E402

SCHEMA = schemathesis.openapi.from_path(Path(__file__).parent / "data" / "qstash-v2.openapi.yaml")
CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


AUTH = {"Authorization": "Bearer t"}


@pytest.fixture
def server(qstash_tasks_server: QStashTasksServer) -> QStashTasksServer:
    # Generated requests repeat themselves, and many are refused: neither is this
    # test's failure.
    qstash_tasks_server.assert_all_requests_served = False
    requests.post(
        qstash_tasks_server.base_url + "/v2/topics/orders/endpoints",
        json={"endpoints": [{"url": "https://app.example.com/orders"}]},
        headers=AUTH,
        timeout=10,
    ).raise_for_status()
    return qstash_tasks_server


@pytest.mark.qstash_tasks(max_identical_requests=1_000_000, token="t")
@SCHEMA.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_v2_api_answers_as_its_openapi_says(
    case: schemathesis.Case, server: QStashTasksServer
) -> None:
    sent = case.as_transport_kwargs(base_url=server.base_url, headers=AUTH)
    # schemathesis folds the "//" of a destination URL in the path into one "/": the
    # path as the file writes it.
    sent["url"] = server.base_url + case.formatted_path
    answer = requests.request(**sent, timeout=10)
    case.validate_response(answer, checks=CHECKS)
    assert server._server.internal_errors == []  # a bug in the fake: a 500 and a record
