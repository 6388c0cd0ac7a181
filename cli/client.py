"""A small typed client of the hwnas REST API (httpx), used by the CLI, the demo and the tests."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import httpx

TERMINAL = ("completed", "failed", "cancelled")


class ApiError(RuntimeError):
    """A non-2xx answer, with the server's status and detail."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class HwnasClient:
    def __init__(self, server: str = "http://127.0.0.1:8000", *, token: str | None = None, timeout: float = 60) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=timeout)

    def __enter__(self) -> "HwnasClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        r = self._http.request(method, path, **kwargs)
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise ApiError(r.status_code, detail)
        return r

    # jobs
    def submit(self, spec: dict[str, Any]) -> str:
        return self._call("POST", "/api/v1/jobs", json=spec).json()["id"]

    def jobs(self, *, status: str | None = None, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        params = {"limit": limit, "offset": offset} | ({"status": status} if status else {})
        return self._call("GET", "/api/v1/jobs", params=params).json()

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/jobs/{job_id}").json()

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/jobs/{job_id}/cancel").json()

    def delete(self, job_id: str) -> None:
        self._call("DELETE", f"/api/v1/jobs/{job_id}")

    def wait(self, job_id: str, *, timeout: float = 3600, poll: float = 1.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in TERMINAL:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:.0f}s")
            time.sleep(poll)

    # trials and fronts
    def trials(self, job_id: str, **params: Any) -> list[dict[str, Any]]:
        return self._call("GET", f"/api/v1/jobs/{job_id}/trials", params=params).json()

    def trial(self, job_id: str, number: int) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/jobs/{job_id}/trials/{number}").json()

    def pareto(self, job_id: str, target: str = "native", **constraints: float) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/jobs/{job_id}/pareto", params={"target": target, **constraints}).json()

    def download(self, job_id: str, number: int, dest: Path) -> tuple[Path, str]:
        """Stream the trial's INT8 model zip to ``dest`` (a file path); return it and its sha256."""
        import hashlib

        h = hashlib.sha256()
        with self._http.stream("GET", f"/api/v1/jobs/{job_id}/trials/{number}/model") as r:
            if r.status_code >= 400:
                r.read()
                raise ApiError(r.status_code, r.text)
            expected = r.headers.get("X-Checksum-SHA256")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with dest.open("wb") as f:
                for chunk in r.iter_bytes():
                    h.update(chunk)
                    f.write(chunk)
        if expected and expected != h.hexdigest():
            dest.unlink(missing_ok=True)
            raise ApiError(502, f"checksum mismatch for {dest.name}: got {h.hexdigest()}, server said {expected}")
        return dest, h.hexdigest()

    def events(self, job_id: str | None = None, *, last_event_id: int | None = None) -> Iterator[dict[str, Any]]:
        """Server-sent events (job and trial changes), resumable from ``last_event_id``."""
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        params = {"job_id": job_id} if job_id else {}
        with self._http.stream("GET", "/api/v1/events", params=params, headers=headers, timeout=None) as r:
            event: dict[str, Any] = {}
            for line in r.iter_lines():
                if not line:
                    if "data" in event:
                        yield event
                    event = {}
                elif line.startswith("id:"):
                    event["id"] = int(line[3:].strip())
                elif line.startswith("event:"):
                    event["event"] = line[6:].strip()
                elif line.startswith("data:"):
                    event["data"] = json.loads(line[5:].strip())
