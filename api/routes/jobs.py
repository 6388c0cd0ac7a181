"""/api/v1/jobs: submit, list, read, cancel, delete; trials, Pareto fronts and model downloads."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path as PathParam, Query, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import TypeAdapter

from api.cache import RevisionCache
from api.deps import CacheDep, CoordinatorDep, SessionDep, SettingsDep
from api.schemas import BaselineOut, Constraint, JobCreated, JobOut, ParetoOut, Progress, TrialOut
from api.security import ReadAccess, WriteAccess
from core.artifacts import MODEL_CARD, ArtifactCorrupted, ArtifactError
from nas.objectives import f1_floor
from nas.pareto import pareto_keys
from nas.spec import JobSpec
from nas.spec_defaults import with_search_space_defaults
from nas.store import repo
from nas.store.models import Job, Trial, utcnow
from nas.validation import SpecError, validate_job, with_task_version

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
SORT_KEYS = ("number", "f1", "exact_match", "parameters", "ir_size_bytes", "p50_ms", "p90_ms", "p99_ms", "throughput_sps")
TrialNumber = Annotated[int, PathParam(ge=0, le=2**31 - 1, description="the trial's number in its job")]
SortKey = Literal[SORT_KEYS + tuple(f"-{k}" for k in SORT_KEYS)]  # type: ignore[valid-type]


def _job_or_404(session, job_id: str) -> Job:  # type: ignore[no-untyped-def]
    job = repo.get_job(session, job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")
    return job


def _job_out(session, job: Job, cache: RevisionCache, revision: int | None) -> JobOut:  # type: ignore[no-untyped-def]
    def summary() -> tuple[dict[str, int], tuple[int, float] | None, list[BaselineOut]]:
        baselines = [BaselineOut.model_validate(b) for b in repo.baselines_of(session, job.id)]
        return repo.count_trials(session, job.id), repo.best_trial(session, job.id), baselines

    counts, best, baselines = cache.get(job.id, revision, "summary", summary)
    end = job.finished_at or (utcnow() if job.started_at else None)
    started = job.started_at
    if started is not None and end is not None and started.tzinfo is None:
        end = end.replace(tzinfo=None)
    return JobOut.model_validate(
        {
            **{c: getattr(job, c) for c in JobOut.model_fields if c not in ("progress", "baselines", "stage_progress")},
            "stage_progress": job.stage_progress if job.status == "running" else None,
            "progress": Progress(
                trials_budget=job.spec["budget"]["trials"],
                completed=counts.get("completed", 0),
                failed=counts.get("failed", 0),
                running=counts.get("running", 0),
                skipped=counts.get("skipped", 0),
                elapsed_s=(end - started).total_seconds() if started is not None and end is not None else None,
                timeout_s=job.spec["budget"].get("timeout_s"),
                best_trial=best[0] if best else None,
                best_f1=best[1] if best else None,
            ),
            "baselines": baselines,
        }
    )


def _job_out_fresh(session, job: Job, cache: RevisionCache) -> JobOut:  # type: ignore[no-untyped-def]
    return _job_out(session, job, cache, repo.job_revisions(session, [job.id]).get(job.id))


_TRIALS = TypeAdapter(list[TrialOut])


def _json(body: bytes) -> Response:
    """A JSON answer rendered once per job revision and kept in the cache (the route's response model
    still documents it). A deleted job's events go with it, so its revision is None: never a stale hit."""
    return Response(body, media_type="application/json")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobCreated, dependencies=[WriteAccess])
def create_job(spec: JobSpec, request: Request, session: SessionDep, settings: SettingsDep, coordinator: CoordinatorDep) -> JobCreated:
    """Queue a job; a left-out ``search_space`` (or any of its layers, heads, ffn) is filled from the
    base model's config first, and the filled spec is what is validated, stored and searched. A left-out
    ``task.version`` (squad-v1.1 or squad-v2.0) is read from the data and stored too."""
    try:
        filled = with_search_space_defaults(spec, settings)  # the base passes its data-root check before its config is read
        synthetic = validate_job(filled, settings)
        filled = with_task_version(filled, settings)
    except SpecError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["body", *exc.field.split(".")], "msg": exc.message, "type": "value_error"}],
        ) from exc
    job_id = uuid.uuid4().hex
    with session.begin():
        repo.create_job(session, job_id=job_id, spec=filled.model_dump(mode="json"), synthetic=synthetic)
    coordinator.wake()  # the coordinator picks queued jobs up from the store
    return JobCreated(id=job_id, status="queued", url=str(request.url_for("get_job", job_id=job_id)))


@router.get("", response_model=list[JobOut], dependencies=[ReadAccess])
def list_jobs(
    session: SessionDep,
    cache: CacheDep,
    status_: Literal["queued", "running", "completed", "failed", "cancelled"] | None = Query(None, alias="status"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> list[JobOut]:
    jobs = repo.list_jobs(session, status=status_, limit=limit, offset=offset)
    revisions = repo.job_revisions(session, [j.id for j in jobs])
    return [_job_out(session, j, cache, revisions.get(j.id)) for j in jobs]


@router.get("/{job_id}", response_model=JobOut, dependencies=[ReadAccess])
def get_job(job_id: str, session: SessionDep, cache: CacheDep) -> JobOut:
    return _job_out_fresh(session, _job_or_404(session, job_id), cache)


@router.post("/{job_id}/cancel", response_model=JobOut, dependencies=[WriteAccess])
def cancel_job(job_id: str, session: SessionDep, coordinator: CoordinatorDep, cache: CacheDep) -> JobOut:
    job = _job_or_404(session, job_id)
    if job.status in repo.TERMINAL:
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} is already {job.status}")
    outcome = repo.cancel_job(session, job_id)  # queued: cancelled now; running: flagged for the coordinator
    session.commit()
    if outcome in repo.TERMINAL and outcome != "cancelled":
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} is already {outcome}")
    coordinator.wake()
    session.expire_all()
    return _job_out_fresh(session, _job_or_404(session, job_id), cache)


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[WriteAccess])
def delete_job(job_id: str, session: SessionDep, settings: SettingsDep, coordinator: CoordinatorDep) -> Response:
    """Delete a finished job: its rows, its Optuna study and its artifacts. A live job must be cancelled first."""
    job = _job_or_404(session, job_id)
    if job.status not in repo.TERMINAL:  # the coordinator writes a terminal status last, when it is done with the job
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} is {job.status}: cancel it before deleting")
    study_name = job.study_name
    session.delete(job)
    session.commit()
    coordinator.delete_study(study_name)
    settings.artifacts().remove_job(job_id)  # job_id came from the store, not the URL
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _metric(t: Trial, key: str, target: str | None) -> float:
    if key in ("p50_ms", "p90_ms", "p99_ms", "throughput_sps"):
        for m in t.measurements:
            if target is None or m.target == target:  # a trial's measurements share its job's precision
                return getattr(m, key)
        return float("nan")
    value = getattr(t, key)
    return float("nan") if value is None else float(value)


@router.get("/{job_id}/trials", response_model=list[TrialOut], dependencies=[ReadAccess])
def list_trials(
    job_id: str,
    session: SessionDep,
    cache: CacheDep,
    state: Literal["running", "completed", "failed", "skipped"] | None = None,
    target: str | None = Query(None, max_length=64, description="only trials measured on this target"),
    sort: SortKey = Query("number", description="a metric, '-' prefix for descending"),  # type: ignore[valid-type]
    limit: int = Query(1000, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
) -> Response:
    revision, query = repo.job_revisions(session, [job_id]).get(job_id), ("trials", state, target, sort, limit, offset)
    if (hit := cache.peek(job_id, revision, query)) is not None:
        return _json(hit)  # type: ignore[arg-type]
    _job_or_404(session, job_id)

    def render() -> bytes:
        trials = repo.list_trials(
            session, job_id, state=state, target=target, sort=sort.lstrip("-"), descending=sort.startswith("-"), limit=limit, offset=offset
        )  # fmt: skip
        return _TRIALS.dump_json([TrialOut.model_validate(t) for t in trials])

    return _json(cache.get(job_id, revision, query, render))


@router.get("/{job_id}/trials/{number}", response_model=TrialOut, dependencies=[ReadAccess])
def get_trial(job_id: str, number: TrialNumber, session: SessionDep) -> TrialOut:
    trial = repo.get_trial(session, job_id, number)
    if trial is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} has no trial {number}")
    return TrialOut.model_validate(trial)


@router.get("/{job_id}/pareto", response_model=ParetoOut, dependencies=[ReadAccess])
def pareto(
    job_id: str,
    session: SessionDep,
    cache: CacheDep,
    target: str = Query("native", max_length=64),
    min_f1: float | None = Query(None, ge=0, le=100),
    max_latency_ms: float | None = Query(None, gt=0),
    view: Literal["deployed", "fixed"] = Query(
        "deployed", description="deployed: each trial's chosen deployment's figures; fixed: at max_seq_length padding (MLPerf closed, earlier jobs)"
    ),
) -> Response:
    """Non-dominated completed trials for one target (maximise INT8 F1; minimise p90 latency, or maximise
    Offline throughput for a job whose objective is throughput), fastest first, with the baselines and the
    best trial under the constraint: the query's, else the job's own (its F1 floor and p90 cap)."""
    revision, query = repo.job_revisions(session, [job_id]).get(job_id), ("pareto", target, min_f1, max_latency_ms, view)
    if (hit := cache.peek(job_id, revision, query)) is not None:  # the target was checked when it was stored
        return _json(hit)  # type: ignore[arg-type]
    job = _job_or_404(session, job_id)
    if target not in job.spec["targets"]:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"target {target!r} is not one of {job.spec['targets']}")
    return _json(cache.get(job_id, revision, query, lambda: _front(session, job, target, min_f1, max_latency_ms, view).model_dump_json().encode()))


def _fixed_length(session, job_id: str, target: str, metric: str, rows: list[tuple[int, float, float]]) -> list[tuple[int, float, float]]:  # type: ignore[no-untyped-def]
    """``rows`` with each trial's fixed-length figure (``fingerprint["fixed_length"]``) where it has one."""
    trials = repo.trials_by_number(session, job_id, [n for n, _, _ in rows])
    out = []
    for n, f1, value in rows:
        fp = next((m.fingerprint or {} for m in trials[n].measurements if m.target == target), {})
        out.append((n, f1, float((fp.get("fixed_length") or {}).get(metric, value))))
    return out


def _front(session, job: Job, target: str, min_f1: float | None, max_latency_ms: float | None, view: str = "deployed") -> ParetoOut:  # type: ignore[no-untyped-def]
    job_id = job.id
    baselines = repo.baselines_of(session, job_id)
    if min_f1 is None and max_latency_ms is None:
        min_f1, max_latency_ms = _job_constraint(job, baselines)
    throughput = job.spec.get("objective", "latency") == "throughput"
    metric = "throughput_sps" if throughput else "p90_ms"
    rows = repo.pareto_points(session, job_id, target, metric)
    if view == "fixed":
        rows = _fixed_length(session, job_id, target, metric, rows)
    f1 = {n: v for n, v, _ in rows}
    speed = {n: p for n, _, p in rows}
    directions = ["maximize", "maximize" if throughput else "minimize"]
    front = sorted(pareto_keys([(n, (v, p)) for n, v, p in rows], directions), key=lambda n: -speed[n] if throughput else speed[n])  # type: ignore[arg-type, index, operator]
    trials = repo.trials_by_number(session, job_id, front)  # type: ignore[arg-type]
    p90 = {n: _metric(trials[n], "p90_ms", target) for n in front}  # type: ignore[index]
    ok = [n for n in front if (min_f1 is None or f1[n] >= min_f1) and (max_latency_ms is None or p90[n] <= max_latency_ms)]  # type: ignore[index, operator]
    best = None
    if ok and (min_f1 is not None or max_latency_ms is not None):
        best = ok[0] if min_f1 is not None else max(ok, key=lambda n: f1[n])  # type: ignore[index]
    return ParetoOut(
        job_id=job_id,
        target=target,
        objectives=["maximize f1", f"{directions[1]} {metric}" + (" at fixed length" if view == "fixed" else "")],
        trials=[TrialOut.model_validate(trials[n]) for n in front],  # type: ignore[index]
        baselines=[BaselineOut.model_validate(b) for b in baselines],
        constraint=Constraint(min_f1=min_f1, max_latency_ms=max_latency_ms),
        best=TrialOut.model_validate(trials[best]) if best is not None else None,
    )


def _job_constraint(job: Job, baselines) -> tuple[float | None, float | None]:  # type: ignore[no-untyped-def]
    """The job's F1 floor (absolute, or its ratio of the teacher's FP32 F1) and p90 cap, as stored."""
    c = job.spec.get("constraints") or {}
    fp32 = next((b.f1 for b in baselines if b.precision == "fp32" and b.f1 is not None), None)
    return f1_floor(c.get("min_f1"), c.get("min_f1_ratio"), fp32), c.get("max_latency_ms")


@router.get("/{job_id}/trials/{number}/card", response_model=dict[str, Any], dependencies=[ReadAccess])
def model_card(job_id: str, number: TrialNumber, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """The trial's ``model_card.json``, the one its zip carries (architecture, metrics, measurements, data)."""
    trial = repo.get_trial(session, job_id, number)
    if trial is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} has no trial {number}")
    if trial.state != "completed" or not trial.artifact_dir:
        raise HTTPException(status.HTTP_409_CONFLICT, f"trial {number} is {trial.state}: no model card")
    card = (Path(trial.artifact_dir) / MODEL_CARD).resolve()  # the path comes from the store
    if not card.is_relative_to(settings.artifacts().root) or not card.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"trial {number} has no model card in the artifact store")
    return json.loads(card.read_text())


@router.get("/{job_id}/trials/{number}/model", response_class=FileResponse, dependencies=[ReadAccess])
def download_model(job_id: str, number: TrialNumber, session: SessionDep, settings: SettingsDep) -> FileResponse:
    """The trial's OpenVINO IR (in its job's precision) as a zip (optimum-intel layout plus model_card.json)."""
    trial = repo.get_trial(session, job_id, number)
    if trial is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} has no trial {number}")
    if trial.state != "completed" or not trial.artifact_dir:
        raise HTTPException(status.HTTP_409_CONFLICT, f"trial {number} is {trial.state}: no model to download")
    try:
        path, digest = settings.artifacts().model_zip(trial.artifact_dir, {a.name: a.sha256 for a in trial.artifacts})
    except ArtifactCorrupted as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except ArtifactError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"hwnas-{job_id[:8]}-trial{number}-{trial.measurements[0].precision if trial.measurements else 'int8'}.zip",
        headers={"X-Checksum-SHA256": digest},
    )
