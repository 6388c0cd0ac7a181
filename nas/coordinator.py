"""The coordinator: leads the store's jobs (one thread each) while it holds the lease.

The API talks to it only through the store: it inserts queued jobs and flags cancels, and a watch
thread here picks both up (``poll_s``) and renews the lease, which is the heartbeat the API serves
as readiness and ``/workers`` (with the live Ray nodes). So the coordinator can run in its own
process (``hwnas serve`` starts it so; ``hwnas coordinator`` runs it alone) and its Python work
(Optuna's samplers and RDB storage, the Ray driver) never holds the API's GIL. State lives in the
database (our tables plus Optuna's), so a restarted coordinator resumes a running job: completed
trials are kept, trials that were in flight are failed with a reason and the budget is spent on
new ones.

Where the rest lives: the lease (``nas.lease``), Ray (``nas.ray_cluster``), one trial on the cluster
(``nas.dispatch``), a job's life and its stages (``nas.lifecycle``, ``nas.stages``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import optuna
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from nas.config import Settings
from nas.context import KeyedLocks
from nas.lease import BEAT_S, HEARTBEAT_STALE_S, Lease
from nas.lifecycle import Services, run_job
from nas.ray_cluster import connect_ray, live_nodes
from nas.store import repo

log = logging.getLogger(__name__)

__all__ = ["BEAT_S", "HEARTBEAT_STALE_S", "Coordinator", "connect_ray"]


class Coordinator:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = sessions
        self._storage: optuna.storages.RDBStorage | None = None
        self._threads: dict[str, threading.Thread] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._locks = KeyedLocks()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._watcher: threading.Thread | None = None
        self._lease = Lease(sessions, self.nodes)
        self._leading = False
        self._standby_of: tuple[str, str, int] | None = None
        self.lost_lease = False

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Join Ray and open Optuna's storage, then lead (resume the store's jobs) if this coordinator
        gets the lease, or wait as a standby that takes over when the leader stops or dies."""
        connect_ray(self.settings)
        self._storage = optuna.storages.RDBStorage(
            self.settings.resolved_db_url(), engine_kwargs=self._optuna_engine_kwargs()
        )
        self._lead()
        self._watcher = threading.Thread(target=self._watch, name="coordinator-watch", daemon=True)
        self._watcher.start()

    @property
    def leading(self) -> bool:
        """Whether this coordinator holds the lease (only the holder runs jobs)."""
        return self._leading

    def _resume(self) -> None:
        with self.sessions() as s:
            pending = [j.id for j in repo.list_jobs(s, limit=10_000) if j.status in ("queued", "running")]
        for job_id in pending:
            self.submit(job_id)

    def _lead(self) -> bool:
        """Take or renew the lease; on taking it, resume the store's jobs. Losing it (this process
        stalled past HEARTBEAT_STALE_S and another coordinator took over) stops this one: its jobs
        stay "running" for the new holder to resume."""
        holder = self._lease.take()
        if holder is None and not self._leading:
            self._leading = True
            log.info("coordinator %s (pid %d) holds the lease: resuming the store's jobs", self._lease.token[:8], os.getpid())
            self._resume()
        elif holder is not None and self._leading:
            log.error("lost the coordinator lease to pid %d on %s: stopping; the jobs resume there", holder.pid, holder.host)
            self.lost_lease = True
            self.stop(timeout=0)
        elif holder is not None and (holder.token, holder.host, holder.pid) != self._standby_of:
            self._standby_of = (holder.token, holder.host, holder.pid)
            log.warning("standby: the coordinator at pid %d on %s holds the lease of this database", holder.pid, holder.host)
        return self._leading

    def wake(self) -> None:
        """Poll the store now rather than at the next tick (the in-process API calls it after a write)."""
        self._wake.set()

    def _watch(self) -> None:
        """Lead or stand by; as leader, start queued jobs, pass cancel requests on and beat; a
        database outage only delays this."""
        last_beat = time.monotonic()
        while not self._stopping.is_set():
            self._wake.wait(self.settings.coordinator_poll_s)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                if time.monotonic() - last_beat >= BEAT_S:
                    last_beat = time.monotonic()
                    if not self._lead():
                        continue
                if self._leading:
                    self.poll()
            except DBAPIError as exc:
                log.warning("coordinator poll: database unavailable (%s)", str(exc).splitlines()[0])
            except Exception:  # the watch thread must outlive any one bad poll
                log.exception("coordinator poll failed")

    def poll(self) -> None:
        with self.sessions() as s:
            queued, cancels = repo.jobs_to_coordinate(s)
        for job_id in cancels:
            self.cancel(job_id)
        for job_id in queued:
            if job_id not in cancels:
                self.submit(job_id)

    def _optuna_engine_kwargs(self) -> dict[str, Any]:
        if self.settings.resolved_db_url().startswith("sqlite"):
            return {"connect_args": {"timeout": 30}}
        return {"pool_pre_ping": True}

    def stop(self, timeout: float = 10.0) -> None:
        """Stop dispatching and end the job threads (their jobs stay "running" and resume under the
        next coordinator); a leader then releases the lease so a standby takes over at once."""
        self._stopping.set()
        self._wake.set()
        for ev in self._cancel.values():
            ev.set()
        for t in list(self._threads.values()):
            if t is not threading.current_thread():
                t.join(timeout)
        if self._leading and not self.lost_lease:
            self._leading = False
            try:
                self._lease.release()
            except DBAPIError as exc:  # it ages out after HEARTBEAT_STALE_S instead
                log.warning("could not release the coordinator lease (%s)", str(exc).splitlines()[0])

    # ---- jobs --------------------------------------------------------------------------------
    def submit(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._threads and self._threads[job_id].is_alive():
                return
            cancel = self._cancel[job_id] = threading.Event()
            services = Services(self.settings, self.sessions, self._storage, self._locks)
            t = threading.Thread(target=run_job, args=(services, job_id, cancel, self._stopping), name=f"job-{job_id}", daemon=True)
            self._threads[job_id] = t
            t.start()

    def cancel(self, job_id: str) -> None:
        if job_id in self._cancel:
            self._cancel[job_id].set()

    def delete_study(self, study_name: str) -> None:
        """Drop a deleted job's Optuna study (absent studies are fine: the job may never have searched)."""
        try:
            optuna.delete_study(study_name=study_name, storage=self._storage)
        except KeyError:
            pass

    def nodes(self) -> list[dict[str, Any]]:
        """Live Ray nodes with their resources (``hw:<target>`` marks the targets a node serves)."""
        return live_nodes()

    def is_running(self, job_id: str) -> bool:
        t = self._threads.get(job_id)
        return t is not None and t.is_alive()
