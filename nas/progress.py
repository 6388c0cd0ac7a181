"""Progress from the Ray workers into the store: a board (a Ray actor) per job that workers report to,
and a recorder thread of the coordinator that moves the newest report of each item into the store.

Workers never see the store: their tasks get a ``core.progress.ProgressLink`` (the board's handle
and the item's key) and call ``board.report`` fire-and-forget. The store keeps the newest report
per item (``Job.stage_progress``, ``Trial.progress``) with a ``progress`` event, so every API
replica serves it and the dashboard's event stream sees it move.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from core.progress import ProgressLink
from nas.store import repo

log = logging.getLogger(__name__)
RECORD_EVERY_S = 2.0  # store writes per item at most this often (each one an event)


class ProgressBoard:
    """The newest report per item since the last drain (a Ray actor: ``ray.remote(ProgressBoard)``)."""

    def __init__(self) -> None:
        self._latest: dict[str, dict[str, Any]] = {}

    def report(self, key: str, snapshot: dict[str, Any]) -> None:
        self._latest[key] = snapshot

    def drain(self) -> dict[str, dict[str, Any]]:
        latest, self._latest = self._latest, {}
        return latest


class ProgressRecorder:
    """One job's board and the thread that records it; ``link`` hands workers their end of it."""

    def __init__(self, job_id: str, sessions: sessionmaker[Session], *, every_s: float = RECORD_EVERY_S) -> None:
        self.job_id, self.sessions, self.every_s = job_id, sessions, every_s
        self._board: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "ProgressRecorder":
        import ray

        # no CPU: it must never wait behind the trials it reports on
        self._board = ray.remote(num_cpus=0)(ProgressBoard).remote()
        self._thread = threading.Thread(target=self._loop, name=f"progress-{self.job_id}", daemon=True)
        self._thread.start()
        return self

    def link(self, key: str, *, stage: str, item: str) -> ProgressLink | None:
        """What a task needs to report as ``item`` of ``stage`` (None before ``start``)."""
        return None if self._board is None else ProgressLink(board=self._board, key=key, stage=stage, item=item)

    def stop(self) -> None:
        """Record what is left, then end the thread and the board."""
        import ray

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._board is not None:
            ray.kill(self._board)
            self._board = None

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.record_once()
        self.record_once()

    def record_once(self) -> int:
        """Drain the board into the store; the number of reports kept (advisory: never raises)."""
        import ray

        try:
            reports = ray.get(self._board.drain.remote(), timeout=30)
            if not reports:
                return 0
            with self.sessions.begin() as s:
                return sum(repo.record_progress(s, self.job_id, key, snap) for key, snap in reports.items())
        except (DBAPIError, ray.exceptions.RayError) as exc:  # a database or Ray hiccup loses a report, not the job
            log.debug("job %s: progress not recorded: %s", self.job_id, exc)
            return 0
