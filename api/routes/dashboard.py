"""The dashboard: three static pages served by the API itself (jobs, one job, one trial).

The pages are plain HTML with one script each (``api/static/``); they read the same REST API
and event stream as the CLI, sending the bearer token the user typed (kept in localStorage).
plotly.js comes from the ``plotly`` Python package, so nothing is fetched from a CDN.
The pages themselves hold no data, so they are served without a token.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, FastAPI, HTTPException, Request, status
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.security import ReadAccess

STATIC = Path(__file__).resolve().parents[1] / "static"
router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/")
def jobs_page() -> FileResponse:
    return _page("jobs.html")


@router.get("/jobs/{job_id}")
def job_page(job_id: str) -> FileResponse:
    return _page("job.html")


@router.get("/jobs/{job_id}/trials/{number}")
def trial_page(job_id: str, number: int) -> FileResponse:
    return _page("trial.html")


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/dashboard")
def dashboard_alias() -> RedirectResponse:
    return RedirectResponse("/")


def plotly_js() -> Path:
    """The file inside the installed plotly package (found, not imported: the API stays light)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the plotly package is not installed (it is in requirements.lock)")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


@router.get("/vendor/plotly.min.js")
def plotly_bundle() -> FileResponse:
    """plotly.js as bundled by the plotly Python package (offline, versioned with the lock file)."""
    return FileResponse(plotly_js(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})


@router.post("/ui/spec", dependencies=[ReadAccess])
async def parse_spec(request: Request) -> dict[str, Any]:
    """YAML or JSON text to a JSON object, for the submit form (browsers have no YAML parser).
    Only parses; the form then POSTs the object to /api/v1/jobs, which validates it."""
    try:
        spec = yaml.safe_load(await request.body())
    except yaml.YAMLError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"not valid YAML or JSON: {exc}") from exc
    if not isinstance(spec, dict):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a job spec is a mapping (YAML) or an object (JSON)")
    return spec


def install(app: FastAPI) -> None:
    """Add the pages, plotly.js and the static files to ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
