"""Dispatch: one trial in, one outcome out.

``TrialRunner.run(request)`` hides what a trial is on the cluster: a build task (slice, distil,
INT8, F1), the check that its IR reached the shared artifact store, one measure task per target
(waiting, visibly, for a node that serves it), and the join task that writes the model card and
the checksums on a worker. The caller gets a ``TrialOutcome``: a ``TrialResult`` or the reason it
failed, and whether the failure was a lost worker (worth a retry) rather than the pipeline's own.

Ray is imported inside the methods (the API imports the coordinator's modules without it); the
tasks themselves are ``workers.ray_tasks``, the only module of ``workers`` that ``nas`` imports.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from core.artifact_store import ArtifactStore
from core.progress import ProgressLink
from core.types import TrialRequest, TrialResult
from nas.config import Settings
from nas.errors import JobCancelled, failure_reason
from nas.progress import ProgressRecorder
from nas.ray_cluster import serving, task_cpus
from nas.store import repo

log = logging.getLogger(__name__)
WAITING_STAGE = "waiting_for_target"  # job stage while a trial waits for a node serving one of its targets
POLL_S = 1.0


class TargetUnavailable(RuntimeError):
    """No live Ray node serves the target (its ``hw:<target>`` resource)."""

    def __init__(self, target: str, resource: str) -> None:
        super().__init__(f"no live Ray node serves target {target!r} (resource {resource})")
        self.target = target
        self.resource = resource


def system_failure(exc: BaseException) -> bool:
    """A task that died with its process or node (not an error of the pipeline itself)."""
    import ray.exceptions as rex

    lost = (rex.WorkerCrashedError, rex.NodeDiedError, rex.OutOfMemoryError, rex.LocalRayletDiedError, rex.ObjectLostError, rex.OwnerDiedError)
    return isinstance(exc, lost)


@dataclass(frozen=True)
class TrialOutcome:
    """What became of one trial: its result, or why it has none."""

    result: TrialResult | None = None
    error: str | None = None
    lost: bool = False  # a worker or node died under it: the same request may well succeed again


@dataclass(frozen=True)
class BuildCall:
    """Which build task makes the trial's IR: ``build`` (a search trial or a baseline) or
    ``refine`` (distil a front member standalone first), with its extra arguments."""

    task: str = "build"
    args: tuple[Any, ...] = ()  # after the request; empty: the precision


class _Abandon(Exception):
    """The trial's time ran out (its tasks are cancelled)."""


class TrialRunner:
    """Runs one job's trials on the Ray cluster; safe to call from several threads at once."""

    def __init__(
        self, *, job_id: str, settings: Settings, sessions: sessionmaker[Session], storage: Any,
        artifacts: ArtifactStore, cancel: threading.Event,
    ) -> None:  # fmt: skip
        self.job_id, self.settings, self.sessions, self.storage = job_id, settings, sessions, storage
        self.artifacts, self.cancel = artifacts, cancel
        self.progress: ProgressRecorder | None = None  # set while the job runs: where tasks report progress

    def progress_link(self, key: str, *, stage: str, item: str) -> ProgressLink | None:
        """A task's end of the job's progress board (None when nothing records progress)."""
        return None if self.progress is None else self.progress.link(key, stage=stage, item=item)

    def _trial_link(self, request: TrialRequest, stage: str) -> ProgressLink | None:
        """Trials report into their own row; a baseline (negative number) is the baseline stage's item."""
        if request.trial_number >= 0:
            return self.progress_link(f"trial:{request.trial_number}", stage=stage, item=f"trial {request.trial_number}")
        return self.progress_link("job", stage="baseline", item=Path(request.output_dir).name)

    # ---- the one call ------------------------------------------------------------------------
    def run(
        self,
        request: TrialRequest,
        *,
        precision: str = "int8",
        build: BuildCall = BuildCall(),
        cpus: float | None = None,
        max_retries: int | None = None,
        timeout_s: float | None = None,
        abort: threading.Event | None = None,
    ) -> TrialOutcome:
        """Build, measure on every target, join; ``JobCancelled`` when the job is cancelled (or ``abort`` set).

        ``max_retries``: Ray's retries of a task whose worker died (default the service's
        ``trial_max_retries``; the search passes 0 and retries lost trials itself, visibly).
        ``timeout_s``: from now to the joined result, else the outcome says at which stage it ran out.
        """
        from workers import ray_tasks

        retries = self.settings.trial_max_retries if max_retries is None else max_retries
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        stage = "building"
        try:
            task = getattr(ray_tasks, build.task)
            opts = {"num_cpus": task_cpus(1) if cpus is None else cpus, "max_retries": retries}
            link = self._trial_link(request, "refine" if build.task == "refine" else "search")
            built: TrialResult = self.wait(task.options(**opts).remote(request, *(build.args or (precision,)), progress=link), deadline, abort)
            stage = "measuring"
            self.artifacts.check_built(request.output_dir)
            refs = []
            reference = built.reference_scores()  # what a bf16 deployment is held to
            for target in request.targets:
                options = self._wait_for_target(request, target, abort)
                refs.append(ray_tasks.measure.options(**options, max_retries=retries).remote(request, target, precision, progress=link, reference=reference))
            measured = [self.wait(ref, deadline, abort, also=refs) for ref in refs]
            joined = ray_tasks.join.options(num_cpus=1, max_retries=retries).remote(request, built, measured, precision)
            return TrialOutcome(result=self.wait(joined, deadline, abort))
        except (JobCancelled, DBAPIError):
            raise  # the job's end, or the database's outage (the job waits for it and resumes)
        except _Abandon:
            return TrialOutcome(error=f"TimeoutError: trial still {stage} after budget.trial_timeout_s = {timeout_s:g} s; its tasks were cancelled")
        except Exception as exc:
            return TrialOutcome(error=failure_reason(exc), lost=system_failure(exc))

    def wait(self, ref: Any, deadline: float | None = None, abort: threading.Event | None = None, *, also: list[Any] = ()) -> Any:
        """``ray.get`` that gives up (and cancels the task, and ``also``) when the job is cancelled,
        ``abort`` is set or ``deadline`` (monotonic) passes."""
        import ray

        while True:
            ready, _ = ray.wait([ref], timeout=POLL_S)
            if ready:
                return ray.get(ref)
            stop = self.cancel.is_set() or (abort is not None and abort.is_set())
            if stop or (deadline is not None and time.monotonic() > deadline):
                for r in (ref, *also):
                    ray.cancel(r, force=True)
                if stop:
                    raise JobCancelled(self.job_id)
                raise _Abandon()

    # ---- targets -----------------------------------------------------------------------------
    def measure_options(self, target: str) -> dict[str, Any]:
        """A measurement takes the target's slot and every CPU of the node it lands on (see workers.ray_tasks).

        Raises ``TargetUnavailable`` when no live node serves the target (``run`` waits).
        """
        key, cpus = serving(target, self.settings)
        if not cpus:
            raise TargetUnavailable(target, key)
        return {"num_cpus": min(cpus), "resources": {key: 1}}

    def _wait_for_target(self, req: TrialRequest, target: str, abort: threading.Event | None) -> dict[str, Any]:
        """``measure_options(target)`` once a live node serves ``target``. Until then the trial waits,
        visibly: job stage ``waiting_for_target``, an event naming the target, and the Optuna trial's
        ``hwnas:waiting_for_target``; it never fails the job."""
        try:
            return self.measure_options(target)
        except TargetUnavailable as exc:
            key = exc.resource
        began = time.monotonic()
        previous = self._mark_waiting(req, target, key)
        log.warning("job %s trial %s waits for a Ray node serving %s (%s)", req.job_id, req.trial_number, target, key)
        try:
            while True:
                if self.cancel.wait(POLL_S) or (abort is not None and abort.is_set()):
                    raise JobCancelled(req.job_id)
                try:
                    options = self.measure_options(target)
                except TargetUnavailable:
                    continue
                self._mark_waiting(req, target, key, done=True, previous=previous, waited_s=time.monotonic() - began)
                return options
        except JobCancelled:
            self._mark_waiting(req, target, key, done=True, previous=previous, waited_s=time.monotonic() - began)
            raise

    def _mark_waiting(
        self, req: TrialRequest, target: str, key: str, *, done: bool = False, previous: str | None = None, waited_s: float = 0.0
    ) -> str | None:
        """Make a wait for ``target`` visible (job stage, event, Optuna trial attribute), or end it.

        Returns the job's stage before the wait, which ``done=True`` restores.
        """
        with self.sessions.begin() as s:
            job = repo.get_job(s, req.job_id)
            before = job.stage if job is not None else None
            row = repo.get_trial(s, req.job_id, req.trial_number) if req.trial_number >= 0 else None
            trial_id = row.optuna_trial_id if row is not None else None
            payload = {"target": target, "resource": key, "trial": req.trial_number}
            if not done:
                repo.update_job(s, req.job_id, stage=WAITING_STAGE)
                repo.add_event(s, req.job_id, WAITING_STAGE, payload)
            else:
                if before == WAITING_STAGE and previous is not None:
                    repo.update_job(s, req.job_id, stage=previous)
                repo.add_event(s, req.job_id, "target_available", {**payload, "waited_s": round(waited_s, 1)})
        if trial_id is not None and self.storage is not None:
            self.storage.set_trial_user_attr(trial_id, "hwnas:waiting_for_target", None if done else target)
            if done:
                self.storage.set_trial_user_attr(trial_id, f"hwnas:{target}:waited_for_node_s", round(waited_s, 1))
        return before

