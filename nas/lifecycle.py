"""One job's life: queued -> running (teacher, baselines, supernet, search, refine) -> completed, failed or cancelled.

A failure is a stored state with its reason, never a crashed service. A database outage mid-job is
waited out (up to 5 min, ``DB_OUTAGES_PER_JOB`` times) and the job resumes where the store says it
was; when the service stops, the job stays "running" and the next coordinator resumes it.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from nas.config import Settings
from nas.context import JobContext, KeyedLocks
from nas.dispatch import TrialRunner
from nas.errors import JobCancelled, failure_reason
from nas.progress import ProgressRecorder
from nas.spec import JobSpec
from nas.runtime_check import drop_unavailable_targets
from nas.stages.baselines import run_baselines_stage
from nas.stages.refine import run_refine_stage
from nas.stages.search import JobSearch
from nas.stages.supernet import run_supernet_stage
from nas.stages.teacher import run_teacher_stage
from nas.store import repo
from nas.store.models import utcnow
from nas.validation import with_local_data_files

log = logging.getLogger(__name__)
DB_OUTAGES_PER_JOB = 3  # database outages a job rides out (waiting up to 5 min each) before it fails


@dataclass
class Services:
    """What the coordinator lends every job: settings, the store, Optuna's storage, the artifact store, shared locks."""

    settings: Settings
    sessions: sessionmaker[Session]
    storage: Any
    locks: KeyedLocks


def run_job(services: Services, job_id: str, cancel: threading.Event, stopping: threading.Event) -> None:
    """Run (or resume) a job; if the database goes away mid-job, wait for it and resume, a few times."""
    for outage in range(DB_OUTAGES_PER_JOB + 1):
        try:
            _run_once(services, job_id, cancel, stopping)
            return
        except DBAPIError as exc:
            if not exc.connection_invalidated and not isinstance(exc, OperationalError):
                raise
            log.warning("job %s: database unavailable (%s); resuming when it is back", job_id, str(exc).splitlines()[0])
            if outage == DB_OUTAGES_PER_JOB or not _wait_for_database(services.sessions, cancel):
                if _wait_for_database(services.sessions, cancel, timeout=60.0):
                    _update(services.sessions, job_id, status="failed", error=f"database unavailable: {failure_reason(exc)}", finished_at=utcnow())
                return


def _wait_for_database(sessions: sessionmaker[Session], cancel: threading.Event, timeout: float = 300.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cancel.is_set():
        try:
            with sessions() as s:
                s.execute(text("select 1"))
            return True
        except DBAPIError:
            time.sleep(1.0)
    return False


def _update(sessions: sessionmaker[Session], job_id: str, **fields: Any) -> None:
    with sessions.begin() as s:
        repo.update_job(s, job_id, **fields)


def _run_once(services: Services, job_id: str, cancel: threading.Event, stopping: threading.Event) -> None:
    sessions = services.sessions
    try:
        with sessions() as s:
            job = repo.get_job(s, job_id)
            assert job is not None
            spec = with_local_data_files(JobSpec.model_validate(job.spec), services.settings)
            synthetic = job.synthetic_data
            first_start = job.started_at is None
            cancel_requested = job.cancel_requested
        if cancel_requested:  # asked while no coordinator ran this job
            raise JobCancelled(job_id)
        with sessions.begin() as s:
            if not repo.claim_job(s, job_id, first_start=first_start):
                return  # cancelled (or deleted) before it started
        ctx = job_context(services, job_id, spec, cancel, stopping, synthetic_data=synthetic)
        ctx.runner.progress = ProgressRecorder(job_id, sessions).start()
        try:
            drop_unavailable_targets(ctx)
            run_stages(ctx)
        finally:
            ctx.runner.progress.stop()
        cancelled = cancel.is_set() and not stopping.is_set()
        if stopping.is_set() and not cancelled:
            return  # service shutting down: the job stays "running" and resumes on restart
        _update(sessions, job_id, status="cancelled" if cancelled else "completed", stage="done", finished_at=utcnow())
    except JobCancelled:
        if not stopping.is_set():
            _update(sessions, job_id, status="cancelled", stage="done", finished_at=utcnow())
    except DBAPIError:
        raise  # the database went away: run_job waits and resumes
    except Exception as exc:  # a job failure is a stored state, never a crashed service
        log.exception("job %s failed", job_id)
        _update(sessions, job_id, status="failed", error=failure_reason(exc), finished_at=utcnow())
        log.debug("%s", traceback.format_exc())


def job_context(
    services: Services, job_id: str, spec: JobSpec, cancel: threading.Event, stopping: threading.Event, *, synthetic_data: bool
) -> JobContext:
    artifacts = services.settings.artifacts()
    runner = TrialRunner(
        job_id=job_id, settings=services.settings, sessions=services.sessions, storage=services.storage,
        artifacts=artifacts, cancel=cancel,
    )  # fmt: skip
    return JobContext(
        job_id=job_id, spec=spec, settings=services.settings, sessions=services.sessions, storage=services.storage,
        artifacts=artifacts, cancel=cancel, stopping=stopping, runner=runner, synthetic_data=synthetic_data,
        locks=services.locks,
    )  # fmt: skip


def run_stages(ctx: JobContext) -> None:
    """The stages in order; each resumes from what the store already holds."""
    teacher_dir = run_teacher_stage(ctx)
    run_baselines_stage(ctx, teacher_dir)
    supernet_dir = run_supernet_stage(ctx, teacher_dir)
    ctx.update(stage="search")
    search = JobSearch(ctx, teacher_dir, supernet_dir)
    search.run()
    run_refine_stage(search)
