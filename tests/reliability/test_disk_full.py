"""The artifact store fills up mid-job (a 14 MiB tmpfs): trials that cannot write fail with the
reason; the job finishes or fails with a stored reason; every stored artifact still verifies."""

from __future__ import annotations

import hashlib
import subprocess

import httpx
import pytest

from api.server import ServiceThread, free_port
from nas.config import Settings
from tests.helpers import wait_for_job
from tests.test_loop_tiny import tiny_spec


@pytest.fixture
def small_disk(tmp_path):  # type: ignore[no-untyped-def]
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=14m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_artifact_store_fails_trials_with_the_reason_and_loses_nothing(tmp_path, small_disk, ray_local, tiny_qa_model, squad_files) -> None:  # type: ignore[no-untyped-def]
    # the database lives elsewhere: only the artifact store fills up
    settings = Settings(data_dir=small_disk, db_url=f"sqlite:///{tmp_path / 'hwnas.db'}", port=free_port())
    spec = tiny_spec(tiny_qa_model, *squad_files, name="disk full", search_space={"layers": [2, 4], "heads": [4], "ffn": [64, 128]}, budget={"trials": 6}, sampler="grid")
    with ServiceThread(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        job_id = client.post("/api/v1/jobs", json=spec).raise_for_status().json()["id"]
        job = wait_for_job(client, job_id, timeout=600)
        trials = client.get(f"/api/v1/jobs/{job_id}/trials").json()
        reasons = [job["error"] or ""] + [t["error"] or "" for t in trials if t["state"] == "failed"]
        assert job["status"] in ("completed", "failed")
        assert any("No space left on device" in r for r in reasons), reasons  # the store did fill up, and it says so
        if job["status"] == "failed":
            assert job["error"]
        for t in trials:
            if t["state"] != "completed" or "reused_from_trial" in (t["stage_seconds"] or {}):
                continue
            r = client.get(f"/api/v1/jobs/{job_id}/trials/{t['number']}/model")
            assert r.status_code == 200, r.text  # its files verify against the checksums taken when it was stored
            assert hashlib.sha256(r.content).hexdigest() == r.headers["X-Checksum-SHA256"]
