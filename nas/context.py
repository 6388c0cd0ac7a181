"""What one job's stages may use of the coordinator: a narrow context, never the coordinator itself.

A stage reads the job's settings and store, watches the cancel flag (and the service's stop flag,
which leaves the job "running" for the next coordinator to resume), runs trials through the
``TrialRunner`` and other tasks through ``wait``, and writes the job's progress with ``update``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.artifact_store import ArtifactStore
from core.progress import ProgressLink
from core.types import CompressionPlan, SubnetConfig, TrialRequest
from nas.config import Settings
from nas.dispatch import TrialRunner
from nas.spec import JobSpec
from nas.store import repo


@dataclass
class JobContext:
    job_id: str
    spec: JobSpec
    settings: Settings
    sessions: sessionmaker[Session]
    storage: Any  # Optuna's storage (the same database)
    artifacts: ArtifactStore
    cancel: threading.Event  # set by a cancel request, and by the service stopping
    stopping: threading.Event  # the service stops: the job stays "running" and resumes on restart
    runner: TrialRunner
    synthetic_data: bool = False  # fixed for the job: read once, not per trial
    locks: KeyedLocks = field(default_factory=lambda: KeyedLocks())  # the coordinator's: one teacher/supernet build per cache key

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def update(self, **fields: Any) -> None:
        """Write job columns (stage, teacher_dir, ...) in their own transaction."""
        with self.sessions.begin() as s:
            repo.update_job(s, self.job_id, **fields)

    def wait(self, ref: Any) -> Any:
        """The result of a Ray task, or ``JobCancelled`` (and the task cancelled) when the job is."""
        return self.runner.wait(ref)

    @property
    def precision(self) -> str:
        """What the job's subnets are built and measured in: the stored deployment choice (the baselines
        stage makes it), else the spec's own precision (``auto`` not yet decided reads as int8)."""
        with self.sessions() as s:
            job = repo.get_job(s, self.job_id)
            if job is not None and job.deployment and "precision" in job.deployment:
                return str(job.deployment["precision"])
        return "int8" if self.spec.precision == "auto" else self.spec.precision

    def progress_link(self, item: str) -> ProgressLink | None:
        """Where a stage's long task (teacher, supernet) reports its progress: the job's ``stage_progress``."""
        with self.sessions() as s:
            job = repo.get_job(s, self.job_id)
            stage = job.stage if job is not None else ""
        return self.runner.progress_link("job", stage=stage, item=item)

    def trial_dir(self, name: str) -> Path:
        return self.artifacts.trial_dir(self.job_id, name)

    def request(self, number: int, subnet: SubnetConfig, out: Path, *, teacher_dir: str, supernet_dir: str | None = None) -> TrialRequest:
        """The wire request of one trial of this job (``trial_request``)."""
        return trial_request(self.spec, job_id=self.job_id, number=number, subnet=subnet, out=out, teacher_dir=teacher_dir,
                             supernet_dir=supernet_dir, synthetic_data=self.synthetic_data)  # fmt: skip


class KeyedLocks:
    """One lock per key, made on first use (the teacher and supernet caches are shared by jobs)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


def trial_request(
    spec: JobSpec, *, job_id: str, number: int, subnet: SubnetConfig, out: Path, teacher_dir: str,
    supernet_dir: str | None = None, synthetic_data: bool = False,
) -> TrialRequest:  # fmt: skip
    """A job spec's settings as the frozen request a worker gets (the worker never reads the spec or the store)."""
    task, measure, quant = spec.task, spec.measure, spec.quantization
    return TrialRequest(
        job_id=job_id,
        trial_number=number,
        subnet=subnet,
        teacher_dir=teacher_dir,
        train_file=task.train_file,
        eval_file=task.eval_file,
        max_seq_length=task.max_seq_length,
        doc_stride=task.doc_stride,
        max_eval_examples=task.max_eval_examples,
        calibration_samples=task.calibration_samples,
        targets=tuple(spec.targets),
        output_dir=str(out),
        synthetic_data=synthetic_data,
        finetune_steps=spec.trial_finetune_steps,
        measure_iterations=measure.iterations,
        measure_seconds=measure.seconds,
        measure_max_repeats=measure.max_repeats,
        throughput_batch=measure.throughput_batch,
        seed=spec.seed,
        quant_max_f1_drop=quant.max_f1_drop,
        quant_smooth_quant=quant.smooth_quant,
        quant_preset=quant.preset,
        quant_subset_size=quant.subset_size,
        supernet_dir=supernet_dir,
        task=task.version or "squad-v1.1",
        deployment=_deployment(spec),
        compression=compression_plan(spec, refine=False),
    )


def compression_plan(spec: JobSpec, *, refine: bool) -> CompressionPlan | None:
    """Pruning and QAT settings of a search trial (``refine=False``) or a refined one: the prune steps apply
    to whichever subnet has a sparsity, QAT where ``quantization.qat_scope`` reaches; None when neither
    can apply (the request, and its cache key, as before they existed)."""
    sp, q = spec.sparsity, spec.quantization
    qat = q.method == "qat" and (refine or q.qat_scope == "all")
    if not sp.enabled and not qat:
        return None
    return CompressionPlan(
        prune_steps=sp.steps if sp.enabled else 0,
        prune_lr=sp.learning_rate,
        prune_mode=sp.mode,
        qat_steps=q.qat_steps if qat else 0,
        qat_lr=q.qat_learning_rate,
    )


def _deployment(spec: JobSpec) -> dict[str, Any] | None:
    d = spec.deployment
    if not d.enabled:
        return None
    batches = d.offline_batches or sorted({1, spec.measure.throughput_batch})
    return {"length_policies": list(d.length_policies), "buckets": d.buckets, "offline_batches": batches,
            "streams": d.streams, "query_samples": d.query_samples, "loadgen": d.loadgen, "objective": spec.objective,
            "inference_precisions": list(d.inference_precisions), "bf16_max_f1_drop": d.bf16_max_f1_drop}  # fmt: skip
