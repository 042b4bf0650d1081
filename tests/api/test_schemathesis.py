"""Property-based tests of the whole API from its own OpenAPI schema (schemathesis).

Schemathesis generates valid and invalid requests for every operation (random bytes for the
uploads, odd option values, missing fields). Whatever it sends, the server must never answer 5xx,
must answer with a status the schema documents, and its JSON must match the documented models.
"""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from emolens.api.app import create_app  # noqa: E402
from emolens.api.routes import list_shipped_models  # noqa: E402

from .conftest import FakeFactory, fake_shipped, make_settings  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _app(**kw: object) -> object:
    app = create_app(make_settings(max_upload_bytes=200_000, max_batch_files=4, **kw), analyzer_factory=FakeFactory())
    app.dependency_overrides[list_shipped_models] = fake_shipped
    return app


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())
keyed_schema = schemathesis.openapi.from_asgi("/openapi.json", _app(api_key="k"))


@schema.parametrize()
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_documented_answers(case: Any) -> None:
    response = case.call()
    case.validate_response(response, checks=CHECKS)


@keyed_schema.parametrize()
@settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_when_a_key_is_required(case: Any) -> None:
    response = case.call()
    case.validate_response(response, checks=CHECKS)
    if case.path.startswith("/v1/") and response.status_code == 401:
        assert response.json()["error"]["type"] == "Unauthorized"
