"""Property-based run against the OpenAPI spec: no generated request may cause a 5xx.

The schema comes from the app factory (no server needed at collection); the requests go to
the real service over HTTP, with a write token so that every write endpoint is exercised.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.main import create_app
from api.server import ServiceThread, free_port
from nas.config import Settings
from nas.store.db import make_engine, session_factory, upgrade
from nas.store.tokens import create_token

CASES: list[tuple[str, str, int]] = []

schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi()).exclude(path_regex=r".*/events$")


@pytest.fixture(scope="module")
def live(tmp_path_factory, ray_local):  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp("schemathesis")
    s = Settings(data_dir=data_dir, port=free_port(), auth="required")
    upgrade(s.resolved_db_url())
    with session_factory(make_engine(s.resolved_db_url())).begin() as sess:
        token = create_token(sess, scope="write")
    with ServiceThread(s) as url:
        yield url, token
    print(f"\nschemathesis: {len(CASES)} generated requests, {len({(m, p) for m, p, _ in CASES})} operations, no 5xx")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case, live) -> None:  # type: ignore[no-untyped-def]
    url, token = live
    response = case.call(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    CASES.append((case.method, case.operation.label, response.status_code))
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:500]}"
