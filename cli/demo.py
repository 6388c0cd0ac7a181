"""``hwnas demo``: the whole product in one command, offline, on embedded defaults.

Starts the service, submits a small search over the packaged MiniLM (on a generated,
clearly labelled synthetic SQuAD-format set unless real files are given), follows it,
then downloads the fastest model at the F1 floor from the Pareto front: INT8, or FP32 where this CPU runs
INT8 slower (the job's ``precision: auto``).
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cli.client import TERMINAL
from cli.client_commands import EXIT_INTERRUPTED, end_live_line, pareto_table, progress_renderables
from api.server import ServiceThread, free_port
from nas.config import Settings
from cli.demo_sizing import (
    DEPLOY_OFFLINE_BATCHES, DEPLOY_QUERY_SAMPLES, SLOW_HOST, SYNTHETIC, DemoPlan, estimate, full_plan, probe_host, real_workload, size_demo, summary,
)  # fmt: skip

console = Console()


def demo_spec(
    train_file: str, eval_file: str, trials: int | None = None, *, synthetic: bool, plan: DemoPlan | None = None
) -> dict[str, Any]:
    """The job the demo submits: ``plan`` as ``cli.demo_sizing`` sized it to the host; None: today's
    full-size demo (``--full``) with ``trials`` trials."""
    plan = plan or full_plan(trials)
    real_eval = 300 if plan.max_eval_examples is None else min(300, plan.max_eval_examples)
    teacher: dict[str, Any] = {"epochs": 3.0, "learning_rate": 2e-4, "batch_size": 16, "max_train_examples": None if synthetic else 1500}
    if plan.teacher_steps is not None:
        teacher["max_steps"] = plan.teacher_steps  # wins over epochs
    return {
        "name": "demo" + (" (synthetic data)" if synthetic else ""),
        "base_model": "minilm",
        "task": {
            "train_file": train_file,
            "eval_file": eval_file,
            "max_seq_length": 128 if synthetic else 256,
            "doc_stride": 48 if synthetic else 96,
            "max_eval_examples": plan.max_eval_examples if synthetic else real_eval,
            "calibration_samples": plan.calibration_samples,
        },
        "search_space": dict(plan.search_space),
        "targets": ["native"],
        "budget": {"trials": plan.trials},
        "sampler": "nsga2",
        "precision": "auto",  # the precision this host runs faster: FP32 where INT8 is slower (AVX2-only CPUs)
        "seed": 0,
        "teacher": teacher,
        "measure": plan.measure.spec(),
        "trial_finetune_steps": plan.finetune_steps,
    }


def demo_plan(trials: int | None, *, budget_s: float, full: bool, train_file: str, synthetic: bool) -> DemoPlan:
    """Probe the host and size the demo to ``budget_s`` (printing what was scaled and why); ``full``:
    today's settings, no probe. A probe that fails falls back to a pessimistic 2-core AVX2 host."""
    if full:
        plan = full_plan(trials)
        console.print(summary(plan, None), highlight=False)
        return plan
    work = SYNTHETIC if synthetic else real_workload(_train_questions(train_file))
    with console.status("probing this host (a few seconds: MiniLM training step, CPU flags)"):
        try:
            host = probe_host()
        except Exception as exc:  # the demo still runs, sized for a slow host
            console.print(f"[yellow]host probe failed[/yellow] ({exc}); sizing for a slow 2-core AVX2 host")
            host = SLOW_HOST
    plan = size_demo(host, budget_s=budget_s, trials=trials, work=work)
    full_s = plan.estimate_s if plan.full else sum(estimate(full_plan(trials), host, work).values())
    console.print(summary(plan, host, full_estimate_s=full_s), highlight=False)
    return plan


def _train_questions(train_file: str) -> int:
    """Questions of a SQuAD JSON train file (its teacher logits cost a forward pass each); a guess if unreadable."""
    import json

    try:
        data = json.loads(Path(train_file).read_text())["data"]
        return sum(len(p["qas"]) for a in data for p in a["paragraphs"])
    except (OSError, ValueError, KeyError, TypeError):
        return 1500


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


def _speed_vs(m: dict[str, Any], ref: dict[str, Any]) -> str:
    """``1.8x faster p90 (12.10 vs 21.90 ms), 1.7x the throughput``, or "slower" where it is."""
    ratio = ref["p90_ms"] / m["p90_ms"]
    p90 = f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
    return f"{p90} p90 ({m['p90_ms']:.2f} vs {ref['p90_ms']:.2f} ms), {m['throughput_sps'] / ref['throughput_sps']:.1f}x the throughput"


def int8_slower_note(fp32: dict[str, Any], int8: dict[str, Any]) -> str | None:
    """Say plainly when this host runs INT8 slower than FP32 (the baselines: the teacher in both precisions),
    as CPUs without VNNI/AMX int8 instructions do; None when INT8 is faster on both figures."""
    slower_p90 = int8["p90_ms"] > fp32["p90_ms"]
    lower_tput = int8["throughput_sps"] < fp32["throughput_sps"]
    if not (slower_p90 or lower_tput):
        return None
    what = " and ".join(w for w, bad in (("latency", slower_p90), ("throughput", lower_tput)) if bad)
    return (f"note: on this host INT8 is SLOWER than FP32 in {what}: the INT8 teacher runs p90 {int8['p90_ms']:.2f} ms, "
            f"{int8['throughput_sps']:.0f} samples/s against FP32's {fp32['p90_ms']:.2f} ms, {fp32['throughput_sps']:.0f} "
            "samples/s. This CPU lacks fast int8 instructions (VNNI/AMX); INT8 pays off on the Xeons it targets, "
            "and here FP32 may serve better.")  # fmt: skip


def best_report(best: dict[str, Any], baselines: dict[str, dict[str, Any]], floor: float) -> str:
    """The downloaded model: its precision, F1 against the floor, speed against both teachers (FP32 and INT8
    baselines), and the plain note when INT8 is slower than FP32 here."""
    m = best["measurements"][0]
    c = best["config"]
    arch = f"{len(c['layers'])} layers x {c['heads'][0]} heads x FFN {c['ffn'][0]}"
    if best["f1"] >= floor:
        which = f"the fastest at the F1 floor {floor:.1f}"
    else:
        which = f"[yellow]no trial reached the F1 floor {floor:.1f}[/yellow]: the most accurate"
    lines = [f"best model ({which}): trial {best['number']}, {m['precision'].upper()}, {arch}, F1 {best['f1']:.1f}"]
    for precision in ("fp32", "int8"):
        b = baselines.get(precision)
        if b and b["measurements"]:
            lines.append(f"  vs the {precision.upper()} teacher (F1 {b['f1']:.1f}): {_speed_vs(m, b['measurements'][0])}")
    if "fp32" in baselines and "int8" in baselines and baselines["fp32"]["measurements"] and baselines["int8"]["measurements"]:
        note = int8_slower_note(baselines["fp32"]["measurements"][0], baselines["int8"]["measurements"][0])
        if note:
            lines.append(note)
    return "\n".join(lines)


def _follow(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """Poll the job until it ends: a bar of trials done, the bar of the stage's current item (teacher
    fine-tune, baselines, supernet) and a line per running trial, each finished trial printed once."""
    try:
        return _poll(client, job_id)
    finally:
        end_live_line(console)


def _poll(client: httpx.Client, job_id: str) -> dict[str, Any]:
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} trials"), TimeElapsedColumn())
    reported: set[int] = set()
    progress = Progress(*columns, console=console)  # rendered by the Live below, with the stage's bar under it
    bar = progress.add_task("queued", total=None)
    with Live(progress, console=console, refresh_per_second=4) as live:
        while True:
            job = client.get(f"/api/v1/jobs/{job_id}").raise_for_status().json()
            trials = client.get(f"/api/v1/jobs/{job_id}/trials").raise_for_status().json()
            p = job["progress"]
            progress.update(bar, description=f"stage: {job['stage']}", total=p["trials_budget"], completed=p["completed"] + p["failed"])
            for t in trials:
                if t["state"] != "running" and t["number"] not in reported:
                    reported.add(t["number"])
                    live.console.print(_trial_line(t))
            live.update(Group(progress, *progress_renderables(job, trials)))
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
        f"  trial {t['number']}: {arch}: {m['precision'].upper()} F1 {t['f1']:.1f}, p90 {m['p90_ms']:.2f} ms, "
        f"{m['throughput_sps']:.0f} samples/s  stages {t['stage_seconds']}"
    )


CANCEL_WAIT_S = 30.0  # how long Ctrl-C waits for the cancelled job to stop before saying so


@dataclass
class _Interrupt:
    """What an interrupted demo reports: the job (once submitted) and whether its cancel is stored."""

    data_dir: Path
    job_id: str | None = None
    cancel_recorded: bool = False
    ended_as: str | None = None  # the job's terminal status, once following it is over


@contextmanager
def _report_interrupt(data_dir: Path) -> Iterator[_Interrupt]:
    """Ctrl-C outside the follow loop (starting the service, before the job exists, or after it ended)
    becomes one message and exit code 130 instead of a traceback."""
    state = _Interrupt(data_dir=data_dir.resolve())
    try:
        yield state
    except KeyboardInterrupt:
        if state.job_id is None:
            console.print(f"interrupted: nothing was submitted (data dir {state.data_dir}); start again with {_again(state.data_dir)}")
        elif state.ended_as is None:  # between submitting and following: the service stops, the job stays
            console.print(f"interrupted: job {state.job_id} is left as it is; it resumes the next time a service starts on {state.data_dir}")
        else:
            console.print(f"interrupted: job {state.job_id} had already {state.ended_as}; its results stay in {state.data_dir}")
        raise SystemExit(EXIT_INTERRUPTED) from None


def _again(data_dir: Path) -> str:
    """The command that starts the demo again on the same data dir (so its cached teacher is reused)."""
    default = Settings.model_fields["data_dir"].default
    if data_dir == Path(default).resolve():
        return "`hwnas demo` (or `make demo`)"
    return f"`hwnas demo --data-dir {data_dir}` (`make demo` uses ./{default})"


def _kept(data_dir: Path) -> str:
    """What a cancelled demo leaves for the next run: the teacher cache by key (nas.stages.teacher),
    finished or as training checkpoints (workers.teacher resumes from the last one)."""
    teachers = data_dir / "teachers"
    done = [d for d in teachers.glob("*") if (d / "metrics.json").is_file()] if teachers.is_dir() else []
    if done:
        return (f"kept: the fine-tuned teacher in {teachers}/ (cached by its key: base model, data and "
                "settings); the next run with the same ones reuses it instead of training again")
    partial = [d for d in teachers.glob("*.partial") if (d / "checkpoint").is_dir()] if teachers.is_dir() else []
    if partial:
        return (f"kept: the teacher's training checkpoint in {partial[0]}; the next run with the same data and "
                "settings resumes training from it")
    return (f"kept: the service database and the demo data in {data_dir}; no teacher had finished training or "
            "reached a checkpoint, so the next run trains it from the start")


def _leave_now(state: _Interrupt) -> None:
    """The second Ctrl-C: one line, then out without waiting for the job, which stays as the store has
    it. The service and Ray still stop cleanly (seconds; Ray's agents outlive a hard exit), unless a
    third Ctrl-C asks for a hard exit."""
    if state.cancel_recorded:
        fate = f"its cancel is recorded, so the next service started on {state.data_dir} finishes cancelling it"
    else:
        fate = f"it resumes the next time a service starts on {state.data_dir}"
    console.print(f"second Ctrl-C: exiting now; job {state.job_id} is left as it is ({fate})", highlight=False)
    signal.signal(signal.SIGINT, lambda *_: os._exit(EXIT_INTERRUPTED))
    raise SystemExit(EXIT_INTERRUPTED)


def _job_or_none(client: httpx.Client, job_id: str) -> dict[str, Any] | None:
    try:
        return client.get(f"/api/v1/jobs/{job_id}", timeout=10).raise_for_status().json()
    except httpx.HTTPError:
        return None


def _wait_terminal(client: httpx.Client, job_id: str, timeout: float) -> dict[str, Any] | None:
    """The job once it is terminal, polled for at most ``timeout`` s; the last answer otherwise."""
    deadline = time.monotonic() + timeout
    job = _job_or_none(client, job_id)
    while (job is None or job["status"] not in TERMINAL) and time.monotonic() < deadline:
        time.sleep(0.5)
        job = _job_or_none(client, job_id)
    return job


def _cancel_on_interrupt(client: httpx.Client, state: _Interrupt) -> int:
    """Ctrl-C while following: cancel the job through the API, wait (bounded) until it stops, say what
    became of it and what is kept. A further Ctrl-C, from here to the end of the process, exits at once."""
    signal.signal(signal.SIGINT, lambda *_: _leave_now(state))
    job_id = state.job_id
    assert job_id is not None
    console.print(f"Ctrl-C: cancelling job {job_id} (waiting up to {CANCEL_WAIT_S:.0f} s; Ctrl-C again to leave it as it is)")
    before = _job_or_none(client, job_id)
    stage = before["stage"] if before else "unknown"
    try:
        r = client.post(f"/api/v1/jobs/{job_id}/cancel", timeout=10)
        state.cancel_recorded = r.status_code == 200
    except httpx.HTTPError as exc:
        console.print(f"[red]could not cancel job {job_id}[/red]: {exc}")
    job = _wait_terminal(client, job_id, CANCEL_WAIT_S) if state.cancel_recorded else _job_or_none(client, job_id)
    console.print(_interrupt_message(job_id, job, stage, state), highlight=False)
    return EXIT_INTERRUPTED


def _interrupt_message(job_id: str, job: dict[str, Any] | None, stage: str, state: _Interrupt) -> str:
    """Job id, what became of it (at which stage, trials done), the data dir, what is kept, how to start again."""
    p = job["progress"] if job else None
    trials = f"{p['completed'] + p['failed']}/{p['trials_budget']} trials done" if p else "trials unknown"
    status = job["status"] if job else "unknown"
    if status == "cancelled":
        head = f"job {job_id} cancelled at stage {stage}, {trials}."
    elif status in TERMINAL:
        head = f"job {job_id} had already {status} (stage {stage}, {trials}): nothing to cancel."
    elif state.cancel_recorded:
        head = (f"job {job_id}: cancel requested at stage {stage} ({trials}) but it had not stopped after "
                f"{CANCEL_WAIT_S:.0f} s; the request is stored, so the next service started on this data dir "
                "finishes cancelling it.")
    else:
        head = f"job {job_id} could not be cancelled (stage {stage}, {trials}); it resumes the next time a service starts on this data dir."
    return "\n".join(
        (head, f"  data dir: {state.data_dir}", f"  {_kept(state.data_dir)}", f"  start again: {_again(state.data_dir)}")
    )


def run_demo(
    settings: Settings, *, train_file: str | None = None, eval_file: str | None = None, trials: int | None = None,
    budget_s: float = 480.0, full: bool = False,
) -> int:
    """Probe and size (``demo_plan``; ``trials`` given wins, ``full``: today's size), serve, submit, follow,
    show the front and download the fastest model at the F1 floor."""
    started = time.monotonic()
    synthetic = not (train_file and eval_file)
    if synthetic:
        train_file, eval_file = _demo_data(settings.data_dir)
        console.print(f"[yellow]Using a SYNTHETIC SQuAD-format data set[/yellow] generated offline: {train_file}, {eval_file}")
    plan = demo_plan(trials, budget_s=budget_s, full=full, train_file=train_file, synthetic=synthetic)  # type: ignore[arg-type]
    settings = settings.model_copy(update={"port": free_port(settings.host)}) if settings.port == 8000 else settings
    with _report_interrupt(settings.data_dir) as interrupt, ServiceThread(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        console.print(f"hwnas API: [bold]{url}[/bold]  (OpenAPI docs at {url}/docs)")
        r = client.post("/api/v1/jobs", json=demo_spec(train_file, eval_file, plan.trials, synthetic=synthetic, plan=plan))  # type: ignore[arg-type]
        if r.status_code != 201:
            console.print(f"[red]job rejected ({r.status_code})[/red]: {r.text}")
            return 1
        job_id = r.json()["id"]
        interrupt.job_id = job_id
        console.print(f"job {job_id} submitted")
        try:
            job = _follow(client, job_id)
        except KeyboardInterrupt:
            return _cancel_on_interrupt(client, interrupt)
        interrupt.ended_as = job["status"]
        if job["status"] != "completed":
            console.print(f"[red]job {job['status']}[/red]: {job['error']}")
            return 1
        pareto = client.get(f"/api/v1/jobs/{job_id}/pareto", params={"target": "native"}).raise_for_status().json()
        console.print(pareto_table(pareto))
        if job.get("deployment"):  # why the subnets are INT8 or FP32 on this host
            console.print(f"deployment: {job['deployment']['reason']}", highlight=False)
        baselines = {b["precision"]: b for b in job["baselines"]}
        floor = 0.99 * baselines["fp32"]["f1"]
        best = pick_best(pareto, floor)
        if best is None:
            console.print("[red]no completed trial to download[/red]")
            return 1
        resp = client.get(f"/api/v1/jobs/{job_id}/trials/{best['number']}/model").raise_for_status()
        precision = best["measurements"][0]["precision"]
        out = (settings.data_dir / "demo" / f"best-{precision}-trial{best['number']}.zip").resolve()
        out.write_bytes(resp.content)
        console.print(best_report(best, baselines, floor), highlight=False)
        console.print(f"downloaded to [bold]{out}[/bold] (sha256 {resp.headers['X-Checksum-SHA256'][:16]}...)")
        console.print(f"demo wall time {time.monotonic() - started:.0f} s")
    return 0
