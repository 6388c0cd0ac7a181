"""Security with the real app and store: every write endpoint refuses anonymous and read-only
callers, artifact paths cannot escape the artifact store, tokens never appear in logs or replies."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from api.main import create_app
from api.server import ServiceThread, free_port
from nas.config import Settings
from nas.store import repo
from nas.store.db import make_engine, session_factory, upgrade
from nas.store.models import Artifact, Trial
from nas.store.tokens import create_token

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
OPEN_WRITES = {"/ui/spec"}  # parses a spec file for the dashboard's form (read scope; nothing is stored)


@pytest.fixture(scope="module")
def secured(tmp_path_factory, ray_local):  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("secured")
    settings = Settings(data_dir=data, port=free_port(), auth="required")
    upgrade(settings.resolved_db_url())
    sessions = session_factory(make_engine(settings.resolved_db_url()))
    with sessions.begin() as s:
        read, write = create_token(s, scope="read", name="r"), create_token(s, scope="write", name="w")
        repo.create_job(s, job_id="e" * 32, spec={"targets": ["native"], "budget": {"trials": 1}}, synthetic=True)
        repo.update_job(s, "e" * 32, status="completed", stage="done")
        outside = data.parent / "outside"
        outside.mkdir(exist_ok=True)
        (outside / "openvino_model.xml").write_text("<secret/>")
        (outside / "model_card.json").write_text('{"secret": true}')
        trial = Trial(job_id="e" * 32, number=0, optuna_trial_id=0, state="completed", config={}, artifact_dir=str(outside), f1=1.0)
        trial.artifacts = [Artifact(job_id="e" * 32, name="openvino_model.xml", path=str(outside / "openvino_model.xml"), sha256="0" * 64, size_bytes=9)]
        s.add(trial)
    with ServiceThread(settings) as url:
        yield {"url": url, "read": read, "write": write, "settings": settings}


def _write_routes() -> list[tuple[str, str]]:
    """Every write operation the app declares (its OpenAPI document), path parameters filled in."""
    paths = create_app(Settings(auth="required")).openapi()["paths"]
    out = []
    for path, ops in paths.items():
        if path in OPEN_WRITES:
            continue
        for method in ops:
            if method.upper() in WRITE_METHODS:
                out.append((method.upper(), re.sub(r"\{[^}]+\}", "0", path.replace("{job_id}", "a" * 32))))
    return sorted(out)


def test_every_write_endpoint_refuses_no_token_and_read_tokens(secured) -> None:  # type: ignore[no-untyped-def]
    routes = _write_routes()
    assert ("POST", "/api/v1/jobs") in routes and ("DELETE", f"/api/v1/jobs/{'a' * 32}") in routes and len(routes) >= 4
    for method, path in routes:
        r = httpx.request(method, secured["url"] + path, json={})
        assert r.status_code == 401, (method, path, r.status_code)
        r = httpx.request(method, secured["url"] + path, json={}, headers={"Authorization": f"Bearer {secured['read']}"})
        assert r.status_code == 403 and "read-only" in r.text, (method, path, r.status_code)
        r = httpx.request(method, secured["url"] + path, json={}, headers={"Authorization": f"Bearer {secured['write']}"})
        assert r.status_code not in (401, 403), (method, path, r.status_code)


def test_artifact_paths_outside_the_store_are_never_served(secured) -> None:  # type: ignore[no-untyped-def]
    h = {"Authorization": f"Bearer {secured['read']}"}
    base = f"{secured['url']}/api/v1/jobs/{'e' * 32}/trials/0"
    model, card = httpx.get(base + "/model", headers=h), httpx.get(base + "/card", headers=h)
    assert model.status_code in (403, 404, 409) and b"secret" not in model.content
    assert card.status_code in (403, 404, 409) and "secret" not in card.text
    traversal = httpx.get(f"{secured['url']}/api/v1/jobs/..%2F..%2Fetc/trials/0/model", headers=h)
    assert traversal.status_code in (404, 422) and b"root:" not in traversal.content


def test_tokens_are_never_logged_or_returned(secured, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    h = {"Authorization": f"Bearer {secured['write']}"}
    bodies = [
        httpx.get(f"{secured['url']}/api/v1/jobs", headers=h).text,
        httpx.post(f"{secured['url']}/api/v1/jobs", json={"base_model": "x"}, headers=h).text,
        httpx.get(f"{secured['url']}/api/v1/jobs", headers={"Authorization": "Bearer " + secured["write"] + "x"}).text,
        httpx.get(f"{secured['url']}/metrics", headers=h).text,
        httpx.get(f"{secured['url']}/openapi.json").text,
    ]
    for token in (secured["read"], secured["write"]):
        assert all(token not in b for b in bodies)
        assert token not in caplog.text
    with session_factory(make_engine(secured["settings"].resolved_db_url()))() as s:
        stored = s.execute(__import__("sqlalchemy").text("select token_hash from hwnas_api_tokens")).scalars().all()
    assert stored and all(secured["write"] not in h and secured["read"] not in h for h in stored)
