"""/api/v1/jobs: submit, read, cancel; trials, Pareto fronts and model downloads."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import FileResponse

from api.deps import CoordinatorDep, SessionDep, SettingsDep
from api.schemas import BaselineOut, JobCreated, JobOut, ParetoOut, Progress, TrialOut
from nas.artifacts import ArtifactError, model_zip
from nas.pareto import pareto_keys
from nas.spec import JobSpec
from nas.store import repo
from nas.store.models import Job
from nas.validation import SpecError, validate_job

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


def _job_or_404(session, job_id: str) -> Job:  # type: ignore[no-untyped-def]
    job = repo.get_job(session, job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")
    return job


def _job_out(session, job: Job) -> JobOut:  # type: ignore[no-untyped-def]
    counts = repo.count_trials(session, job.id)
    return JobOut.model_validate(
        {
            **{c: getattr(job, c) for c in JobOut.model_fields if hasattr(job, c) and c not in ("progress", "baselines")},
            "progress": Progress(
                trials_budget=job.spec["budget"]["trials"],
                completed=counts.get("completed", 0),
                failed=counts.get("failed", 0),
                running=counts.get("running", 0),
            ),
            "baselines": [BaselineOut.model_validate(b) for b in repo.baselines_of(session, job.id)],
        }
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobCreated)
def create_job(spec: JobSpec, request: Request, session: SessionDep, settings: SettingsDep, coordinator: CoordinatorDep) -> JobCreated:
    try:
        synthetic = validate_job(spec, settings)
    except SpecError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["body", *exc.field.split(".")], "msg": exc.message, "type": "value_error"}],
        ) from exc
    job_id = uuid.uuid4().hex
    with session.begin():
        repo.create_job(session, job_id=job_id, spec=spec.model_dump(mode="json"), synthetic=synthetic)
    coordinator.submit(job_id)
    return JobCreated(id=job_id, status="queued", url=str(request.url_for("get_job", job_id=job_id)))


@router.get("", response_model=list[JobOut])
def list_jobs(
    session: SessionDep,
    status_: str | None = Query(None, alias="status"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> list[JobOut]:
    return [_job_out(session, j) for j in repo.list_jobs(session, status=status_, limit=limit, offset=offset)]


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, session: SessionDep) -> JobOut:
    return _job_out(session, _job_or_404(session, job_id))


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: str, session: SessionDep, coordinator: CoordinatorDep) -> JobOut:
    job = _job_or_404(session, job_id)
    if job.status in repo.TERMINAL:
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} is already {job.status}")
    coordinator.cancel(job_id)
    if not coordinator.is_running(job_id):
        with session.begin():
            repo.update_job(session, job_id, status="cancelled")
    session.refresh(job)
    return _job_out(session, job)


@router.get("/{job_id}/trials", response_model=list[TrialOut])
def list_trials(
    job_id: str, session: SessionDep, state: Literal["running", "completed", "failed"] | None = None
) -> list[TrialOut]:
    _job_or_404(session, job_id)
    return [TrialOut.model_validate(t) for t in repo.trials_of(session, job_id, state=state)]


@router.get("/{job_id}/trials/{number}", response_model=TrialOut)
def get_trial(job_id: str, number: int, session: SessionDep) -> TrialOut:
    trial = repo.get_trial(session, job_id, number)
    if trial is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} has no trial {number}")
    return TrialOut.model_validate(trial)


@router.get("/{job_id}/pareto", response_model=ParetoOut)
def pareto(job_id: str, session: SessionDep, target: str = "native") -> ParetoOut:
    """Non-dominated completed trials for one target: maximise INT8 F1, minimise p90 latency."""
    job = _job_or_404(session, job_id)
    if target not in job.spec["targets"]:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"target {target!r} is not one of {job.spec['targets']}")
    trials = {t.number: t for t in repo.trials_of(session, job_id, state="completed")}
    points = []
    for number, t in trials.items():
        for m in t.measurements:
            if m.target == target and m.precision == "int8" and t.f1 is not None:
                points.append((number, (t.f1, m.p90_ms)))
    front = pareto_keys(points, ["maximize", "minimize"])
    latency = dict((n, v[1]) for n, v in points)
    ordered = sorted(front, key=lambda n: latency[n])
    return ParetoOut(
        job_id=job_id,
        target=target,
        objectives=["maximize f1", "minimize p90_ms"],
        trials=[TrialOut.model_validate(trials[n]) for n in ordered],
        baselines=[BaselineOut.model_validate(b) for b in repo.baselines_of(session, job_id)],
    )


@router.get("/{job_id}/trials/{number}/model", response_class=FileResponse)
def download_model(job_id: str, number: int, session: SessionDep, settings: SettingsDep) -> FileResponse:
    trial = repo.get_trial(session, job_id, number)
    if trial is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} has no trial {number}")
    if trial.state != "completed" or not trial.artifact_dir:
        raise HTTPException(status.HTTP_409_CONFLICT, f"trial {number} is {trial.state}: no model to download")
    try:
        path, digest = model_zip(trial.artifact_dir, settings.artifacts_dir)
    except ArtifactError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"hwnas-{job_id[:8]}-trial{number}-int8.zip",
        headers={"X-Checksum-SHA256": digest},
    )
