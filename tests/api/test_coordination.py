"""The API and the coordinator meet only in the store: with no coordinator running (``external``
mode, nothing started), the API still takes jobs, reports itself not ready with the reason, and
cancels a queued job at once; a coordinator started afterwards picks up only what is still queued."""

from __future__ import annotations

import httpx

from api.server import ServiceThread, free_port
from nas.config import Settings
from nas.coordinator import Coordinator
from nas.store.db import make_engine, session_factory
from tests.helpers import wait_for_job, wait_until
from tests.test_loop_tiny import tiny_spec


def test_jobs_wait_in_the_store_for_a_coordinator(tmp_path, ray_local, tiny_qa_model, squad_files) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", port=free_port(), coordinator="external", coordinator_poll_s=0.2)
    with ServiceThread(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        r = client.get("/api/v1/ready")
        assert r.status_code == 503 and "coordinator not running" in r.json()["detail"]
        assert client.get("/api/v1/workers").status_code == 503
        waiting = client.post("/api/v1/jobs", json=tiny_spec(tiny_qa_model, *squad_files, name="waits", budget={"trials": 1})).raise_for_status().json()["id"]
        dropped = client.post("/api/v1/jobs", json=tiny_spec(tiny_qa_model, *squad_files, name="dropped")).raise_for_status().json()["id"]
        r = client.post(f"/api/v1/jobs/{dropped}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"  # queued: cancelled at once
        assert client.get(f"/api/v1/jobs/{waiting}").json()["status"] == "queued"

        coordinator = Coordinator(settings, session_factory(make_engine(settings.resolved_db_url())))
        coordinator.start()  # what `hwnas coordinator` does, here in-process
        try:
            ready = wait_until(lambda: (r := client.get("/api/v1/ready")).status_code == 200 and r.json(), 30, "readiness")
            assert ready["ray_nodes"] >= 1 and ready["coordinator"]["heartbeat_age_s"] < 15
            assert client.get("/api/v1/workers").json()[0]["targets"]
            job = wait_for_job(client, waiting, timeout=600)
        finally:
            coordinator.stop()
        assert job["status"] == "completed", job["error"]
        assert client.get(f"/api/v1/jobs/{dropped}").json()["status"] == "cancelled"  # never started
        assert client.get(f"/api/v1/jobs/{dropped}/trials").json() == []
