"""Liveness, readiness, Prometheus metrics and the live Ray nodes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, select, text

from api.deps import CacheDep, CoordinatorDep, SessionDep
from api.security import ReadAccess
from nas.store.models import Job, Trial

router = APIRouter(prefix="/api/v1", tags=["service"])


@router.get("/health")
def health() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/ready")
def ready(session: SessionDep, coordinator: CoordinatorDep) -> dict[str, Any]:
    """The database answers and the coordinator has reported within 15 s (it beats every 2 s with the
    live Ray nodes): 503 otherwise, with the reason."""
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"database unavailable: {exc}") from exc
    live, why, nodes = coordinator.status(session)
    if live is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"coordinator not running: {why}")
    return {"status": "ready", "ray_nodes": len(nodes), "coordinator": live}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(session: SessionDep, cache: CacheDep) -> str:
    """Prometheus text format: jobs by status, trials by state, trials waiting for or in measurement,
    and the answer cache (its bytes are most of what the service's memory grows by under polling)."""
    lines = ["# HELP hwnas_jobs Jobs by status.", "# TYPE hwnas_jobs gauge"]
    for st, n in session.execute(select(Job.status, func.count()).group_by(Job.status)):
        lines.append(f'hwnas_jobs{{status="{st}"}} {n}')
    lines += ["# HELP hwnas_trials Trials by state.", "# TYPE hwnas_trials gauge"]
    states = dict(session.execute(select(Trial.state, func.count()).group_by(Trial.state)).all())
    for st, n in states.items():
        lines.append(f'hwnas_trials{{state="{st}"}} {n}')
    lines += [
        "# HELP hwnas_measurement_queue Trials dispatched and not finished (each ends in a measurement).",
        "# TYPE hwnas_measurement_queue gauge",
        f"hwnas_measurement_queue {states.get('running', 0)}",
        "# HELP hwnas_answer_cache_bytes Bytes of rendered answers kept by the revision cache.",
        "# TYPE hwnas_answer_cache_bytes gauge",
        f"hwnas_answer_cache_bytes {cache.bytes}",
        "# HELP hwnas_answer_cache_entries Answers kept by the revision cache.",
        "# TYPE hwnas_answer_cache_entries gauge",
        f"hwnas_answer_cache_entries {len(cache)}",
        "# HELP hwnas_answer_cache_hits_total Polls answered from the revision cache.",
        "# TYPE hwnas_answer_cache_hits_total counter",
        f"hwnas_answer_cache_hits_total {cache.hits}",
        "# HELP hwnas_answer_cache_misses_total Polls that computed their answer.",
        "# TYPE hwnas_answer_cache_misses_total counter",
        f"hwnas_answer_cache_misses_total {cache.misses}",
    ]
    return "\n".join(lines) + "\n"


@router.get("/workers", dependencies=[ReadAccess])
def workers(session: SessionDep, coordinator: CoordinatorDep) -> list[dict[str, Any]]:
    """Live Ray nodes and the hardware targets each serves, as the coordinator last reported them
    (503 when it has not reported within 15 s)."""
    live, why, nodes = coordinator.status(session)
    if live is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"coordinator not running: {why}")
    return nodes
