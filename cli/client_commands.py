"""CLI commands that talk to a running service through ``cli.client.HwnasClient``.

Every command takes ``--server`` and ``--token`` (defaults from ``HWNAS_SERVER`` / ``HWNAS_TOKEN``).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Column, Table

from cli.client import TERMINAL, ApiError, HwnasClient

console = Console()


def _client(args: argparse.Namespace) -> HwnasClient:
    return HwnasClient(args.server, token=args.token)


def _arch(config: dict[str, Any]) -> str:
    return f"{len(config['layers'])}L/{config['heads'][0]}H/{config['ffn'][0]}"


def _measurement_on(t: dict[str, Any], target: str | None = None) -> dict[str, Any] | None:
    """A trial's measurement on ``target`` (in its job's precision: INT8 unless the job chose otherwise)."""
    return next((m for m in t["measurements"] if target is None or m["target"] == target), None)


def cmd_jobs(args: argparse.Namespace) -> int:
    with _client(args) as c:
        jobs = c.jobs(status=args.status, limit=args.limit)
    table = Table("name", "status", "stage", "trials", "created")
    table.columns.insert(0, Column("id", no_wrap=True, min_width=32))  # ids are copied from here: never fold them
    for j in jobs:
        p = j["progress"]
        table.add_row(j["id"], j["name"] or "", j["status"], j["stage"], f"{p['completed'] + p['failed']}/{p['trials_budget']}", j["created_at"][:19])
    console.print(table)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    with _client(args) as c:
        job = c.cancel(args.job_id)
    console.print(f"job {args.job_id}: {job['status']}")
    return 0


def pareto_table(front: dict[str, Any]) -> Table:
    table = Table("model", "F1", "EM", "p90 ms", "samples/s", "params", title=f"Pareto front, target {front['target']}")
    for b in front["baselines"]:
        m = _measurement_on(b, front["target"]) or next(iter(b["measurements"]), None)
        if m:
            table.add_row(f"teacher {b['precision'].upper()}", f"{b['f1']:.1f}", f"{b['exact_match']:.1f}", f"{m['p90_ms']:.2f}", f"{m['throughput_sps']:.0f}", f"{b['parameters']:,}")
    for t in front["trials"]:
        m = _measurement_on(t, front["target"])
        table.add_row(f"trial {t['number']} ({_arch(t['config'])})", f"{t['f1']:.1f}", f"{t['exact_match']:.1f}", f"{m['p90_ms']:.2f}", f"{m['throughput_sps']:.0f}", f"{t['parameters']:,}")  # type: ignore[index]
    return table


def cmd_pareto(args: argparse.Namespace) -> int:
    constraints = {k: v for k, v in (("min_f1", args.min_f1), ("max_latency_ms", args.max_latency_ms)) if v is not None}
    with _client(args) as c:
        front = c.pareto(args.job_id, args.target, **constraints)
    console.print(pareto_table(front))
    if front["best"]:
        console.print(f"best under the constraint: trial {front['best']['number']}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    with _client(args) as c:
        number = args.trial
        if number is None:
            front = c.pareto(args.job_id, args.target, **({"min_f1": args.min_f1} if args.min_f1 is not None else {}))
            if args.min_f1 is not None:
                chosen = front["best"]
            else:
                chosen = max(front["trials"], key=lambda t: t["f1"], default=None)
            if chosen is None:
                console.print("[red]no completed trial meets the constraint[/red]")
                return 1
            number = chosen["number"]
        out = Path(args.output)
        if out.is_dir() or not out.suffix:  # named like the server names it: job, trial, precision
            measured = c.trial(args.job_id, number)["measurements"]
            precision = measured[0]["precision"] if measured else "int8"
            dest = out / f"hwnas-{args.job_id[:8]}-trial{number}-{precision}.zip"
        else:
            dest = out
        path, digest = c.download(args.job_id, number, dest)
    console.print(f"trial {number} -> {path} (sha256 {digest})")
    return 0


def _clock(seconds: float | None) -> str:
    """``m:ss`` (or ``h:mm:ss``) of a server-side duration; ``-`` when the server has none yet."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _loss(info: dict[str, Any]) -> str:
    loss = info.get("loss")
    return f"loss {loss:.2f}" if isinstance(loss, (int, float)) else ""


def progress_description(info: dict[str, Any]) -> str:
    """``teacher: fine-tuning loss 2.31``: what the stage's long item is doing right now."""
    item = info.get("item") or info.get("stage") or "stage"
    text = f"{item}: {info.get('phase') or 'working'}"
    loss = _loss(info)
    return f"{text} {loss}" if loss else text


def stage_progress_bar(info: dict[str, Any] | None) -> Progress | None:
    """A bar for the item a long stage is on (teacher fine-tune, baselines, supernet), from the
    server's ``stage_progress`` snapshot. Elapsed and ETA are the server's: a bar rebuilt on every
    refresh has no clock of its own. None when the server reports no progress (or predates it)."""
    if not isinstance(info, dict):
        return None
    step, total = info.get("step"), info.get("total")
    count = f"{step if step is not None else '-'}/{total if total is not None else '?'} {info.get('unit') or ''}".rstrip()
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[count]}"),
        TextColumn("elapsed {task.fields[elapsed]}"),
        TextColumn("ETA {task.fields[eta]}"),
        auto_refresh=False,
    )
    bar.add_task(
        escape(progress_description(info)),
        total=float(total) if total else None,
        completed=float(step or 0),
        count=escape(count),
        elapsed=_clock(info.get("elapsed_s")),
        eta=_clock(info.get("eta_s")),
    )
    return bar


def trial_progress_line(t: dict[str, Any]) -> str:
    """One running trial: ``trial 3: distil 40/120 steps, loss 1.52`` (just ``running`` without progress)."""
    info = t.get("progress")
    if not isinstance(info, dict):
        return f"  trial {t['number']}: running"
    parts = [str(info.get("phase") or "running")]
    if info.get("step") is not None:
        parts.append(f"{info['step']}/{info.get('total') if info.get('total') is not None else '?'} {info.get('unit') or ''}".rstrip())
    text = " ".join(parts)
    loss = _loss(info)
    eta = f", ETA {_clock(info['eta_s'])}" if info.get("eta_s") is not None else ""
    return escape(f"  trial {t['number']}: {text}" + (f", {loss}" if loss else "") + eta)


def progress_renderables(job: dict[str, Any], trials: list[dict[str, Any]]) -> list[RenderableType]:
    """The bar of the stage's current item and a line per running trial; empty when there is neither."""
    out: list[RenderableType] = []
    bar = stage_progress_bar(job.get("stage_progress"))
    if bar is not None:
        out.append(bar)
    out.extend(trial_progress_line(t) for t in trials if t.get("state") == "running")
    return out


def _watch_view(job: dict[str, Any], trials: list[dict[str, Any]]) -> Group:
    p = job["progress"]
    done = p["completed"] + p["failed"]
    eta = ""
    if p["elapsed_s"] and done and job["stage"] == "search" and done < p["trials_budget"]:
        eta = f", ETA {p['elapsed_s'] / done * (p['trials_budget'] - done):.0f} s"
    head = f"job {job['id']} [{job['status']}] stage {job['stage']}: {done}/{p['trials_budget']} trials, {p['failed']} failed{eta}"
    table = Table("target", "best trial", "arch", "F1", "p90 ms", "samples/s", title="current best per target (highest F1)")
    for target in job["spec"]["targets"]:
        scored = [(t, _measurement_on(t, target)) for t in trials if t["state"] == "completed"]
        scored = [(t, m) for t, m in scored if m]
        if scored:
            t, m = max(scored, key=lambda tm: (tm[0]["f1"], -tm[1]["p90_ms"]))
            table.add_row(target, str(t["number"]), _arch(t["config"]), f"{t['f1']:.1f}", f"{m['p90_ms']:.2f}", f"{m['throughput_sps']:.0f}")
    failures = [f"trial {t['number']}: {t['error']}" for t in trials if t["state"] == "failed"][-3:]
    return Group(escape(head), *progress_renderables(job, trials), table, *(escape(f) for f in failures))


EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C


def end_live_line(out: Console) -> None:
    """End the line a rich Live leaves open when it stops on a file or pipe (on a terminal rich does)."""
    if not out.is_terminal:
        out.line()


def _server_flag(args: argparse.Namespace) -> str:
    """`` --server URL`` when the user pointed at a server other than the default one, so the
    suggested commands reach the same service."""
    default = os.environ.get("HWNAS_SERVER", "http://127.0.0.1:8000")
    return "" if args.server.rstrip("/") == default.rstrip("/") else f" --server {args.server}"


def _job_once(args: argparse.Namespace) -> dict[str, Any] | None:
    """The job read once more for the goodbye message; None if the server is gone, slow, or the user
    presses Ctrl-C again (the message is then printed without it)."""
    try:
        with HwnasClient(args.server, token=args.token, timeout=5) as c:
            return c.job(args.job_id)
    except (ApiError, httpx.HTTPError, KeyboardInterrupt):
        return None


def watch_interrupted_message(job_id: str, job: dict[str, Any] | None, server_flag: str = "") -> str:
    """What Ctrl-C on ``hwnas watch`` leaves behind: only the watching stopped, never the job."""
    if job is None:
        state = "was left as it is on the server (its state could not be read just now)"
    else:
        p = job["progress"]
        done = f"{p['completed'] + p['failed']}/{p['trials_budget']} trials done"
        if job["status"] in TERMINAL:
            state = f"is {job['status']} on the server ({done})"
        else:
            state = f"is still {job['status']} on the server (stage {job['stage']}, {done})"
    return (
        f"stopped watching: job {job_id} {state}.\n"
        f"  follow it again: hwnas watch {job_id}{server_flag}\n"
        f"  stop it:         hwnas cancel {job_id}{server_flag}"
    )


def cmd_watch(args: argparse.Namespace) -> int:
    """Live view driven by the server's event stream (no polling loop). Ctrl-C stops watching only:
    the job goes on running on the server."""
    try:
        return _watch(args)
    except KeyboardInterrupt:
        end_live_line(console)
        console.print(watch_interrupted_message(args.job_id, _job_once(args), _server_flag(args)), highlight=False)
        return EXIT_INTERRUPTED


def _watch(args: argparse.Namespace) -> int:
    console.print(f"watching job {args.job_id} (Ctrl-C stops watching; the job goes on)", highlight=False)
    with _client(args) as c, Live(console=console, auto_refresh=False) as live:
        changed = threading.Event()
        changed.set()

        def listen() -> None:
            try:
                for _ in c.events(args.job_id):
                    changed.set()
            except Exception:  # stream closed: the main loop notices the job state
                changed.set()

        threading.Thread(target=listen, daemon=True).start()
        with HwnasClient(args.server, token=args.token) as reader:
            while True:
                changed.wait(timeout=10)
                changed.clear()
                job = reader.job(args.job_id)
                live.update(_watch_view(job, reader.trials(args.job_id)), refresh=True)
                if job["status"] in TERMINAL:
                    break
                time.sleep(0.2)  # coalesce bursts of events
    end_live_line(console)
    return 0 if job["status"] == "completed" else 1


def cmd_token(args: argparse.Namespace) -> int:
    """Create a token directly in the service database (run where the database is reachable)."""
    from nas.config import Settings
    from nas.store.db import make_engine, session_factory, upgrade
    from nas.store.tokens import create_token

    settings = Settings(**({"db_url": args.db} if args.db else {}), **({"data_dir": args.data_dir} if args.data_dir else {}))
    url = settings.resolved_db_url()
    upgrade(url)
    with session_factory(make_engine(url)).begin() as s:
        token = create_token(s, scope=args.scope, name=args.name or "")
    console.print(token, highlight=False)
    console.print(f"[dim]{args.scope} token; it is shown once and stored only as a hash[/dim]", highlight=False)
    return 0


def add_client_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--server", default=os.environ.get("HWNAS_SERVER", "http://127.0.0.1:8000"))
        p.add_argument("--token", default=os.environ.get("HWNAS_TOKEN"))
        return p

    p = common(sub.add_parser("jobs", help="list jobs"))
    p.add_argument("--status")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_jobs)

    p = common(sub.add_parser("watch", help="follow a job live"))
    p.add_argument("job_id")
    p.set_defaults(func=cmd_watch)

    p = common(sub.add_parser("pareto", help="show a job's Pareto front for a target"))
    p.add_argument("job_id")
    p.add_argument("--target", default="native")
    p.add_argument("--min-f1", type=float)
    p.add_argument("--max-latency-ms", type=float)
    p.set_defaults(func=cmd_pareto)

    p = common(sub.add_parser("download", help="download a trial's model zip (its job's precision)"))
    p.add_argument("job_id")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=int)
    which.add_argument("--best", action="store_true", help="the fastest front member with F1 >= --min-f1 (else the most accurate)")
    p.add_argument("--target", default="native")
    p.add_argument("--min-f1", type=float)
    p.add_argument("-o", "--output", default=".")
    p.set_defaults(func=cmd_download)

    p = common(sub.add_parser("cancel", help="cancel a job"))
    p.add_argument("job_id")
    p.set_defaults(func=cmd_cancel)

    token = sub.add_parser("token", help="manage API tokens")
    tsub = token.add_subparsers(dest="token_command", required=True)
    p = tsub.add_parser("create", help="create a token (printed once)")
    p.add_argument("--scope", choices=["read", "write"], required=True)
    p.add_argument("--name")
    p.add_argument("--db", help="SQLAlchemy URL of the service database")
    p.add_argument("--data-dir", type=Path)
    p.set_defaults(func=cmd_token)


def run_client_command(func, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    """API errors become one red line and exit code 1, not a traceback."""
    try:
        return int(func(args) or 0)
    except ApiError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
