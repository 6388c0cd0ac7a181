"""The loop on the packaged MiniLM and the real SQuAD slice: teacher fine-tune, baselines, INT8 subnets."""

from __future__ import annotations

import httpx
import pytest

from api.server import ServiceThread, free_port
from nas.config import Settings
from tests.helpers import wait_for_job

pytestmark = [pytest.mark.slow, pytest.mark.soak]  # fine-tunes MiniLM and compares speeds: `make test-soak`, alone


def test_minilm_int8_subnets_beat_the_fp32_teacher(tmp_path, squad_files, ray_local) -> None:  # type: ignore[no-untyped-def]
    train, evalf = squad_files
    spec = {
        "name": "minilm on squad slice",
        "base_model": "minilm",
        "task": {
            "train_file": train,
            "eval_file": evalf,
            "max_seq_length": 128,
            "doc_stride": 48,
            "max_eval_examples": 60,
            "calibration_samples": 16,
        },
        # every point of this space is smaller than the teacher
        "search_space": {"layers": [2, 4], "heads": [12], "ffn": [768]},
        "targets": ["native"],
        "budget": {"trials": 2},
        "sampler": "random",
        "teacher": {"epochs": 1.0, "batch_size": 16, "learning_rate": 1e-4, "max_train_examples": 400},
        "measure": {"iterations": 30, "seconds": 1.0, "throughput_batch": 8, "max_repeats": 2},
    }
    settings = Settings(data_dir=tmp_path / "data", port=free_port())
    with ServiceThread(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        r = client.post("/api/v1/jobs", json=spec)
        assert r.status_code == 201, r.text
        job = wait_for_job(client, r.json()["id"], timeout=1500)
        assert job["status"] == "completed", job["error"]
        assert job["teacher_metrics"]["f1"] > 0 and job["teacher_metrics"]["steps"] > 0
        fp32 = next(b for b in job["baselines"] if b["precision"] == "fp32")
        fp32_p50 = fp32["measurements"][0]["p50_ms"]
        trials = client.get(f"/api/v1/jobs/{job['id']}/trials").json()
        done = [t for t in trials if t["state"] == "completed"]
        assert done, [t["error"] for t in trials]
        for t in done:
            assert t["f1"] > 0
            assert t["measurements"][0]["p50_ms"] < fp32_p50, (t["measurements"][0], fp32["measurements"][0])
        front = client.get(f"/api/v1/jobs/{job['id']}/pareto").json()["trials"]
        assert front
