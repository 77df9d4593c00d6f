"""Schema-driven fuzzing of the HTTP API (schemathesis, in-process over ASGI): whatever a
client sends to an operation of the OpenAPI schema, fitting it or not, the answer is never a
5xx and every error is JSON {"error", "detail"}. Bounded by example counts; derandomized by
the suite's hypothesis profile (tests/conftest.py), so every run tries the same cases."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from mien.api.errors import payload  # noqa: E402

# Every operation of the schema (test_every_operation_is_fuzzed keeps the list whole), with how
# many cases each mode tries: inputs that fit the schema and inputs that break it. Operations
# without parameters have no wrong input to send.
OPERATIONS = {("/v1/analyze", "POST"): 50, ("/v1/analyze/batch", "POST"): 50,
              ("/v1/models", "GET"): 10, ("/healthz", "GET"): 3, ("/readyz", "GET"): 3}
CASES = [(path, method, mode, n) for (path, method), n in OPERATIONS.items()
         for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if mode is GenerationMode.POSITIVE or path.startswith("/v1/")]


@pytest.fixture(params=[None, "sesame"], ids=["open", "with-api-key"])
def api_schema(request, make_app):
    app = make_app(workers=1, api_key=request.param)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def assert_well_formed(response) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == set(payload("", "")), body
        assert isinstance(body["error"], str) and body["error"]
        assert isinstance(body["detail"], str) and body["detail"]
        assert " object at 0x" not in body["detail"]  # no Python reprs


def test_every_operation_is_fuzzed(api_schema):
    found = {(op.ok().path, op.ok().method.upper()) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("path", "method", "mode", "examples"), CASES)
def test_no_request_gets_a_5xx_or_a_malformed_error(api_schema, path, method, mode, examples):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, suppress_health_check=list(HealthCheck))
    def fuzz(case):
        assert_well_formed(case.call())

    fuzz()
