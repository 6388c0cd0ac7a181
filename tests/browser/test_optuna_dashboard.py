"""optuna-dashboard reads hwnas's database: its own app, served over HTTP, finds the job's study and trials."""

from __future__ import annotations

import threading
from typing import Any, Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest

from api.server import free_port


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def optuna_dashboard_url(service, finished_job) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """``optuna-dashboard <db-url>`` as its WSGI app on the service's database, on a loopback port."""
    import optuna
    import optuna_dashboard

    _, settings, _ = service
    storage = optuna.storages.RDBStorage(settings.resolved_db_url())
    server = make_server("127.0.0.1", free_port(), optuna_dashboard.wsgi(storage), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="optuna-dashboard", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        storage.remove_session()


def test_optuna_dashboard_finds_the_study_and_its_trials(optuna_dashboard_url, service, finished_job) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = service
    job_id = finished_job["id"]
    with httpx.Client(base_url=optuna_dashboard_url, timeout=60) as od:
        assert od.get("/dashboard/").status_code == 200  # its single-page app is served too
        studies = od.get("/api/studies").raise_for_status().json()["study_summaries"]
        study = next(s for s in studies if s["study_name"] == finished_job["study_name"])
        assert study["directions"] == ["maximize", "minimize"]
        detail = od.get(f"/api/studies/{study['study_id']}").raise_for_status().json()

    assert detail["name"] == f"hwnas-{job_id}"
    assert detail["objective_names"] == ["F1", "p90 latency native (ms)"]
    assert detail["user_attrs"] == [{"key": "hwnas:job_id", "value": job_id}] or {"key": "hwnas:job_id", "value": job_id} in detail["user_attrs"]

    ours = {t["number"]: t for t in client.get(f"/api/v1/jobs/{job_id}/trials").json()}
    theirs = {t["number"]: t for t in detail["trials"]}
    assert set(theirs) == set(ours)
    for number, t in ours.items():
        o = theirs[number]
        attrs = {a["key"]: a["value"] for a in o["user_attrs"]}
        assert "hwnas:config" in attrs
        if t["state"] == "completed":
            assert o["state"] == "Complete"
            assert o["values"][0] == pytest.approx(t["f1"])
            p90 = next(m["p90_ms"] for m in t["measurements"] if m["target"] == "native" and m["precision"] == "int8")
            assert o["values"][1] == pytest.approx(p90)
            assert float(attrs["hwnas:native:throughput_sps"]) == pytest.approx(t["measurements"][0]["throughput_sps"])
        else:
            assert o["state"] == "Fail" and attrs.get("hwnas:error")
    # its Pareto front is ours
    front = client.get(f"/api/v1/jobs/{job_id}/pareto", params={"target": "native"}).json()["trials"]
    assert {t["number"] for t in detail["best_trials"]} >= {t["number"] for t in front}
