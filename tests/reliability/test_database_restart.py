"""PostgreSQL restarted mid-job (the real server on this machine): the job rides out the outage and
completes; no completed trial is lost or changed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from api.server import ServiceThread, free_port
from nas.config import Settings
from tests.helpers import wait_for_job
from tests.store.conftest import _drop, _pg_database
from tests.test_loop_tiny import tiny_spec


def _restart_postgres() -> float:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]
    t0 = time.monotonic()
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True, timeout=120)
    return time.monotonic() - t0


@pytest.mark.postgres
@pytest.mark.serial  # every other PostgreSQL test would see the outage too
def test_postgres_restart_mid_job(tmp_path, ray_local, tiny_qa_model, squad_files) -> None:  # type: ignore[no-untyped-def]
    if not Path("/etc/postgresql").is_dir():
        pytest.skip("no local PostgreSQL cluster to restart")
    name = _pg_database()
    settings = Settings(data_dir=tmp_path / "data", port=free_port(), db_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    spec = tiny_spec(tiny_qa_model, *squad_files, name="pg restart", budget={"trials": 3})
    try:
        with ServiceThread(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
            job_id = client.post("/api/v1/jobs", json=spec).raise_for_status().json()["id"]
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                trials = client.get(f"/api/v1/jobs/{job_id}/trials").json()
                if any(t["state"] == "completed" for t in trials):
                    break
                time.sleep(0.5)
            before = {t["number"]: t for t in trials if t["state"] == "completed"}
            assert before, "no trial completed before the restart"
            outage = _restart_postgres()
            job = None
            for _ in range(120):  # the API's own reads fail while the server restarts: retry them
                try:
                    job = wait_for_job(client, job_id, timeout=600)
                    break
                except httpx.HTTPStatusError:
                    time.sleep(1)
            assert job is not None
            after = {t["number"]: t for t in client.get(f"/api/v1/jobs/{job_id}/trials").json()}
    finally:
        _drop(name)
    assert job["status"] == "completed", job["error"]
    for number, t in before.items():
        assert after[number]["state"] == "completed" and after[number]["f1"] == t["f1"] and after[number]["finished_at"] == t["finished_at"]
    assert sum(t["state"] == "completed" for t in after.values()) == 3, (outage, after)
