"""The API's narrow view of the coordinator: the store in between, never a shared object.

The API inserts queued jobs and flags cancels (``nas.store.repo``); the coordinator polls for both
and writes a heartbeat with the live Ray nodes. ``CoordinatorLink`` reads that heartbeat and, when
the coordinator runs in this process (``coordinator="thread"``), wakes it so a new job starts at
once. ``CoordinatorProcess`` is how ``hwnas serve`` runs it by default: a child process, restarted
if it dies, so the search's Python work (Optuna's samplers, the Ray driver) never holds the API's GIL.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import subprocess
import sys
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.orm import Session

from nas.config import Settings
from nas.store import repo

log = logging.getLogger("hwnas")


class CoordinatorLink:
    def __init__(self, settings: Settings, in_process: Any | None = None) -> None:
        self.settings = settings
        self.in_process = in_process  # a nas.coordinator.Coordinator in "thread" mode
        self._storage: Any | None = None

    def wake(self) -> None:
        if self.in_process is not None:
            self.in_process.wake()

    def status(self, session: Session) -> tuple[dict[str, Any] | None, str, list[dict[str, Any]]]:
        """(the live coordinator's host, pid and heartbeat age, or None; why not; its Ray nodes)."""
        from nas.lease import HEARTBEAT_STALE_S

        beat = repo.coordinator_beat(session)
        if beat is None:
            return None, "no coordinator has started on this database", []
        at = beat.beat_at if beat.beat_at.tzinfo else beat.beat_at.replace(tzinfo=timezone.utc)
        age = (datetime.now(timezone.utc) - at).total_seconds()
        if at == repo.LEASE_RELEASED_AT:  # a clean stop
            return None, f"the coordinator (pid {beat.pid} on {beat.host}) has stopped", []
        if age > HEARTBEAT_STALE_S:
            return None, f"the coordinator (pid {beat.pid} on {beat.host}) last reported {age:.0f} s ago", []
        return {"host": beat.host, "pid": beat.pid, "heartbeat_age_s": round(age, 1)}, "", list(beat.nodes)

    def delete_study(self, study_name: str) -> None:
        """Drop a deleted job's Optuna study (absent is fine: the job may never have searched)."""
        import optuna

        if self._storage is None:
            url = self.settings.resolved_db_url()
            kwargs = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {"pool_pre_ping": True}
            self._storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        try:
            optuna.delete_study(study_name=study_name, storage=self._storage)
        except KeyError:
            pass


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the parent dies, even by kill -9 (Linux prctl)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class CoordinatorProcess:
    """``hwnas coordinator`` as a child of the API process, with the API's settings; restarted with
    back-off if it exits while the API runs (it resumes its jobs from the store)."""

    def __init__(self, settings: Settings, *, stop_timeout: float = 30.0) -> None:
        self.settings = settings
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None

    def _spawn(self) -> None:
        env = dict(os.environ, HWNAS_SETTINGS_JSON=self.settings.model_dump_json())
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "coordinator"], env=env, preexec_fn=preexec)
        log.info("coordinator started in process %d", self.proc.pid)

    async def start(self) -> None:
        self._spawn()
        self._task = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        delay = 1.0
        while True:
            await asyncio.sleep(1.0)
            assert self.proc is not None
            code = self.proc.poll()
            if code is None:
                delay = 1.0
                continue
            log.error("the coordinator exited with status %s; restarting it in %.0f s", code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            self.restarts += 1
            self._spawn()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # it stops dispatching; running jobs stay "running" and resume on restart
        try:
            await asyncio.to_thread(self.proc.wait, self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait)
