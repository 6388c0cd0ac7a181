"""Test helpers that drive the real service over HTTP."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

import httpx


def wait_for_job(client: httpx.Client, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").raise_for_status().json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} did not finish in {timeout}s: {job}")


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.3) -> Any:
    """``predicate()``'s first truthy value, polled every ``interval`` s; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def dominated(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Is a = (f1, latency) dominated by b?  (Independent of the service's Optuna-based front.)"""
    return b[0] >= a[0] and b[1] <= a[1] and (b[0] > a[0] or b[1] < a[1])


def unzip(content: bytes, dest: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        zf.extractall(dest)
    return dest
