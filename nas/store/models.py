"""SQLAlchemy 2.x ORM models: jobs, trials, baselines, measurements, events.

A trial row links to its Optuna trial (``optuna_trial_id``) rather than copying what Optuna
stores (params, values, distributions); it keeps what Optuna does not: stage timings,
per-target measurements with fingerprints, artifacts, failure reasons.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, false, BigInteger, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class Job(Base):
    __tablename__ = "hwnas_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued running completed failed cancelled
    stage: Mapped[str] = mapped_column(String(32), default="queued")
    spec: Mapped[dict[str, Any]]
    study_name: Mapped[str] = mapped_column(String(64))
    synthetic_data: Mapped[bool] = mapped_column(default=False)
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default=false())  # set by the API, acted on by the coordinator
    teacher_dir: Mapped[str | None] = mapped_column(Text)
    teacher_metrics: Mapped[dict[str, Any] | None]
    # the current stage's long item (teacher fine-tune, baseline, supernet): core.progress's snapshot
    stage_progress: Mapped[dict[str, Any] | None]
    # the precision its subnets are built and measured in, and why (nas.deployment.choose_precision)
    deployment: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    trials: Mapped[list["Trial"]] = relationship(back_populates="job", cascade="all, delete-orphan", order_by="Trial.number")
    baselines: Mapped[list["Baseline"]] = relationship(back_populates="job", cascade="all, delete-orphan")


class Trial(Base):
    __tablename__ = "hwnas_trials"
    __table_args__ = (UniqueConstraint("job_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("hwnas_jobs.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    optuna_trial_id: Mapped[int | None]
    state: Mapped[str] = mapped_column(String(16))  # running completed failed skipped
    config: Mapped[dict[str, Any]]
    f1: Mapped[float | None] = mapped_column(Float)
    exact_match: Mapped[float | None] = mapped_column(Float)
    eval_questions: Mapped[int | None] = mapped_column(Integer)
    parameters: Mapped[int | None] = mapped_column(Integer)
    ir_size_bytes: Mapped[int | None] = mapped_column(Integer)
    stage_seconds: Mapped[dict[str, Any] | None]
    artifact_dir: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=1)
    # what evaluating this subnet depends on (nas.dedupe): a later job with the same key reuses the result
    cache_key: Mapped[str | None] = mapped_column(String(64), index=True)
    feasible: Mapped[bool | None]  # every constraint of the job met (None: not judged)
    predicted: Mapped[dict[str, Any] | None]  # {target: {"p90_ms", "throughput_sps", "points"}} before measuring
    f1_before_refine: Mapped[float | None] = mapped_column(Float)
    exact_match_before_refine: Mapped[float | None] = mapped_column(Float)
    progress: Mapped[dict[str, Any] | None]  # while running: phase, step / total, loss, ETA (core.progress)
    # the task's figures besides f1/exact_match (TrialResult.metrics; SQuAD v2.0: HasAns/NoAns, threshold); None for v1.1
    metrics: Mapped[dict[str, Any] | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    job: Mapped[Job] = relationship(back_populates="trials")
    measurements: Mapped[list["Measurement"]] = relationship(
        back_populates="trial", cascade="all, delete-orphan", foreign_keys="Measurement.trial_id"
    )
    artifacts: Mapped[list["Artifact"]] = relationship(cascade="all, delete-orphan")


class Baseline(Base):
    """The teacher measured as the user would deploy it without search: FP32 and INT8."""

    __tablename__ = "hwnas_baselines"
    __table_args__ = (UniqueConstraint("job_id", "precision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("hwnas_jobs.id", ondelete="CASCADE"), index=True)
    precision: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16))
    f1: Mapped[float | None] = mapped_column(Float)
    exact_match: Mapped[float | None] = mapped_column(Float)
    parameters: Mapped[int | None] = mapped_column(Integer)
    stage_seconds: Mapped[dict[str, Any] | None]
    artifact_dir: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any] | None]  # as Trial.metrics

    job: Mapped[Job] = relationship(back_populates="baselines")
    measurements: Mapped[list["Measurement"]] = relationship(
        back_populates="baseline", cascade="all, delete-orphan", foreign_keys="Measurement.baseline_id"
    )


class Measurement(Base):
    __tablename__ = "hwnas_measurements"

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int | None] = mapped_column(ForeignKey("hwnas_trials.id", ondelete="CASCADE"), index=True)
    baseline_id: Mapped[int | None] = mapped_column(ForeignKey("hwnas_baselines.id", ondelete="CASCADE"), index=True)
    target: Mapped[str] = mapped_column(String(64))
    precision: Mapped[str] = mapped_column(String(8))
    seq_len: Mapped[int]
    latency_batch: Mapped[int]
    p50_ms: Mapped[float] = mapped_column(Float)
    p90_ms: Mapped[float] = mapped_column(Float)
    p99_ms: Mapped[float] = mapped_column(Float)
    latency_iterations: Mapped[int]
    throughput_batch: Mapped[int]
    throughput_sps: Mapped[float] = mapped_column(Float)
    fingerprint: Mapped[dict[str, Any]]

    trial: Mapped[Trial | None] = relationship(back_populates="measurements", foreign_keys=[trial_id])
    baseline: Mapped[Baseline | None] = relationship(back_populates="measurements", foreign_keys=[baseline_id])


class Event(Base):
    """Append-only log of job and trial changes; its id is the SSE event id."""

    __tablename__ = "hwnas_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("hwnas_jobs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored (tokens are 256-bit random, so no slow hash is needed)."""

    __tablename__ = "hwnas_api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(8))  # read | write
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked: Mapped[bool] = mapped_column(default=False)


class Artifact(Base):
    """A file a trial produced, with its checksum, so that corruption is detected before a download."""

    __tablename__ = "hwnas_artifacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("hwnas_jobs.id", ondelete="CASCADE"), index=True)
    trial_id: Mapped[int | None] = mapped_column(ForeignKey("hwnas_trials.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CoordinatorBeat(Base):
    """The coordinator's heartbeat (one row): the API process, which runs no Ray driver, answers
    readiness and ``/workers`` from it. It is also the coordinator lease: only the coordinator whose
    ``token`` it carries runs jobs (``repo.take_lease``)."""

    __tablename__ = "hwnas_coordinator"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), default="", server_default="")
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]
    nodes: Mapped[list[Any]]
