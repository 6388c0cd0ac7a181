"""/api/v1/targets: the hardware target profiles, what this machine is, and adding a user profile.

User profiles added here are written as ``<name>.yaml`` into ``Settings.data_dir / "targets"``
and registered in this process's ``targets.TARGETS`` (which job validation reads). The
router's lifespan loads that directory when the app starts, so profiles survive a restart.
Workers in other processes find them through ``HWNAS_TARGETS_DIR`` (see the README).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import APIRouter, FastAPI, HTTPException, Request, status
from pydantic import BaseModel

from api.security import ReadAccess, WriteAccess
from targets import (
    TARGETS,
    HardwareTarget,
    TargetExistsError,
    TargetProfile,
    TargetProfileError,
    detect_cpu,
    is_native,
    native_target,
)


def targets_dir(request_or_app: Request | FastAPI) -> Path:
    """Where the service keeps user profiles: ``<data_dir>/targets``."""
    app = request_or_app.app if isinstance(request_or_app, Request) else request_or_app
    return Path(app.state.settings.data_dir) / "targets"


def _load(request_or_app: Request | FastAPI) -> None:
    try:
        TARGETS.load(targets_dir(request_or_app))
    except TargetProfileError as exc:  # a bad file on disk is the operator's to fix; say which
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc)) from exc


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load ``<data_dir>/targets`` at start-up (runs after the app's own lifespan set ``settings``)."""
    if getattr(app.state, "settings", None) is not None:
        TARGETS.load(targets_dir(app))
    yield


router = APIRouter(prefix="/api/v1/targets", tags=["targets"], lifespan=lifespan)


class TargetOut(TargetProfile):
    source: str  # "builtin" or the profile file
    native_here: bool  # measured natively (no emulation) on this machine


class TargetsOut(BaseModel):
    host: dict[str, Any]  # detect_cpu(), plus native_target: the profile this machine measures natively
    targets: list[TargetOut]
    targets_dirs: list[str]


def _out(target: HardwareTarget, cpu: dict[str, Any]) -> TargetOut:
    return TargetOut(**target.to_profile(), source=target.source, native_here=is_native(target, cpu))


@router.get("", response_model=TargetsOut, dependencies=[ReadAccess])
def list_targets(request: Request) -> TargetsOut:
    _load(request)
    cpu = detect_cpu()
    return TargetsOut(
        host={**cpu, "native_target": native_target(cpu)},
        targets=[_out(t, cpu) for t in TARGETS.values()],
        targets_dirs=[str(d) for d in TARGETS.directories()],
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TargetOut, dependencies=[WriteAccess])
def add_target(profile: TargetProfile, request: Request) -> TargetOut:
    """Add a user profile (422 names a bad field; 409 if the name is taken)."""
    _load(request)
    try:
        target = TARGETS.register(profile, directory=targets_dir(request))
    except TargetExistsError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except TargetProfileError as exc:
        loc = ["body", *(exc.field.split(".") if exc.field else [])]
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, [{"loc": loc, "msg": str(exc), "type": "value_error"}]
        ) from exc
    return _out(target, detect_cpu())
