"""Store operations shared by the coordinator (writes) and the API (reads); one function, one transaction."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from nas.store.models import Artifact, Baseline, CoordinatorBeat, Event, Job, Measurement, Trial, utcnow
from core.types import TrialResult

TERMINAL = ("completed", "failed", "cancelled")


def add_event(session: Session, job_id: str, kind: str, payload: dict[str, Any]) -> None:
    session.add(Event(job_id=job_id, kind=kind, payload=payload))


def job_revisions(session: Session, job_ids: Sequence[str]) -> dict[str, int]:
    """Each job's newest event id: it changes with every write to the job, its trials or baselines
    (each is written with an event in the same transaction), so it versions answers derived from them."""
    if not job_ids:
        return {}
    q = select(Event.job_id, func.max(Event.id)).where(Event.job_id.in_(list(job_ids))).group_by(Event.job_id)
    return {job_id: rev for job_id, rev in session.execute(q)}


def create_job(session: Session, *, job_id: str, spec: dict[str, Any], synthetic: bool) -> Job:
    job = Job(
        id=job_id,
        name=spec.get("name"),
        status="queued",
        stage="queued",
        spec=spec,
        study_name=f"hwnas-{job_id}",
        synthetic_data=synthetic,
    )
    session.add(job)
    session.flush()  # the job row must exist before its first event (foreign key)
    add_event(session, job_id, "job", {"status": "queued"})
    return job


def get_job(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def list_jobs(session: Session, *, status: str | None = None, limit: int = 50, offset: int = 0) -> Sequence[Job]:
    q = select(Job).order_by(Job.created_at.desc()).limit(limit).offset(offset)
    if status:
        q = q.where(Job.status == status)
    return session.scalars(q).all()


def update_job(session: Session, job_id: str, **fields: Any) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise KeyError(job_id)
    if "stage" in fields and fields["stage"] != job.stage:
        fields.setdefault("stage_progress", None)  # a new stage: the last one's progress is over
    for key, value in fields.items():
        setattr(job, key, value)
    add_event(session, job_id, "job", {k: v for k, v in fields.items() if k in ("status", "stage", "error")})
    return job


def record_progress(session: Session, job_id: str, key: str, report: dict[str, Any]) -> bool:
    """Store one progress report (``core.progress`` snapshot) of the job's stage item (``key`` "job")
    or of a trial (``"trial:<n>"``), with a ``progress`` event; a report that arrives after its
    stage or trial ended is dropped (returns False)."""
    stamped = {**report, "updated_at": utcnow().isoformat()}
    if key == "job":
        job = session.get(Job, job_id)
        if job is None or job.status != "running" or job.stage != report.get("stage"):
            return False
        job.stage_progress = stamped
    else:
        trial = get_trial(session, job_id, int(key.removeprefix("trial:")))
        if trial is None or trial.state != "running":
            return False
        trial.progress = stamped
    add_event(session, job_id, "progress", {"key": key, **{k: report.get(k) for k in ("item", "phase", "step", "total")}})
    return True


def _set_if(session: Session, job_id: str, statuses: Sequence[str], **fields: Any) -> bool:
    """Update a job only while its status is one of ``statuses``, atomically (API and coordinator
    are separate processes); with its event when it happened."""
    done = session.execute(update(Job).where(Job.id == job_id, Job.status.in_(list(statuses))).values(**fields)).rowcount
    if done:
        add_event(session, job_id, "job", {k: v for k, v in fields.items() if k in ("status", "stage", "error", "cancel_requested")})
    return bool(done)


def cancel_job(session: Session, job_id: str) -> str:
    """The API's cancel: a queued job is cancelled at once; a running one is flagged for the
    coordinator, which stops dispatching and ends its trials. Returns "cancelled", "requested" or
    the terminal status the job already had."""
    if _set_if(session, job_id, ("queued",), status="cancelled", stage="done", finished_at=utcnow()):
        return "cancelled"
    if _set_if(session, job_id, ("running",), cancel_requested=True):
        return "requested"
    job = session.get(Job, job_id)
    return job.status if job is not None else "missing"


def claim_job(session: Session, job_id: str, *, first_start: bool) -> bool:
    """The coordinator takes a queued (or resumes a running) job; False when it was cancelled or
    deleted meanwhile."""
    fields: dict[str, Any] = {"status": "running"}
    if first_start:
        fields["started_at"] = utcnow()
    return _set_if(session, job_id, ("queued", "running"), **fields)


def jobs_to_coordinate(session: Session) -> tuple[list[str], list[str]]:
    """(queued job ids oldest first, live job ids whose cancel was requested): what the
    coordinator's poll acts on."""
    queued = session.scalars(select(Job.id).where(Job.status == "queued").order_by(Job.created_at)).all()
    cancel = session.scalars(select(Job.id).where(Job.status.in_(("queued", "running")), Job.cancel_requested.is_(True))).all()
    return list(queued), list(cancel)


LEASE_RELEASED_AT = datetime(1970, 1, 1, tzinfo=timezone.utc)  # beat time of a released lease


def take_lease(
    session: Session, *, token: str, host: str, pid: int, started_at: Any, nodes: list[dict[str, Any]],
    stale_after_s: float, holder_gone: bool = False,
) -> CoordinatorBeat | None:
    """Take or renew the coordinator lease (the heartbeat row) for ``token``; None when this
    coordinator holds it now, else the row of the live coordinator that does.

    The row is free when absent, already ours, older than ``stale_after_s``, or when the caller
    knows its holder is gone (``holder_gone``: a dead pid on this host). The write is a
    compare-and-swap on the row as read (token and beat time), so of two coordinators racing for a
    free lease exactly one wins, on SQLite and PostgreSQL alike."""
    values = {"token": token, "host": host, "pid": pid, "started_at": started_at, "beat_at": utcnow(), "nodes": nodes}
    row = session.get(CoordinatorBeat, 1)
    if row is None:
        try:
            with session.begin_nested():
                session.add(CoordinatorBeat(id=1, **values))
            return None
        except IntegrityError:  # another coordinator inserted it first
            return session.get(CoordinatorBeat, 1)
    beat_at = row.beat_at if row.beat_at.tzinfo else row.beat_at.replace(tzinfo=timezone.utc)
    free = row.token == token or holder_gone or (values["beat_at"] - beat_at).total_seconds() > stale_after_s
    if not free:
        return row
    seen_token, seen_beat = row.token, row.beat_at
    done = session.execute(
        update(CoordinatorBeat)
        .where(CoordinatorBeat.id == 1, CoordinatorBeat.token == seen_token, CoordinatorBeat.beat_at == seen_beat)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.expire(row)
    return None if done.rowcount == 1 else session.get(CoordinatorBeat, 1)


def release_lease(session: Session, token: str) -> None:
    """Give the lease up at a clean stop (the row ages at once): a standby takes over without waiting."""
    session.execute(
        update(CoordinatorBeat)
        .where(CoordinatorBeat.id == 1, CoordinatorBeat.token == token)
        .values(beat_at=LEASE_RELEASED_AT)
        .execution_options(synchronize_session=False)
    )


def coordinator_beat(session: Session) -> CoordinatorBeat | None:
    return session.get(CoordinatorBeat, 1)


def trials_of(session: Session, job_id: str, *, state: str | None = None) -> Sequence[Trial]:
    q = select(Trial).where(Trial.job_id == job_id).options(selectinload(Trial.measurements)).order_by(Trial.number)
    if state:
        q = q.where(Trial.state == state)
    return session.scalars(q).all()


MEASUREMENT_SORT_KEYS = ("p50_ms", "p90_ms", "p99_ms", "throughput_sps")
TRIAL_SORT_KEYS = ("number", "f1", "exact_match", "parameters", "ir_size_bytes")


def list_trials(
    session: Session,
    job_id: str,
    *,
    state: str | None = None,
    target: str | None = None,
    sort: str = "number",
    descending: bool = False,
    limit: int = 1000,
    offset: int = 0,
) -> Sequence[Trial]:
    """One page of a job's trials, filtered, sorted and paginated by the database (unmeasured last).

    ``target``: only trials measured on it (in their job's precision), and metric sorts read that measurement.
    """
    q = select(Trial).where(Trial.job_id == job_id)
    if state:
        q = q.where(Trial.state == state)
    on_target = [Measurement.trial_id == Trial.id]  # a trial is measured in one precision: its job's
    if target is not None:
        on_target.append(Measurement.target == target)
        q = q.where(select(Measurement.id).where(*on_target).exists())
    if sort in MEASUREMENT_SORT_KEYS:
        key = select(func.min(getattr(Measurement, sort))).where(*on_target).scalar_subquery()
    elif sort in TRIAL_SORT_KEYS:
        key = getattr(Trial, sort)
    else:
        raise ValueError(f"cannot sort trials by {sort!r}")
    q = q.order_by(key.is_(None), key.desc() if descending else key.asc(), Trial.number)
    q = q.options(selectinload(Trial.measurements), selectinload(Trial.artifacts)).limit(limit).offset(offset)
    return session.scalars(q).all()


def get_trial(session: Session, job_id: str, number: int) -> Trial | None:
    return session.scalar(select(Trial).where(Trial.job_id == job_id, Trial.number == number))


def count_trials(session: Session, job_id: str) -> dict[str, int]:
    rows = session.execute(select(Trial.state, func.count()).where(Trial.job_id == job_id).group_by(Trial.state))
    return {state: n for state, n in rows}


def best_trial(session: Session, job_id: str) -> tuple[int, float] | None:
    """(number, F1) of the most accurate completed trial so far (the jobs page's "best so far")."""
    q = (
        select(Trial.number, Trial.f1)
        .where(Trial.job_id == job_id, Trial.state == "completed", Trial.f1.is_not(None))
        .order_by(Trial.f1.desc(), Trial.number)
        .limit(1)
    )
    row = session.execute(q).first()
    return (row[0], row[1]) if row else None


def start_trial(
    session: Session,
    job_id: str,
    *,
    number: int,
    optuna_trial_id: int,
    config: dict[str, Any],
    cache_key: str | None = None,
    predicted: dict[str, Any] | None = None,
) -> None:
    session.add(
        Trial(
            job_id=job_id, number=number, optuna_trial_id=optuna_trial_id, state="running", config=config,
            cache_key=cache_key, predicted=predicted,
        )
    )  # fmt: skip
    add_event(session, job_id, "trial", {"number": number, "state": "running", "config": config})


def skip_trial(session: Session, job_id: str, number: int, reason: str) -> None:
    """A proposal the latency predictor ruled out without building it (never on a Pareto front)."""
    _end_trial(session, job_id, number, "skipped", reason)


def cached_trial(session: Session, cache_key: str, *, exclude_job: str) -> Trial | None:
    """A completed trial of another job with the same cache key (nas.dedupe), artifacts loaded."""
    q = (
        select(Trial)
        .where(Trial.cache_key == cache_key, Trial.state == "completed", Trial.job_id != exclude_job)
        .options(selectinload(Trial.measurements), selectinload(Trial.artifacts))
        .order_by(Trial.finished_at)
        .limit(1)
    )
    return session.scalar(q)


def speed_samples(session: Session, target: str, precision: str = "int8") -> list[tuple[dict[str, Any], Measurement]]:
    """(subnet config, measurement) of every completed trial of every job measured on ``target``:
    what a latency predictor is warm-started from (it filters by fingerprint itself)."""
    q = (
        select(Trial.config, Measurement)
        .join(Measurement, Measurement.trial_id == Trial.id)
        .where(Trial.state == "completed", Measurement.target == target, Measurement.precision == precision)
        .order_by(Trial.finished_at)
    )
    return [(config, m) for config, m in session.execute(q)]


def _size(directory: str, name: str) -> int:
    try:
        return (Path(directory) / name).stat().st_size
    except OSError:
        return -1


def artifacts_of(session: Session, trial_id: int) -> Sequence[Artifact]:
    return session.scalars(select(Artifact).where(Artifact.trial_id == trial_id)).all()


def _measurement_rows(result: TrialResult) -> list[Measurement]:
    return [Measurement(**m.to_dict()) for m in result.measurements]


def complete_trial(
    session: Session,
    job_id: str,
    result: TrialResult,
    *,
    reused_from: int | str | None = None,
    feasible: bool | None = None,
) -> None:
    """``reused_from``: the trial number (same job) or ``"<job>/<number>"`` (another job) whose figures these are."""
    trial = get_trial(session, job_id, result.trial_number)
    assert trial is not None, f"trial {result.trial_number} of job {job_id} was never started"
    trial.state = "completed"
    trial.progress = None
    trial.feasible = feasible
    trial.f1_before_refine = result.f1_before_refine
    trial.exact_match_before_refine = result.exact_match_before_refine
    trial.f1 = result.f1
    trial.exact_match = result.exact_match
    trial.metrics = result.metrics or None
    trial.eval_questions = result.num_eval_questions
    trial.parameters = result.parameters
    trial.ir_size_bytes = result.ir_size_bytes
    trial.stage_seconds = {**result.stage_seconds, **({"reused_from_trial": reused_from} if reused_from is not None else {})}
    trial.artifact_dir = result.artifact_dir
    trial.host = result.host
    trial.finished_at = utcnow()
    trial.measurements = _measurement_rows(result)
    trial.artifacts = [
        Artifact(job_id=job_id, name=name, path=str(Path(result.artifact_dir) / name), sha256=digest, size_bytes=_size(result.artifact_dir, name))
        for name, digest in result.checksums.items()
    ]
    add_event(
        session,
        job_id,
        "trial",
        {"number": result.trial_number, "state": "completed", "f1": result.f1, "reused_from": reused_from},
    )


def fail_trial(session: Session, job_id: str, number: int, error: str) -> None:
    _end_trial(session, job_id, number, "failed", error)


def _end_trial(session: Session, job_id: str, number: int, state: str, reason: str) -> None:
    trial = get_trial(session, job_id, number)
    if trial is None or trial.state == "completed":  # a stored result is never overwritten by a later failure
        return
    trial.state = state
    trial.progress = None
    trial.error = reason
    trial.finished_at = utcnow()
    add_event(session, job_id, "trial", {"number": number, "state": state, "error": reason[:500]})


def save_baseline(session: Session, job_id: str, precision: str, result: TrialResult) -> None:
    row = Baseline(
        job_id=job_id,
        precision=precision,
        state="completed",
        f1=result.f1,
        exact_match=result.exact_match,
        parameters=result.parameters,
        stage_seconds=result.stage_seconds,
        artifact_dir=result.artifact_dir,
        metrics=result.metrics or None,
    )
    row.measurements = _measurement_rows(result)
    session.add(row)
    add_event(session, job_id, "baseline", {"precision": precision, "f1": result.f1})


def baselines_of(session: Session, job_id: str) -> Sequence[Baseline]:
    q = select(Baseline).where(Baseline.job_id == job_id).options(selectinload(Baseline.measurements))
    return session.scalars(q).all()


def pareto_points(session: Session, job_id: str, target: str, metric: str = "p90_ms") -> list[tuple[int, float, float]]:
    """(number, F1, ``metric``: p90_ms or throughput_sps) of every completed trial measured on
    ``target``: columns only, one query."""
    column = {"p90_ms": Measurement.p90_ms, "throughput_sps": Measurement.throughput_sps}[metric]
    q = (
        select(Trial.number, Trial.f1, column)
        .join(Measurement, Measurement.trial_id == Trial.id)
        .where(Trial.job_id == job_id, Trial.state == "completed", Trial.f1.is_not(None))
        .where(Measurement.target == target)  # in the job's one precision (nas.deployment)
    )
    return [(n, f1, p90) for n, f1, p90 in session.execute(q)]


def trials_by_number(session: Session, job_id: str, numbers: Sequence[int]) -> dict[int, Trial]:
    if not numbers:
        return {}
    q = select(Trial).where(Trial.job_id == job_id, Trial.number.in_(list(numbers))).options(selectinload(Trial.measurements))
    return {t.number: t for t in session.scalars(q)}
