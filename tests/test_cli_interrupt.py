"""Ctrl-C on ``hwnas demo`` and ``hwnas watch``: exit code 130, one clear message, no traceback.

The real CLI runs in a subprocess and gets a real SIGINT once its output says it is under way.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from api.server import ServiceThread, free_port
from nas.config import Settings
from nas.store import repo
from nas.store.db import make_engine, session_factory, upgrade

HWNAS = Path(sys.executable).with_name("hwnas")
ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    """The caller's environment without any HWNAS_ setting (data roots, tokens, servers), rich in
    plain non-tty mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HWNAS_")}
    return env | {"HF_HUB_OFFLINE": "1", "COLUMNS": "120", "TERM": "dumb", "PYTHONUNBUFFERED": "1"} | extra


class Cli:
    """A running ``hwnas`` command whose output is read line by line, with deadlines."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [str(HWNAS), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            # as in a terminal: a suite started in the background (nohup, `&`) passes SIGINT down ignored
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def _take(self, timeout: float) -> Iterator[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                return
            self.lines.append(line)
            yield line

    def wait_for(self, text: str, timeout: float) -> str:
        for line in self._take(timeout):
            if text in line:
                return line
        raise AssertionError(f"no {text!r} in the output within {timeout} s:\n{self.output}")

    def finish(self, timeout: float) -> int:
        """The exit code, once the output is fully read (kills the process past ``timeout``)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"still running {timeout} s after SIGINT:\n{self.output}") from None
        for _ in self._take(10):
            pass
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)


def _job_status(data_dir: Path, job_id: str) -> dict:
    """The job as the API serves it from ``data_dir``'s store (no coordinator, so nothing changes it)."""
    settings = Settings(data_dir=data_dir, port=free_port(), coordinator="external")
    with ServiceThread(settings) as url:
        return httpx.get(f"{url}/api/v1/jobs/{job_id}", timeout=30).raise_for_status().json()


def test_ctrl_c_on_demo_cancels_the_job(tmp_path: Path):
    data = tmp_path / "data"
    cli = Cli("demo", "--data-dir", str(data), "--trials", "2", env=_env(HWNAS_RAY_NUM_CPUS="2"))
    try:
        line = cli.wait_for(" submitted", timeout=120)
        job_id = line.split("job ", 1)[1].split()[0]
        time.sleep(2)  # inside the follow loop, the coordinator on the job
        cli.proc.send_signal(signal.SIGINT)
        code = cli.finish(timeout=90)
    finally:
        if cli.proc.poll() is None:
            cli.proc.kill()
    out = cli.output
    assert code == 130, out
    assert "Traceback" not in out, out
    assert f"job {job_id} cancelled at stage" in out, out
    assert f"data dir: {data.resolve()}" in out and "start again: `hwnas demo --data-dir" in out, out
    job = _job_status(data, job_id)
    assert job["status"] == "cancelled", job


def test_ctrl_c_on_watch_leaves_the_job_running(tmp_path: Path):
    data = tmp_path / "data"
    settings = Settings(data_dir=data, port=free_port(), coordinator="external")  # no coordinator: nothing moves it
    job_id = "c" * 32
    url = settings.resolved_db_url()
    data.mkdir()
    upgrade(url)
    with session_factory(make_engine(url)).begin() as s:  # what the coordinator writes for a job it runs
        repo.create_job(s, job_id=job_id, spec={"name": "watched", "targets": ["native"], "budget": {"trials": 4}}, synthetic=False)
        repo.update_job(s, job_id, status="running", stage="search")
    with ServiceThread(settings) as server:
        cli = Cli("watch", job_id, "--server", server, env=_env())
        try:
            cli.wait_for(f"watching job {job_id}", timeout=60)
            time.sleep(1.5)  # in the live loop
            cli.proc.send_signal(signal.SIGINT)
            code = cli.finish(timeout=30)
        finally:
            if cli.proc.poll() is None:
                cli.proc.kill()
        out = cli.output
        assert code == 130, out
        assert "Traceback" not in out, out
        assert f"job {job_id} is still running on the server (stage search, 0/4 trials done)" in out, out
        assert f"hwnas watch {job_id} --server {server}" in out and f"hwnas cancel {job_id} --server {server}" in out, out
        job = httpx.get(f"{server}/api/v1/jobs/{job_id}", timeout=30).raise_for_status().json()
        assert (job["status"], job["cancel_requested"]) == ("running", False)


def test_interrupt_message_says_what_is_kept(tmp_path: Path):
    """The teacher cache (``<data dir>/teachers/<key>``, nas.stages.teacher) or its training checkpoint."""
    from cli.demo import _Interrupt, _interrupt_message

    state = _Interrupt(data_dir=tmp_path, job_id="j" * 32, cancel_recorded=True)
    job = {"status": "running", "stage": "teacher", "progress": {"completed": 0, "failed": 0, "trials_budget": 6}}
    text = _interrupt_message(state.job_id, job, "teacher", state)
    assert "had not stopped after 30 s" in text and "next service started on this data dir finishes cancelling it" in text
    assert "trains it from the start" in text
    (tmp_path / "teachers" / "k1.partial" / "checkpoint").mkdir(parents=True)
    assert "resumes training from it" in _interrupt_message(state.job_id, job, "teacher", state)
    (tmp_path / "teachers" / "k1").mkdir()
    (tmp_path / "teachers" / "k1" / "metrics.json").write_text("{}")
    text = _interrupt_message(state.job_id, job | {"status": "cancelled"}, "search", state)
    assert text.startswith(f"job {'j' * 32} cancelled at stage search, 0/6 trials done.")
    assert "reuses it instead of training again" in text
