"""One real service (auth required, a write token) and one tiny search job, shared by the dashboard tests.

The job runs for real (Ray, NNCF, OpenVINO, a tiny random BERT); the browser tests watch it while it
runs, the optuna-dashboard test reads its study once it has finished.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from api.server import ServiceThread, free_port
from nas.config import Settings
from tests.conftest import SQUAD_DIR
from tests.helpers import wait_for_job

LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """Debian's chromium (``apt-get install chromium``; .ci/run installs it). Never a downloaded browser."""
    for candidate in (os.environ.get("HWNAS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def job_spec(model_dir: Path, train: str, evalf: str) -> dict[str, Any]:
    from tests.test_loop_tiny import tiny_spec

    return tiny_spec(
        model_dir, train, evalf, name="dashboard tiny search", seed=5, deployment={},  # the trial page shows each deployment
        task={"train_file": train, "eval_file": evalf, "max_seq_length": 128, "doc_stride": 48, "max_eval_examples": 24, "calibration_samples": 8},
        search_space={"layers": [1, 2, 3], "heads": [2, 4], "ffn": [32, 128]},
    )  # fmt: skip


@pytest.fixture(scope="package")
def service(tmp_path_factory: pytest.TempPathFactory, ray_local, tiny_qa_model) -> Iterator[tuple[httpx.Client, Settings, str]]:  # type: ignore[no-untyped-def]
    """(client with a write token, settings, the token): the pages must work when the API wants tokens.

    With tokens required, specs may only read the data dir and the data roots: the tiny model and SQuAD.
    """
    from nas.store.db import make_engine, session_factory
    from nas.store.tokens import create_token

    roots = [tiny_qa_model, SQUAD_DIR]
    settings = Settings(data_dir=tmp_path_factory.mktemp("hwnas-dashboard"), port=free_port(), db_url=None, auth="required", data_roots=roots)
    with ServiceThread(settings) as url:
        engine = make_engine(settings.resolved_db_url())
        with session_factory(engine).begin() as s:
            token = create_token(s, scope="write", name="dashboard tests")
        engine.dispose()
        with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
            yield client, settings, token


@pytest.fixture(scope="package")
def live_job(service, tiny_qa_model, squad_files) -> str:  # type: ignore[no-untyped-def]
    """A tiny search, submitted and left running: the id."""
    client, _, _ = service
    r = client.post("/api/v1/jobs", json=job_spec(tiny_qa_model, *squad_files))
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.fixture(scope="package")
def finished_job(service, live_job) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    client, _, _ = service
    job = wait_for_job(client, live_job, timeout=900)
    assert job["status"] == "completed", job["error"]
    return job
