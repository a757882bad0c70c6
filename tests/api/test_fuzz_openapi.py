"""Fuzzing the events API from its own OpenAPI document (schemathesis): no input makes a 500."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from customers import api_keys
from triggerhub.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@pytest.fixture
def wsgi_keeps_the_test_connection():
    """Like Django's test client: the request must not close the test's database connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(db, wsgi_keeps_the_test_connection):
    _, key = api_keys.create("fuzzer", rate_limit_per_minute=1_000_000)
    return f"Bearer {key}"


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_a_server_error(case, bearer):
    for headers in ({"Authorization": bearer}, {}):
        response = case.call(headers=headers)
        assert response.status_code < 500, f"{case.method} {case.path} -> {response.status_code}: {response.text[:500]}"
