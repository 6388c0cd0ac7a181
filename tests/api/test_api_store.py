"""The real HTTP app (uvicorn + httpx) over both stores: one test class, SQLite and PostgreSQL.

The job rows are seeded through the store's own functions (what the coordinator writes),
so these tests exercise reads, filters, fronts, deletion, events and security quickly;
tests/test_loop_*.py run the real search end to end.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

from cli.client import ApiError, HwnasClient
from api.server import ServiceThread, free_port
from nas.config import Settings
from nas.store import repo
from nas.store.db import make_engine, session_factory, upgrade
from nas.store.tokens import create_token
from core.types import Measurement, SubnetConfig, TrialResult
from tests.helpers import dominated
from tests.store.conftest import _drop, _pg_database

N_TRIALS = 30


def _seed(url: str, artifacts: Path, job_id: str, *, status: str = "completed") -> dict[int, tuple[float, float]]:
    """A finished job with trials, baselines and one artifact directory, written as the coordinator does."""
    upgrade(url)
    sessions = session_factory(make_engine(url))
    rng = np.random.default_rng(0)
    points: dict[int, tuple[float, float]] = {}
    spec = {"name": "seeded", "targets": ["native", "icelake"], "budget": {"trials": N_TRIALS}}
    with sessions.begin() as s:
        repo.create_job(s, job_id=job_id, spec=spec, synthetic=False)
        repo.update_job(s, job_id, status=status, stage="done")
    art = artifacts / job_id / "trial-0"
    art.mkdir(parents=True)
    for name in ("openvino_model.xml", "openvino_model.bin", "config.json", "model_card.json"):
        (art / name).write_text(name)
    for n in range(N_TRIALS):
        sub = SubnetConfig((0, 1), (2, 2), (32 * (n + 1),) * 2)
        with sessions.begin() as s:
            repo.start_trial(s, job_id, number=n, optuna_trial_id=n, config=sub.to_dict())
        if n % 7 == 6:
            with sessions.begin() as s:
                repo.fail_trial(s, job_id, n, "RuntimeError: compile failed")
            continue
        f1, p90 = float(rng.uniform(20, 90)), float(rng.uniform(1, 10))
        points[n] = (f1, p90)
        ms = tuple(
            Measurement(t, "int8", 128, 1, p90 * k * 0.8, p90 * k, p90 * k * 1.1, 100, 16, 1000 / (p90 * k), {"target": t})
            for t, k in (("native", 1.0), ("icelake", 1.5))
        )
        result = TrialResult(n, sub, f1, f1 - 5, 40, 1000 + n, 5000, ms, {"extract": 0.1}, str(art), "host")
        with sessions.begin() as s:
            repo.complete_trial(s, job_id, result)
    return points


@pytest.fixture(scope="class", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def service(request, tmp_path_factory, ray_local):  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp(f"api-{request.param}")
    pg = None
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'hwnas.db'}"
    else:
        pg = _pg_database()
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg}"
    settings = Settings(data_dir=data_dir, db_url=url, port=free_port(), auth="required", max_body_bytes=64 * 1024)
    upgrade(url)
    with session_factory(make_engine(url)).begin() as s:
        write, read = create_token(s, scope="write"), create_token(s, scope="read")
    points = _seed(url, settings.artifacts_dir, "a" * 32)
    _seed(url, settings.artifacts_dir, "b" * 32, status="failed")
    with ServiceThread(settings) as base:
        yield {"url": base, "write": write, "read": read, "points": points, "settings": settings}
    if pg:
        _drop(pg)


class TestApiOverBothStores:
    def test_list_filter_and_paginate_jobs(self, service) -> None:  # type: ignore[no-untyped-def]
        with HwnasClient(service["url"], token=service["read"]) as c:
            assert {j["id"] for j in c.jobs()} == {"a" * 32, "b" * 32}
            assert [j["id"] for j in c.jobs(status="failed")] == ["b" * 32]
            assert len(c.jobs(limit=1)) == 1 and len(c.jobs(limit=1, offset=1)) == 1
            job = c.job("a" * 32)
            assert job["progress"]["completed"] == len(service["points"]) and job["progress"]["failed"] == N_TRIALS - len(service["points"])

    def test_trials_filter_sort_paginate(self, service) -> None:  # type: ignore[no-untyped-def]
        with HwnasClient(service["url"], token=service["read"]) as c:
            failed = c.trials("a" * 32, state="failed")
            assert failed and all(t["error"] == "RuntimeError: compile failed" for t in failed)
            by_f1 = c.trials("a" * 32, state="completed", sort="-f1")
            assert [t["f1"] for t in by_f1] == sorted((p[0] for p in service["points"].values()), reverse=True)
            by_lat = c.trials("a" * 32, state="completed", sort="p90_ms", target="icelake")
            lat = [next(m["p90_ms"] for m in t["measurements"] if m["target"] == "icelake") for t in by_lat]
            assert lat == sorted(lat)
            page = c.trials("a" * 32, sort="number", limit=5, offset=5)
            assert [t["number"] for t in page] == list(range(5, 10))
            with pytest.raises(ApiError) as err:
                c.trials("a" * 32, sort="colour")
            assert err.value.status == 422

    def test_pareto_front_and_best_under_constraint(self, service) -> None:  # type: ignore[no-untyped-def]
        pts = service["points"]
        with HwnasClient(service["url"], token=service["read"]) as c:
            front = c.pareto("a" * 32, "native")
            numbers = [t["number"] for t in front["trials"]]
            expected = {n for n, p in pts.items() if not any(dominated(p, q) for q in pts.values())}
            assert set(numbers) == expected
            best = c.pareto("a" * 32, "native", min_f1=60)["best"]
            ok = {n: p for n, p in pts.items() if p[0] >= 60}
            assert best["number"] == min(ok, key=lambda n: ok[n][1])
            capped = c.pareto("a" * 32, "native", max_latency_ms=5)["best"]
            ok = {n: p for n, p in pts.items() if p[1] <= 5}
            assert capped["number"] == max(ok, key=lambda n: ok[n][0])

    def test_events_stream_resumes_from_last_event_id(self, service) -> None:  # type: ignore[no-untyped-def]
        got: list[dict] = []

        def read(after=None):  # type: ignore[no-untyped-def]
            with HwnasClient(service["url"], token=service["read"], timeout=10) as c:
                for ev in c.events("a" * 32, last_event_id=after):
                    got.append(ev)
                    if len(got) >= 5:
                        return

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(15)
        assert len(got) == 5 and [e["id"] for e in got] == sorted(e["id"] for e in got)
        assert all(e["data"]["job_id"] == "a" * 32 for e in got)
        resumed_from = got[2]["id"]
        got.clear()
        t = threading.Thread(target=read, args=(resumed_from,), daemon=True)
        t.start()
        t.join(15)
        assert got and got[0]["id"] > resumed_from

    def test_events_since_now_skips_the_past(self, service) -> None:  # type: ignore[no-untyped-def]
        """A page that has just read the state asks only for what changes next."""
        headers = {"Authorization": f"Bearer {service['read']}"}
        params = {"job_id": "a" * 32, "since": "now"}
        lines: list[str] = []
        with httpx.stream("GET", f"{service['url']}/api/v1/events", params=params, headers=headers, timeout=httpx.Timeout(10, read=2)) as r:
            assert r.status_code == 200
            try:
                for line in r.iter_lines():  # nothing but the retry line may come: the past is skipped
                    lines.append(line)
            except httpx.ReadTimeout:
                pass
        assert lines and lines[0].startswith("retry:") and not any(line.startswith("id:") for line in lines)
        bad = httpx.get(f"{service['url']}/api/v1/events", params={"since": "yesterday"}, headers=headers)
        assert bad.status_code == 422

    def test_security_scopes(self, service) -> None:  # type: ignore[no-untyped-def]
        url = service["url"]
        assert httpx.get(f"{url}/api/v1/jobs").status_code == 401
        assert httpx.get(f"{url}/api/v1/jobs", headers={"Authorization": "Bearer hwnas_wrong"}).status_code == 401
        for method, path in (("POST", "/api/v1/jobs"), ("POST", f"/api/v1/jobs/{'a' * 32}/cancel"), ("DELETE", f"/api/v1/jobs/{'a' * 32}")):
            assert httpx.request(method, url + path, json={}).status_code == 401
            r = httpx.request(method, url + path, json={}, headers={"Authorization": f"Bearer {service['read']}"})
            assert r.status_code == 403 and "read-only" in r.text
        r = httpx.post(f"{url}/api/v1/jobs", json={"base_model": "x"}, headers={"Authorization": f"Bearer {service['write']}"})
        assert r.status_code == 422  # past auth, into validation
        assert service["write"] not in r.text
        assert httpx.get(f"{url}/api/v1/health").status_code == 200  # liveness stays open

    def test_oversized_body_is_413(self, service) -> None:  # type: ignore[no-untyped-def]
        body = json.dumps({"name": "x" * 100_000})
        r = httpx.post(f"{service['url']}/api/v1/jobs", content=body, headers={"Authorization": f"Bearer {service['write']}", "Content-Type": "application/json"})
        assert r.status_code == 413 and "exceeds" in r.text

    def test_download_and_conflicts(self, service, tmp_path) -> None:  # type: ignore[no-untyped-def]
        with HwnasClient(service["url"], token=service["write"]) as c:
            path, digest = c.download("a" * 32, 0, tmp_path / "m.zip")
            assert path.stat().st_size > 0 and len(digest) == 64
            with pytest.raises(ApiError) as err:
                c.download("a" * 32, 6, tmp_path / "failed.zip")  # a failed trial
            assert err.value.status == 409
            with pytest.raises(ApiError) as err:
                c.cancel("a" * 32)
            assert err.value.status == 409 and "already completed" in str(err.value.detail)
            with pytest.raises(ApiError) as err:
                c.trial("a" * 32, 999)
            assert err.value.status == 404

    def test_metrics_and_readiness(self, service) -> None:  # type: ignore[no-untyped-def]
        def gauge(text: str, name: str) -> float:
            return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")))

        url = service["url"]
        before = httpx.get(f"{url}/api/v1/metrics").text
        assert 'hwnas_jobs{status="completed"} 1' in before and 'hwnas_trials{state="failed"}' in before
        for _ in range(2):  # the first poll of a revision renders the answer, the second is a hit
            httpx.get(f"{url}/api/v1/jobs/{'a' * 32}/pareto", headers={"Authorization": f"Bearer {service['read']}"}).raise_for_status()
        after = httpx.get(f"{url}/api/v1/metrics").text
        assert gauge(after, "hwnas_answer_cache_hits_total") >= gauge(before, "hwnas_answer_cache_hits_total") + 1
        assert gauge(after, "hwnas_answer_cache_bytes") > 0 and gauge(after, "hwnas_answer_cache_entries") >= 1
        assert httpx.get(f"{service['url']}/api/v1/ready").json()["status"] == "ready"

    def test_delete_removes_rows_and_artifacts(self, service) -> None:  # type: ignore[no-untyped-def]
        art = service["settings"].artifacts_dir / ("b" * 32)
        with HwnasClient(service["url"], token=service["write"]) as c:
            c.pareto("b" * 32)  # cached answers of the job, which must not outlive it
            c.trials("b" * 32)
            c.delete("b" * 32)
            for read in (c.job, c.pareto, c.trials):
                with pytest.raises(ApiError) as err:
                    read("b" * 32)
                assert err.value.status == 404, read
            assert c.job("a" * 32)["status"] == "completed", "deleting one job leaves the others"
        assert not art.exists()

    def test_cli_commands_against_the_service(self, service, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
        from cli.main import main

        auth = ["--server", service["url"], "--token", service["read"]]
        assert main(["jobs", *auth]) == 0
        assert "a" * 32 in capsys.readouterr().out.replace("\n", "")
        assert main(["pareto", "a" * 32, "--target", "native", "--min-f1", "60", *auth]) == 0
        assert "best under the constraint" in capsys.readouterr().out
        assert main(["download", "a" * 32, "--best", "--min-f1", "60", "-o", str(tmp_path), *auth]) == 0
        assert list(tmp_path.glob("hwnas-*-trial*-int8.zip"))
        assert main(["watch", "a" * 32, *auth]) == 0  # a finished job: one frame, exit 0
        assert main(["cancel", "a" * 32, *auth]) == 1  # read token: refused, one line, no traceback
        assert "403" in capsys.readouterr().out

    def test_polled_answers_follow_every_write(self, service) -> None:  # type: ignore[no-untyped-def]
        """The job, trials and Pareto answers are cached per job revision: each write shows at the next poll."""
        url, job_id = service["settings"].resolved_db_url(), "c" * 32
        sessions = session_factory(make_engine(url))
        with sessions.begin() as s:
            repo.create_job(s, job_id=job_id, spec={"name": "live", "targets": ["native"], "budget": {"trials": 3}}, synthetic=False)
        sub = SubnetConfig((0,), (2,), (32,))
        try:
            with HwnasClient(service["url"], token=service["read"]) as c:
                for n, (f1, p90) in enumerate([(50.0, 4.0), (70.0, 2.0)]):
                    assert c.pareto(job_id, "native") == c.pareto(job_id, "native")  # the second from the cache
                    before = c.job(job_id)["progress"]
                    with sessions.begin() as s:
                        repo.start_trial(s, job_id, number=n, optuna_trial_id=n, config=sub.to_dict())
                    assert c.job(job_id)["progress"]["running"] == before["running"] + 1
                    assert [t["state"] for t in c.trials(job_id)][-1] == "running"
                    m = Measurement("native", "int8", 128, 1, p90, p90, p90, 100, 16, 1000 / p90, {})
                    with sessions.begin() as s:
                        repo.complete_trial(s, job_id, TrialResult(n, sub, f1, f1, 10, 100, 100, (m,), {}, "", "host"))
                    assert c.job(job_id)["progress"]["completed"] == n + 1
                    assert c.job(job_id)["progress"]["best_f1"] == f1
                    assert [t["number"] for t in c.pareto(job_id, "native")["trials"]] == [n]  # the new one dominates
                    assert [t["state"] for t in c.trials(job_id)] == ["completed"] * (n + 1)
        finally:
            with sessions.begin() as s:
                s.delete(repo.get_job(s, job_id))
