"""The coordinator: turns a stored job into teacher -> baselines -> Optuna search, trials as Ray tasks.

One thread per job drives its stages. The API talks to it only through the store: it inserts
queued jobs and flags cancels, and a watch thread here picks both up (``poll_s``) and writes a
heartbeat with the live Ray nodes, which the API serves as readiness and ``/workers``. So the
coordinator can run in its own process (``hwnas serve`` starts it so; ``hwnas coordinator`` runs it
alone) and its Python work (Optuna's samplers and RDB storage, the Ray driver) never holds the
API's GIL. State lives in the database (our tables plus Optuna's), so a restarted coordinator
resumes a running job: completed trials are kept, trials that were in flight are failed with a
reason and the budget is spent on new ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from search_spaces.base_models import has_qa_head, read_config, resolve_base_model
from nas.config import Settings
from nas.errors import JobCancelled, failure_reason
from nas.spec import JobSpec
from nas.validation import with_local_data_files
from nas.store import repo
from nas.store.models import utcnow
from core.types import SubnetConfig, TrialRequest, TrialResult

log = logging.getLogger(__name__)
DB_OUTAGES_PER_JOB = 3  # database outages a job rides out (waiting up to 5 min each) before it fails
BEAT_S = 2.0  # seconds between heartbeats; the API calls the coordinator gone after HEARTBEAT_STALE_S
HEARTBEAT_STALE_S = 15.0


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pid_alive(pid: int) -> bool:
    """Whether a process of this host has this pid (a coordinator on this host that died by kill -9
    leaves its lease behind; a standby here can tell it is gone without waiting for it to age)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def teacher_key(base_dir: Path, spec: JobSpec) -> str:
    """Cache key of a fine-tuned teacher: base weights, training data and every setting that changes it."""
    weights = sorted(p for p in base_dir.iterdir() if p.suffix in (".safetensors", ".bin"))
    payload = {
        "base": [(p.name, p.stat().st_size) for p in weights] + [str(base_dir)],
        "train": _file_digest(spec.task.train_file),
        "eval": _file_digest(spec.task.eval_file),
        "teacher": spec.teacher.model_dump(),
        "seq": spec.task.max_seq_length,
        "stride": spec.task.doc_stride,
        "max_eval": spec.task.max_eval_examples,
        "seed": spec.seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def supernet_settings(spec: JobSpec) -> Any:
    """The job's supernet training settings (``workers.supernet.SupernetSettings``): its cache key's input."""
    from workers.supernet import SupernetSettings

    return SupernetSettings(
        **spec.supernet.model_dump(exclude={"enabled"}),
        max_seq_length=spec.task.max_seq_length,
        doc_stride=spec.task.doc_stride,
        seed=spec.seed,
    )


def connect_ray(settings: Settings) -> None:
    """Join ``settings.ray_address`` or start a local Ray; idempotent. Call it from the main thread
    where possible: Ray installs signal handlers there."""
    import ray

    if ray.is_initialized():
        return
    # workers find user target profiles (posted to the API) through the environment they inherit
    os.environ.setdefault("HWNAS_TARGETS_DIR", str((settings.data_dir / "targets").resolve()))
    if settings.ray_address:
        from workers.node import join_as_driver_node, ray_auth_env

        os.environ.update(ray_auth_env())  # a token in the environment means the head wants it
        joined = join_as_driver_node(settings.ray_address)  # a driver needs a raylet on its own host
        if joined:
            log.info("this host ran no Ray node: joined the cluster as a CPU-less node (%s)", " ".join(joined))
        ray.init(address=settings.ray_address, log_to_driver=False)
        served = sorted({k[3:] for n in ray.nodes() if n.get("Alive") for k in n.get("Resources", {}) if k.startswith("hw:")})
        log.info("joined the Ray cluster at %s; live nodes serve targets: %s", settings.ray_address, ", ".join(served) or "none yet")
    else:
        from targets import target_resource
        from targets import TARGETS

        # the in-process node serves every known target: natively or emulated by an ISA cap
        resources = {target_resource(name): 1.0 for name in TARGETS}
        # address="local": a new in-process node even when another Ray cluster runs on this machine
        ray.init(address="local", num_cpus=settings.ray_num_cpus, resources=resources, include_dashboard=False, log_to_driver=False)


WAITING_STAGE = "waiting_for_target"  # job stage while a trial waits for a node serving one of its targets
ARTIFACT_FILES = ("openvino_model.xml", "openvino_model.bin", "config.json")


class TargetUnavailable(RuntimeError):
    """No live Ray node serves the target (its ``hw:<target>`` resource)."""

    def __init__(self, target: str, resource: str) -> None:
        super().__init__(f"no live Ray node serves target {target!r} (resource {resource})")
        self.target = target
        self.resource = resource


class ArtifactsNotShared(RuntimeError):
    """A worker's IR is not visible to the coordinator: the artifact store is not a shared path."""


class Coordinator:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = sessions
        self._storage: optuna.storages.RDBStorage | None = None
        self._threads: dict[str, threading.Thread] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._teacher_locks: dict[str, threading.Lock] = {}
        self._synthetic: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._watcher: threading.Thread | None = None
        self._started_at = utcnow()
        self._token = uuid.uuid4().hex
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
        """Take or renew the lease, which is the heartbeat; on taking it, resume the store's jobs.
        Losing it (this process stalled past HEARTBEAT_STALE_S and another coordinator took over)
        stops this one: its jobs stay "running" for the new holder to resume."""
        holder = self._take_lease()
        if holder is None and not self._leading:
            self._leading = True
            log.info("coordinator %s (pid %d) holds the lease: resuming the store's jobs", self._token[:8], os.getpid())
            self._resume()
        elif holder is not None and self._leading:
            log.error("lost the coordinator lease to pid %d on %s: stopping; the jobs resume there", holder.pid, holder.host)
            self.lost_lease = True
            self.stop(timeout=0)
        elif holder is not None and (holder.token, holder.host, holder.pid) != self._standby_of:
            self._standby_of = (holder.token, holder.host, holder.pid)
            log.warning("standby: the coordinator at pid %d on %s holds the lease of this database", holder.pid, holder.host)
        return self._leading

    def _take_lease(self) -> Any:
        with self.sessions.begin() as s:
            row = repo.coordinator_beat(s)
            gone = row is not None and row.host == socket.gethostname() and row.token != self._token and not _pid_alive(row.pid)
            holder = repo.take_lease(
                s, token=self._token, host=socket.gethostname(), pid=os.getpid(), started_at=self._started_at,
                nodes=self.nodes(), stale_after_s=HEARTBEAT_STALE_S, holder_gone=gone,
            )
            if holder is not None:
                s.expunge(holder)
            return holder

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
                with self.sessions.begin() as s:
                    repo.release_lease(s, self._token)
            except DBAPIError as exc:  # it ages out after HEARTBEAT_STALE_S instead
                log.warning("could not release the coordinator lease (%s)", str(exc).splitlines()[0])

    def submit(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._threads and self._threads[job_id].is_alive():
                return
            self._cancel[job_id] = threading.Event()
            t = threading.Thread(target=self._run_job, args=(job_id,), name=f"job-{job_id}", daemon=True)
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
        import ray

        return [
            {
                "node_id": n["NodeID"],
                "address": n.get("NodeManagerAddress"),
                "alive": n.get("Alive", False),
                "resources": n.get("Resources", {}),
                "targets": sorted(k[3:] for k in n.get("Resources", {}) if k.startswith("hw:")),
            }
            for n in ray.nodes()
            if n.get("Alive")
        ]

    def is_running(self, job_id: str) -> bool:
        t = self._threads.get(job_id)
        return t is not None and t.is_alive()

    # ---- one job -----------------------------------------------------------------------------
    def _update(self, job_id: str, **fields: Any) -> None:
        with self.sessions.begin() as s:
            repo.update_job(s, job_id, **fields)

    def _run_job(self, job_id: str) -> None:
        """Run (or resume) a job; if the database goes away mid-job, wait for it and resume, a few times."""
        for outage in range(DB_OUTAGES_PER_JOB + 1):
            try:
                self._run_job_once(job_id)
                return
            except DBAPIError as exc:
                if not exc.connection_invalidated and not isinstance(exc, OperationalError):
                    raise
                log.warning("job %s: database unavailable (%s); resuming when it is back", job_id, str(exc).splitlines()[0])
                if outage == DB_OUTAGES_PER_JOB or not self._wait_for_database(job_id):
                    self._update_when_possible(job_id, status="failed", error=f"database unavailable: {failure_reason(exc)}", finished_at=utcnow())
                    return

    def _wait_for_database(self, job_id: str, timeout: float = 300.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._cancel[job_id].is_set():
            try:
                with self.sessions() as s:
                    s.execute(text("select 1"))
                return True
            except DBAPIError:
                time.sleep(1.0)
        return False

    def _update_when_possible(self, job_id: str, **fields: Any) -> None:
        if self._wait_for_database(job_id, timeout=60.0):
            self._update(job_id, **fields)

    def _run_job_once(self, job_id: str) -> None:
        try:
            with self.sessions() as s:
                job = repo.get_job(s, job_id)
                assert job is not None
                spec = with_local_data_files(JobSpec.model_validate(job.spec), self.settings)
                self._synthetic[job_id] = job.synthetic_data  # fixed for the job: read once, not per trial
                first_start = job.started_at is None
                cancel_requested = job.cancel_requested
            if cancel_requested:  # asked while no coordinator ran this job
                raise JobCancelled(job_id)
            with self.sessions.begin() as s:
                if not repo.claim_job(s, job_id, first_start=first_start):
                    return  # cancelled (or deleted) before it started
            teacher_dir = self._teacher(job_id, spec)
            self._baselines(job_id, spec, teacher_dir)
            supernet_dir = self._supernet(job_id, spec, teacher_dir)
            self._search(job_id, spec, teacher_dir, supernet_dir)
            cancelled = self._cancel[job_id].is_set() and not self._stopping.is_set()
            if self._stopping.is_set() and not cancelled:
                return  # service shutting down: the job stays "running" and resumes on restart
            self._update(job_id, status="cancelled" if cancelled else "completed", stage="done", finished_at=utcnow())
        except JobCancelled:
            if not self._stopping.is_set():
                self._update(job_id, status="cancelled", stage="done", finished_at=utcnow())
        except DBAPIError:
            raise  # the database went away: _run_job waits and resumes
        except Exception as exc:  # a job failure is a stored state, never a crashed service
            log.exception("job %s failed", job_id)
            self._update(job_id, status="failed", error=failure_reason(exc), finished_at=utcnow())
            log.debug("%s", traceback.format_exc())

    def _request(self, job_id: str, spec: JobSpec, teacher_dir: str, number: int, subnet: SubnetConfig, out: Path) -> TrialRequest:
        return TrialRequest(
            job_id=job_id,
            trial_number=number,
            subnet=subnet,
            teacher_dir=teacher_dir,
            train_file=spec.task.train_file,
            eval_file=spec.task.eval_file,
            max_seq_length=spec.task.max_seq_length,
            doc_stride=spec.task.doc_stride,
            max_eval_examples=spec.task.max_eval_examples,
            calibration_samples=spec.task.calibration_samples,
            targets=tuple(spec.targets),
            output_dir=str(out),
            synthetic_data=self._synthetic[job_id],
            finetune_steps=spec.trial_finetune_steps,
            measure_iterations=spec.measure.iterations,
            measure_seconds=spec.measure.seconds,
            throughput_batch=spec.measure.throughput_batch,
            seed=spec.seed,
            quant_max_f1_drop=spec.quantization.max_f1_drop,
            quant_smooth_quant=spec.quantization.smooth_quant,
            quant_preset=spec.quantization.preset,
            quant_subset_size=spec.quantization.subset_size,
        )

    def _task_cpus(self, concurrent: int) -> float:
        import ray

        total = ray.cluster_resources().get("CPU", 1.0)
        # a task runs on one node: never ask for more CPUs than the largest live node has
        largest = max((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")), default=total)
        return max(1.0, float(int(min(total // max(1, concurrent), largest or 1.0))))

    def _await(self, job_id: str, ref: Any) -> Any:
        """``ray.get`` that gives up (and cancels the task) when the job is cancelled or the service stops."""
        import ray

        while True:
            ready, _ = ray.wait([ref], timeout=1.0)
            if ready:
                return ray.get(ref)
            if self._cancel[job_id].is_set():
                ray.cancel(ref, force=True)
                raise JobCancelled(job_id)

    def _teacher(self, job_id: str, spec: JobSpec) -> str:
        from workers.ray_tasks import build_teacher

        self._update(job_id, stage="teacher")
        base_dir = resolve_base_model(spec.base_model)
        if has_qa_head(base_dir):
            self._update(job_id, teacher_dir=str(base_dir))
            return str(base_dir)
        key = teacher_key(base_dir, spec)
        out = (self.settings.teachers_dir / key).resolve()
        with self._lock:
            lock = self._teacher_locks.setdefault(key, threading.Lock())
        with lock:
            if not (out / "metrics.json").is_file():
                kwargs = {
                    "train_file": spec.task.train_file,
                    "eval_file": spec.task.eval_file,
                    "max_seq_length": spec.task.max_seq_length,
                    "doc_stride": spec.task.doc_stride,
                    "max_train_examples": spec.teacher.max_train_examples,
                    "max_eval_examples": spec.task.max_eval_examples,
                    "settings": {
                        "epochs": spec.teacher.epochs,
                        "max_steps": spec.teacher.max_steps,
                        "learning_rate": spec.teacher.learning_rate,
                        "batch_size": spec.teacher.batch_size,
                        "warmup_ratio": spec.teacher.warmup_ratio,
                        "seed": spec.seed,
                    },
                }
                ref = build_teacher.options(num_cpus=self._task_cpus(1)).remote(str(base_dir), str(out), kwargs)
                self._await(job_id, ref)
        metrics = json.loads((out / "metrics.json").read_text())
        self._update(job_id, teacher_dir=str(out), teacher_metrics=metrics)
        return str(out)

    def _serving(self, target: str) -> tuple[str, list[float]]:
        """The resource a measurement for ``target`` takes, and the CPU counts of the live nodes holding it."""
        import ray

        from targets import target_resource

        nodes = ray.nodes()
        key = target_resource(target)
        if not self.settings.ray_address and not any(key in n.get("Resources", {}) for n in nodes):
            key = target_resource("native")  # a profile added after start: the in-process node emulates it
        return key, [n["Resources"].get("CPU", 1.0) for n in nodes if n.get("Alive") and key in n.get("Resources", {})]

    def _measure_options(self, target: str) -> dict[str, Any]:
        """A measurement takes the target's slot and every CPU of the node it lands on (see workers.ray_tasks).

        Raises ``TargetUnavailable`` when no live node serves the target (``_launch_measures`` waits).
        ``max_retries``: a node that dies mid-measurement fails the task and Ray runs it again on
        another node that serves the target, or on the first one to join.
        """
        key, cpus = self._serving(target)
        if not cpus:
            raise TargetUnavailable(target, key)
        return {"num_cpus": min(cpus), "resources": {key: 1}, "max_retries": self.settings.trial_max_retries}

    def _launch_measures(self, req: TrialRequest, precision: str, *, max_retries: int | None = None) -> list[Any]:
        """One measure task per target, after checking that the built IR reached the shared artifact store.

        ``max_retries`` overrides Ray's retries (the search retries lost trials itself, visibly).

        A target that no live node serves makes the trial wait (job stage ``waiting_for_target``, a
        ``waiting_for_target`` event naming the target, ``hwnas:waiting_for_target`` on the Optuna
        trial) until a node joins or the job is cancelled; it never fails the job.
        """
        from workers.ray_tasks import measure

        self._check_artifacts(req)
        refs = []
        for target in req.targets:
            options = self._wait_for_target(req, target)
            if max_retries is not None:
                options["max_retries"] = max_retries
            refs.append(measure.options(**options).remote(req, target, precision))
        return refs

    def _check_artifacts(self, req: TrialRequest) -> None:
        """The IR a worker built must be visible here: artifacts are a shared path (README, cluster)."""
        out = Path(req.output_dir)
        missing = [name for name in ARTIFACT_FILES if not (out / name).is_file()]
        if missing:
            raise ArtifactsNotShared(
                f"the build reported success but {', '.join(missing)} is missing from {out} as the coordinator "
                "sees it: every Ray node must mount the service's data directory (HWNAS_DATA_DIR, holding "
                "artifacts/) at the same path as the coordinator"
            )

    def _wait_for_target(self, req: TrialRequest, target: str, poll_s: float = 1.0) -> dict[str, Any]:
        """``_measure_options(target)`` once a live node serves ``target``; waits (visibly) until then."""
        try:
            return self._measure_options(target)
        except TargetUnavailable as exc:
            key = exc.resource
        began = time.monotonic()
        previous = self._mark_waiting(req, target, key)
        log.warning("job %s trial %s waits for a Ray node serving %s (%s)", req.job_id, req.trial_number, target, key)
        try:
            while True:
                if self._cancel[req.job_id].wait(poll_s):
                    raise JobCancelled(req.job_id)
                try:
                    options = self._measure_options(target)
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
        trial_id = None
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
        if trial_id is not None and self._storage is not None:
            self._storage.set_trial_user_attr(trial_id, "hwnas:waiting_for_target", None if done else target)
            if done:
                self._storage.set_trial_user_attr(trial_id, f"hwnas:{target}:waited_for_node_s", round(waited_s, 1))
        return before

    def _baselines(self, job_id: str, spec: JobSpec, teacher_dir: str) -> None:
        from workers.pipeline import finalize, full_subnet
        from workers.ray_tasks import build

        self._update(job_id, stage="baseline")
        with self.sessions() as s:
            done = {b.precision for b in repo.baselines_of(s, job_id)}
        subnet = full_subnet(teacher_dir)
        for i, precision in enumerate(("fp32", "int8")):
            if precision in done or self._cancel[job_id].is_set():
                continue
            out = self.settings.artifacts_dir.resolve() / job_id / f"baseline-{precision}"
            req = replace(self._request(job_id, spec, teacher_dir, -1 - i, subnet, out), finetune_steps=0)
            opts = {"num_cpus": self._task_cpus(1), "max_retries": self.settings.trial_max_retries}
            built: TrialResult = self._await(job_id, build.options(**opts).remote(req, precision))
            measured = [self._await(job_id, ref) for ref in self._launch_measures(req, precision)]
            result = finalize(req, built, measured, precision=precision)
            with self.sessions.begin() as s:
                repo.save_baseline(s, job_id, precision, result)

    def _supernet(self, job_id: str, spec: JobSpec, teacher_dir: str) -> str | None:
        """Train (or reuse, by cache key) the job's weight-sharing supernet; None when the job slices the teacher."""
        if not spec.supernet.enabled:
            return None
        from search_spaces.bert.space import BertSpace
        from workers.ray_tasks import build_supernet
        from workers.supernet import SUPERNET_FILE, supernet_key

        self._update(job_id, stage="supernet")
        space = BertSpace.from_spec(spec.search_space, read_config(Path(teacher_dir)))
        settings = supernet_settings(spec)
        key = supernet_key(teacher_dir, spec.task.train_file, space, settings)
        out = (self.settings.data_dir / "supernets" / key).resolve()
        with self._lock:
            lock = self._teacher_locks.setdefault(f"supernet:{key}", threading.Lock())
        with lock:
            if not (out / SUPERNET_FILE).is_file():
                kwargs = {"train_file": spec.task.train_file, "space": spec.search_space.model_dump(), "settings": asdict(settings)}
                ref = build_supernet.options(num_cpus=self._task_cpus(1), max_retries=self.settings.trial_max_retries).remote(
                    teacher_dir, str(out), kwargs
                )
                self._await(job_id, ref)
        return str(out)

    def _search(self, job_id: str, spec: JobSpec, teacher_dir: str, supernet_dir: str | None = None) -> None:
        from nas.search import JobSearch

        self._update(job_id, stage="search")
        search = JobSearch(self, job_id, spec, teacher_dir, supernet_dir)
        search.run()
        search.refine()
