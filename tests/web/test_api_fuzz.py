"""schemathesis against the API's OpenAPI document: whatever it sends, within the schema or
at its edges, the API answers without a server error (and with JSON errors)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.web.site import Site, site_fixture


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from site_fixture(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def api(site: Site) -> Any:
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", site.app)


@pytest.fixture(scope="module")
def auth(site: Site) -> dict[str, str]:
    return {"authorization": f"Bearer {site.token('audrey')}"}


def test_no_server_errors(api: Any, auth: dict[str, str]) -> None:
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def no_server_error(case: Any) -> None:
            response = case.call(headers=auth)
            assert response.status_code < 500, (case.path, case.query, response.text[:300])
            if response.status_code >= 400:
                assert set(response.json()) == {"error"}

        no_server_error()
