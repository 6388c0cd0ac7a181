"""Faults with real processes: a Ray worker killed mid-trial, the coordinator killed (-9) mid-job.

Each: the job finishes; the lost trial is failed with its reason; no completed trial is lost or
run again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from api.server import ServiceThread, free_port
from nas.config import Settings
from tests.helpers import wait_for_job, wait_until
from tests.test_loop_tiny import tiny_spec

ROOT = Path(__file__).resolve().parents[2]


def _build_workers() -> list[psutil.Process]:
    """This test process's own Ray build workers (Ray names a worker after the task it runs, ``ray::build``).

    Only descendants of this process: another test process (``pytest -n 2``) runs its own Ray beside it."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if any(part.startswith("ray::build") for part in p.cmdline()):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def test_a_worker_killed_mid_trial_fails_that_trial_and_its_retry_completes(tmp_path, ray_local, tiny_qa_model, squad_files) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", port=free_port(), trial_max_retries=1)
    spec = tiny_spec(tiny_qa_model, *squad_files, name="worker kill", budget={"trials": 2})
    with ServiceThread(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        job_id = client.post("/api/v1/jobs", json=spec).raise_for_status().json()["id"]
        wait_until(lambda: client.get(f"/api/v1/jobs/{job_id}").json()["stage"] == "search", 300, "the search stage")
        victim = wait_until(_build_workers, 120, "a running build task")[0]
        time.sleep(1.0)  # inside the build (extract, convert, INT8, F1 take seconds)
        victim.send_signal(signal.SIGKILL)
        job = wait_for_job(client, job_id, timeout=600)
        trials = client.get(f"/api/v1/jobs/{job_id}/trials").json()
    assert job["status"] == "completed", job["error"]
    failed = [t for t in trials if t["state"] == "failed"]
    completed = [t for t in trials if t["state"] == "completed"]
    assert len(failed) == 1 and "retry 1 of 1" in failed[0]["error"], failed
    assert "Worker" in failed[0]["error"] or "died" in failed[0]["error"].lower(), failed[0]["error"]
    assert len(completed) == 2  # the budget is spent on completed trials; the lost one did not count
    assert any(t["config"] == failed[0]["config"] and t["number"] > failed[0]["number"] for t in completed)  # the same subnet, again


def _serve(data_dir: Path, port: int, log: Path, **env_extra: str) -> subprocess.Popen:
    env = {**os.environ, "HWNAS_DATA_DIR": str(data_dir), "HWNAS_PORT": str(port), "HWNAS_RAY_NUM_CPUS": "2", **env_extra}
    env.pop("RAY_ADDRESS", None)
    with open(log, "ab") as out:  # the child keeps its own handle
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--log-level", "warning"], cwd=ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _up(url: str, proc: subprocess.Popen, log: Path) -> None:
    def ready() -> bool:
        assert proc.poll() is None, f"hwnas serve exited {proc.returncode}:\n{log.read_text()[-3000:]}"
        try:
            return httpx.get(url + "/api/v1/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 180, "hwnas serve to answer /health", interval=0.5)


def _kill_group(proc: subprocess.Popen) -> None:
    """kill -9 the service and everything it started (its in-process Ray too): a crashed host."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)


@pytest.mark.slow
def test_coordinator_killed_mid_job_resumes_without_losing_or_rerunning_completed_trials(tmp_path, tiny_qa_model, squad_files) -> None:  # type: ignore[no-untyped-def]
    data, port, log = tmp_path / "data", free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    spec = tiny_spec(tiny_qa_model, *squad_files, name="coordinator kill", budget={"trials": 3})
    proc = _serve(data, port, log)
    try:
        _up(url, proc, log)
        client = httpx.Client(base_url=url, timeout=30)
        job_id = client.post("/api/v1/jobs", json=spec).raise_for_status().json()["id"]

        def one_done_one_running() -> list[dict] | None:
            trials = client.get(f"/api/v1/jobs/{job_id}/trials").json()
            states = [t["state"] for t in trials]
            return trials if "completed" in states and "running" in states else None

        before = wait_until(one_done_one_running, 600, "a completed and a running trial", interval=0.5)
        _kill_group(proc)
        done_before = {t["number"]: t for t in before if t["state"] == "completed"}
        running_before = [t["number"] for t in before if t["state"] == "running"]

        proc = _serve(data, port, log)
        _up(url, proc, log)
        job = wait_for_job(client, job_id, timeout=600)
        trials = {t["number"]: t for t in client.get(f"/api/v1/jobs/{job_id}/trials").json()}
    finally:
        _kill_group(proc)
    assert job["status"] == "completed", job["error"]
    for number, t in done_before.items():  # kept as they were: not lost, not run again
        assert trials[number]["state"] == "completed"
        assert trials[number]["f1"] == t["f1"] and trials[number]["finished_at"] == t["finished_at"]
    for number in running_before:
        assert trials[number]["state"] == "failed" and "coordinator restarted" in trials[number]["error"]
    assert sum(t["state"] == "completed" for t in trials.values()) == 3  # the lost trial's budget was spent again


def test_a_hanging_trial_is_failed_after_its_timeout_and_the_job_finishes(tmp_path, ray_local, tiny_qa_model, squad_files) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", port=free_port())
    # 2,000 distillation steps take minutes here: far past a 3 s trial timeout
    spec = tiny_spec(tiny_qa_model, *squad_files, name="hang", budget={"trials": 1, "trial_timeout_s": 3}, trial_finetune_steps=2000)
    with ServiceThread(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        job_id = client.post("/api/v1/jobs", json=spec).raise_for_status().json()["id"]
        job = wait_for_job(client, job_id, timeout=300)
        trials = client.get(f"/api/v1/jobs/{job_id}/trials").json()
    assert job["status"] == "completed", job["error"]
    assert [t["state"] for t in trials] == ["failed"]
    assert "trial_timeout_s = 3 s" in trials[0]["error"] and "building" in trials[0]["error"]
    assert not _build_workers()  # its task was cancelled, not left running


@pytest.mark.slow
@pytest.mark.soak  # `make test-soak` (CI's 30 minutes); CI keeps the killed coordinator's resume
def test_serve_restarts_its_killed_coordinator_process_and_the_job_finishes(tmp_path, tiny_qa_model, squad_files) -> None:  # type: ignore[no-untyped-def]
    """`hwnas serve` runs the coordinator as a child process: the API keeps answering while it is
    dead, readiness says so, serve restarts it and the job resumes from the store."""
    data, port, log = tmp_path / "data", free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    spec = tiny_spec(tiny_qa_model, *squad_files, name="coordinator process kill", budget={"trials": 3})
    proc = _serve(data, port, log)
    try:
        _up(url, proc, log)
        client = httpx.Client(base_url=url, timeout=30)

        def coordinator() -> dict | None:
            r = client.get("/api/v1/ready")
            return r.json()["coordinator"] if r.status_code == 200 else None

        first = wait_until(coordinator, 120, "the coordinator's first heartbeat", interval=0.5)
        assert first["pid"] != proc.pid and psutil.Process(first["pid"]).ppid() == proc.pid  # its own process, serve's child
        job_id = client.post("/api/v1/jobs", json=spec).raise_for_status().json()["id"]

        def one_done() -> list[dict] | None:
            trials = client.get(f"/api/v1/jobs/{job_id}/trials").json()
            return trials if any(t["state"] == "completed" for t in trials) else None

        before = {t["number"]: t for t in wait_until(one_done, 600, "a completed trial", interval=0.5) if t["state"] == "completed"}
        os.kill(first["pid"], signal.SIGKILL)
        assert client.get(f"/api/v1/jobs/{job_id}").status_code == 200  # the API does not go down with it
        second = wait_until(lambda: (c := coordinator()) and c["pid"] != first["pid"] and c, 180, "a restarted coordinator", interval=0.5)
        assert psutil.Process(second["pid"]).ppid() == proc.pid
        job = wait_for_job(client, job_id, timeout=600)
        trials = {t["number"]: t for t in client.get(f"/api/v1/jobs/{job_id}/trials").json()}
    finally:
        _kill_group(proc)
    assert job["status"] == "completed", job["error"]
    for number, t in before.items():
        assert trials[number]["state"] == "completed" and trials[number]["finished_at"] == t["finished_at"]
    assert sum(t["state"] == "completed" for t in trials.values()) == 3
    assert "restarting it" in log.read_text()


def _coordinator(data_dir: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "HWNAS_DATA_DIR": str(data_dir), "HWNAS_RAY_NUM_CPUS": "2"}
    env.pop("RAY_ADDRESS", None)
    env.pop("HWNAS_SETTINGS_JSON", None)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", "coordinator"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


@pytest.mark.slow
@pytest.mark.soak  # the lease's takeover by a standby coordinator: `make test-soak` (CI keeps the killed coordinator's resume above)
def test_a_second_coordinator_stands_by_and_takes_the_job_over_when_the_first_is_killed(tmp_path, tiny_qa_model, squad_files) -> None:  # type: ignore[no-untyped-def]
    """Two `hwnas coordinator` processes on one database: only the lease holder runs jobs; kill -9
    it mid-job and the standby takes over within a few seconds and finishes the job, keeping every
    trial completed before the kill."""
    data, port, log = tmp_path / "data", free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    logs = [tmp_path / "coordinator-a.log", tmp_path / "coordinator-b.log"]
    spec = tiny_spec(tiny_qa_model, *squad_files, name="standby takes over", budget={"trials": 3})
    api = _serve(data, port, log, HWNAS_COORDINATOR="external")
    procs = [api]
    try:
        _up(url, api, log)
        client = httpx.Client(base_url=url, timeout=30)

        def coordinator() -> dict | None:
            r = client.get("/api/v1/ready")
            return r.json()["coordinator"] if r.status_code == 200 else None

        first = _coordinator(data, logs[0])
        procs.append(first)
        assert wait_until(coordinator, 180, "the first coordinator's heartbeat", interval=0.5)["pid"] == first.pid
        second = _coordinator(data, logs[1])
        procs.append(second)
        wait_until(lambda: "standby" in logs[1].read_text(), 180, "the second coordinator to stand by", interval=0.5)
        job_id = client.post("/api/v1/jobs", json=spec).raise_for_status().json()["id"]

        def one_done() -> list[dict] | None:
            trials = client.get(f"/api/v1/jobs/{job_id}/trials").json()
            return trials if any(t["state"] == "completed" for t in trials) else None

        before = {t["number"]: t for t in wait_until(one_done, 600, "a completed trial", interval=0.5) if t["state"] == "completed"}
        assert coordinator()["pid"] == first.pid  # the standby never took the lease from a live leader
        _kill_group(first)
        killed_at = time.monotonic()
        taken = wait_until(lambda: (c := coordinator()) and c["pid"] == second.pid and c, 60, "the standby to take over", interval=0.2)
        takeover_s = time.monotonic() - killed_at
        job = wait_for_job(client, job_id, timeout=600)
        trials = {t["number"]: t for t in client.get(f"/api/v1/jobs/{job_id}/trials").json()}
    finally:
        for p in procs:
            _kill_group(p)
    assert taken["heartbeat_age_s"] < 15 and takeover_s < 15, takeover_s  # a dead pid on this host: no waiting for it to age
    assert job["status"] == "completed", job["error"]
    for number, t in before.items():
        assert trials[number]["state"] == "completed" and trials[number]["finished_at"] == t["finished_at"]
    assert sum(t["state"] == "completed" for t in trials.values()) == 3
