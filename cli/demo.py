"""``hwnas demo``: the whole product in one command, offline, on embedded defaults.

Starts the service, submits a small search over the packaged MiniLM (on a generated,
clearly labelled synthetic SQuAD-format set unless real files are given), follows it,
then downloads the best INT8 model from the Pareto front.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cli.client_commands import pareto_table
from api.server import ServiceThread, free_port
from nas.config import Settings

console = Console()


def demo_spec(train_file: str, eval_file: str, trials: int, *, synthetic: bool) -> dict[str, Any]:
    return {
        "name": "demo" + (" (synthetic data)" if synthetic else ""),
        "base_model": "minilm",
        "task": {
            "train_file": train_file,
            "eval_file": eval_file,
            "max_seq_length": 128 if synthetic else 256,
            "doc_stride": 48 if synthetic else 96,
            "max_eval_examples": None if synthetic else 300,
            "calibration_samples": 64,
        },
        "search_space": {"layers": [2, 3, 4, 6], "heads": [6, 12], "ffn": [384, 768, 1536]},
        "targets": ["native"],
        "budget": {"trials": trials},
        "sampler": "nsga2",
        "seed": 0,
        "teacher": {"epochs": 3.0, "learning_rate": 2e-4, "batch_size": 16, "max_train_examples": None if synthetic else 1500},
        "measure": {"iterations": 50, "seconds": 2.0, "throughput_batch": 16},
        "trial_finetune_steps": 120,
    }


def _demo_data(data_dir: Path) -> tuple[str, str]:
    from core.qa.synthetic import write_synthetic_squad

    d = data_dir / "demo"
    train = write_synthetic_squad(d / "synthetic-train.json", num_articles=30, seed=0)
    evalf = write_synthetic_squad(d / "synthetic-eval.json", num_articles=10, seed=1)
    return str(train.resolve()), str(evalf.resolve())


def pick_best(pareto: dict[str, Any], f1_floor: float) -> dict[str, Any] | None:
    """The fastest front member at or above the floor; else the most accurate one."""
    trials = pareto["trials"]
    if not trials:
        return None
    ok = [t for t in trials if t["f1"] >= f1_floor]
    if ok:
        return min(ok, key=lambda t: t["measurements"][0]["p90_ms"])
    return max(trials, key=lambda t: t["f1"])


def _follow(client: httpx.Client, job_id: str) -> dict[str, Any]:
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} trials"), TimeElapsedColumn())
    reported: set[int] = set()
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("queued", total=None)
        while True:
            job = client.get(f"/api/v1/jobs/{job_id}").raise_for_status().json()
            p = job["progress"]
            progress.update(bar, description=f"stage: {job['stage']}", total=p["trials_budget"], completed=p["completed"] + p["failed"])
            for t in client.get(f"/api/v1/jobs/{job_id}/trials").raise_for_status().json():
                if t["state"] != "running" and t["number"] not in reported:
                    reported.add(t["number"])
                    progress.console.print(_trial_line(t))
            if job["status"] in ("completed", "failed", "cancelled"):
                return job
            time.sleep(2)


def _trial_line(t: dict[str, Any]) -> str:
    c = t["config"]
    arch = f"{len(c['layers'])} layers x {c['heads'][0]} heads x FFN {c['ffn'][0]}"
    if t["state"] == "failed":
        return f"  trial {t['number']}: {arch}: [red]failed[/red]: {t['error']}"
    m = t["measurements"][0]
    return (
        f"  trial {t['number']}: {arch}: INT8 F1 {t['f1']:.1f}, p90 {m['p90_ms']:.2f} ms, "
        f"{m['throughput_sps']:.0f} samples/s  stages {t['stage_seconds']}"
    )


def run_demo(settings: Settings, *, train_file: str | None = None, eval_file: str | None = None, trials: int = 6) -> int:
    started = time.monotonic()
    synthetic = not (train_file and eval_file)
    if synthetic:
        train_file, eval_file = _demo_data(settings.data_dir)
        console.print(f"[yellow]Using a SYNTHETIC SQuAD-format data set[/yellow] generated offline: {train_file}, {eval_file}")
    settings = settings.model_copy(update={"port": free_port(settings.host)}) if settings.port == 8000 else settings
    with ServiceThread(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        console.print(f"hwnas API: [bold]{url}[/bold]  (OpenAPI docs at {url}/docs)")
        r = client.post("/api/v1/jobs", json=demo_spec(train_file, eval_file, trials, synthetic=synthetic))  # type: ignore[arg-type]
        if r.status_code != 201:
            console.print(f"[red]job rejected ({r.status_code})[/red]: {r.text}")
            return 1
        job_id = r.json()["id"]
        console.print(f"job {job_id} submitted")
        job = _follow(client, job_id)
        if job["status"] != "completed":
            console.print(f"[red]job {job['status']}[/red]: {job['error']}")
            return 1
        pareto = client.get(f"/api/v1/jobs/{job_id}/pareto", params={"target": "native"}).raise_for_status().json()
        console.print(pareto_table(pareto))
        fp32 = next(b for b in job["baselines"] if b["precision"] == "fp32")
        best = pick_best(pareto, 0.99 * fp32["f1"])
        if best is None:
            console.print("[red]no completed trial to download[/red]")
            return 1
        resp = client.get(f"/api/v1/jobs/{job_id}/trials/{best['number']}/model").raise_for_status()
        out = (settings.data_dir / "demo" / f"best-int8-trial{best['number']}.zip").resolve()
        out.write_bytes(resp.content)
        m = best["measurements"][0]
        fm = fp32["measurements"][0]
        console.print(
            f"best INT8 model: trial {best['number']}: F1 {best['f1']:.1f} (teacher FP32 {fp32['f1']:.1f}), "
            f"p90 {m['p90_ms']:.2f} ms ({fm['p90_ms'] / m['p90_ms']:.1f}x faster than FP32), "
            f"{m['throughput_sps'] / fm['throughput_sps']:.1f}x FP32 throughput"
        )
        console.print(f"downloaded to [bold]{out}[/bold] (sha256 {resp.headers['X-Checksum-SHA256'][:16]}...)")
        console.print(f"demo wall time {time.monotonic() - started:.0f} s")
    return 0
