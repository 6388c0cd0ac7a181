"""Measurements own their node: never beside another measurement, a build or an evaluation.

Two trials are built concurrently (one CPU each) and each is measured on two targets; the
wall-clock windows recorded by the tasks themselves must not overlap where exclusivity says so.
"""

from __future__ import annotations

import httpx
import pytest

from api.server import ServiceThread, free_port
from nas.config import Settings
from tests.helpers import wait_for_job
from tests.test_loop_tiny import tiny_spec


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@pytest.mark.soak  # 2 min on zen3: `make test-soak` (CI's 30 minutes)
def test_measurements_never_overlap_builds_or_each_other(tmp_path, tiny_qa_model, squad_files, ray_local) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", port=free_port(), max_concurrent_trials=2)
    spec = tiny_spec(tiny_qa_model, *squad_files, targets=["native", "cascadelake"], budget={"trials": 3, "max_concurrent": 2}, seed=5)
    spec["search_space"] = {"layers": [1, 2, 3, 4], "heads": [1, 2, 4], "ffn": [32, 64, 128]}  # 36 configs: few repeats
    with ServiceThread(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        job_id = client.post("/api/v1/jobs", json=spec).raise_for_status().json()["id"]
        job = wait_for_job(client, job_id, timeout=900)
        assert job["status"] == "completed", job["error"]
        trials = [t for t in client.get(f"/api/v1/jobs/{job_id}/trials").json() if "build_started_at" in (t["stage_seconds"] or {})]
    builds = [(t["stage_seconds"]["build_started_at"], t["stage_seconds"]["build_finished_at"]) for t in trials]
    measures = []
    for t in trials:
        assert {m["target"] for m in t["measurements"]} == {"native", "cascadelake"}, "speed on every target"
        for m in t["measurements"]:
            measures.append((m["fingerprint"]["started_at"], m["fingerprint"]["finished_at"]))
            assert m["fingerprint"]["node_id"]
    for b in job["baselines"]:
        for m in b["measurements"]:
            measures.append((m["fingerprint"]["started_at"], m["fingerprint"]["finished_at"]))
    assert len(trials) >= 2 and len(measures) >= 2 * len(trials)
    # Two trials are in flight at once, so builds and measurements compete for the node; whether two
    # builds overlap depends on how fast Ray starts a second worker, so it is not asserted.
    for i, a in enumerate(measures):
        assert not any(_overlap(a, b) for b in measures[i + 1 :]), "two measurements overlapped"
        assert not any(_overlap(a, b) for b in builds), "a measurement overlapped a build"
