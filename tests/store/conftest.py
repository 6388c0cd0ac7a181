"""One store test class, two backends: embedded SQLite and the real PostgreSQL server on this machine."""

from __future__ import annotations

import uuid

import pytest

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_database() -> str:
    """A fresh database per test, so runs never see each other's rows."""
    import psycopg

    name = f"hwnas_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True, connect_timeout=5) as c:
            c.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not reachable (.ci/run starts it): {exc}")
    return name


def _drop(name: str) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hwnas.db'}"
        return
    name = _pg_database()
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    _drop(name)
