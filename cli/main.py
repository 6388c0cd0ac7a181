"""The ``hwnas`` command line: serve, demo, submit, status, teacher, bench, targets."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console

console = Console()


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from nas.config import Settings

    overrides: dict[str, Any] = {}
    if os.environ.get("HWNAS_SETTINGS_JSON"):  # a coordinator started by `hwnas serve`: the API's own settings
        return Settings.model_validate_json(os.environ["HWNAS_SETTINGS_JSON"])
    for key in ("db", "ray_address", "host", "port", "data_dir", "coordinator"):
        value = getattr(args, key, None)
        if value is not None:
            overrides["db_url" if key == "db" else key] = value
    return Settings(**overrides)


def load_spec_file(path: Path) -> dict[str, Any]:
    """JSON or YAML job spec; a clear error names the file on a parse failure."""
    import yaml

    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SystemExit(f"{path}: not a valid job spec file: {exc}") from exc
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: a job spec must be a mapping, got {type(data).__name__}")
    return data


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.main import create_app

    settings = _settings(args)
    console.print(f"hwnas API on http://{settings.host}:{settings.port}  (database {settings.resolved_db_url()})")
    if settings.coordinator == "external":
        console.print("coordinator: external (run `hwnas coordinator` with the same --db and --data-dir)")
    elif settings.ray_address:
        console.print(f"using the Ray cluster at {settings.ray_address}: trials run on its `hwnas worker` nodes")
    else:
        console.print("starting a local Ray node that serves every target (--ray-address joins a cluster)")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=args.log_level)
    return 0


def cmd_coordinator(args: argparse.Namespace) -> int:
    """The coordinator alone: polls the store for jobs and cancels, runs them on Ray, until SIGTERM/SIGINT.
    Stopping leaves running jobs "running"; the next coordinator resumes them."""
    import signal
    import threading

    from nas.coordinator import Coordinator
    from nas.store.db import make_engine, session_factory, upgrade

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_db_url()
    upgrade(url)
    engine = make_engine(url)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    coordinator = Coordinator(settings, session_factory(engine))
    coordinator.start()  # joins or starts Ray in this (main) thread
    role = "leading" if coordinator.leading else "standby (another coordinator holds this database's lease)"
    console.print(f"hwnas coordinator (pid {os.getpid()}) on {url}: {role}")
    while not stop.wait(1.0):
        if coordinator.lost_lease:  # another coordinator took over: exit, and come back as a standby
            console.print("[red]lost the coordinator lease to another coordinator; exiting[/red]")
            engine.dispose()
            return 75  # EX_TEMPFAIL: `hwnas serve` restarts it
    coordinator.stop()
    engine.dispose()
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from cli.client import HwnasClient

    spec = load_spec_file(Path(args.spec))
    with HwnasClient(args.server, token=args.token) as client:
        console.print(client.submit(spec), highlight=False)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from cli.client import HwnasClient

    with HwnasClient(args.server, token=args.token) as client:
        console.print_json(data=client.job(args.job_id))
    return 0


def cmd_teacher(args: argparse.Namespace) -> int:
    from search_spaces.base_models import resolve_base_model
    from core.qa.sources import DataSourceError
    from core.qa.squad import SquadFormatError
    from search_spaces.bert.training import CheckpointMismatchError, TrainSettings
    from workers.teacher import partial_dir, train_teacher

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    settings = TrainSettings(
        epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size, seed=args.seed, max_steps=args.max_steps
    )
    if (partial_dir(args.output) / "checkpoint" / "checkpoint.pt").is_file():
        console.print(f"resuming from the checkpoint in {partial_dir(args.output) / 'checkpoint'}")
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("preparing", total=None)
        state = {"stage": "preparing", "loss": ""}

        def on_step(step: int, total: int, loss: float) -> None:
            state["loss"] = f" (loss {loss:.3f})"
            progress.update(task, completed=step, total=total, description=state["stage"] + state["loss"])

        def on_stage(stage: str) -> None:
            state["stage"] = stage
            progress.update(task, description=stage + (state["loss"] if stage == "fine-tuning" else ""))

        try:
            metrics = train_teacher(
                resolve_base_model(args.base),
                args.output,
                train_file=args.train_file,
                eval_file=args.eval_file,
                max_seq_length=args.max_seq_length,
                doc_stride=args.doc_stride,
                settings=settings,
                max_train_examples=args.max_train_examples,
                validation_split=args.validation_split,
                checkpoint_every=args.checkpoint_every or None,
                on_step=on_step,
                on_stage=on_stage,
            )
        except (SquadFormatError, DataSourceError, CheckpointMismatchError) as exc:
            progress.stop()
            console.print(f"[red]error:[/red] {exc}")
            return 2
    console.print_json(data=metrics)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``run_demo``; a Ctrl-C before it submits anything (say, while generating the data) is one line,
    not a traceback (later ones are reported by ``run_demo`` itself)."""
    from cli.client_commands import EXIT_INTERRUPTED
    from cli.demo import run_demo

    try:
        return run_demo(_settings(args), train_file=args.train_file, eval_file=args.eval_file, trials=args.trials,
                        budget_s=args.budget_s, full=args.full)  # fmt: skip
    except KeyboardInterrupt:
        console.print("interrupted: nothing was submitted")
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hwnas", description="Hardware-aware NAS for INT8 BERT question answering.")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the REST API and the coordinator")
    serve.add_argument("--db", help="SQLAlchemy URL (default: SQLite under the data directory)")
    serve.add_argument("--ray-address", help="existing Ray cluster (default: start one in-process)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn's log level; info logs every request",
    )  # fmt: skip
    serve.add_argument("--data-dir", type=Path)
    serve.add_argument(
        "--coordinator", choices=("process", "thread", "external"),
        help="run the coordinator as a child process (default), a thread of the API, or not at all (external)",
    )  # fmt: skip
    serve.set_defaults(func=cmd_serve)

    coord = sub.add_parser("coordinator", help="run the coordinator alone (beside `hwnas serve --coordinator external`)")
    coord.add_argument("--db", help="SQLAlchemy URL (default: SQLite under the data directory)")
    coord.add_argument("--ray-address", help="existing Ray cluster (default: start one in-process)")
    coord.add_argument("--data-dir", type=Path)
    coord.set_defaults(func=cmd_coordinator)

    demo = sub.add_parser("demo", help="start the service, run a small search on MiniLM, download the best INT8 model")
    demo.add_argument("--train-file", help="SQuAD v1.1 JSON (default: a generated synthetic set)")
    demo.add_argument("--eval-file", help="SQuAD v1.1 JSON (default: a generated synthetic set)")
    demo.add_argument("--trials", type=int, help="trials to run (default: sized to the host, 4 to 6; --full: 6)")
    demo.add_argument(
        "--budget-s", type=float, default=480.0,
        help="seconds the demo's job may take here: a quick probe of this host sizes the teacher, trials and "
        "measurements to fit (default 480)",
    )  # fmt: skip
    demo.add_argument("--full", action="store_true", help="the full-size demo (3-epoch teacher, 6 trials x 120 steps), no probe")
    demo.add_argument("--data-dir", type=Path)
    demo.add_argument("--port", type=int)
    demo.set_defaults(func=cmd_demo)

    from cli.client_commands import add_client_commands

    for name, helptext, func in (("submit", "submit a job spec (YAML or JSON); prints the job id", cmd_submit), ("status", "show a job as JSON", cmd_status)):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("spec" if name == "submit" else "job_id")
        cmd.add_argument("--server", "--url", default=os.environ.get("HWNAS_SERVER", "http://127.0.0.1:8000"))
        cmd.add_argument("--token", default=os.environ.get("HWNAS_TOKEN"))
        cmd.set_defaults(func=func)
    add_client_commands(sub)  # jobs, watch, pareto, download, cancel, token

    teacher = sub.add_parser("teacher", help="fine-tune a base encoder into an extractive-QA teacher")
    teacher.add_argument("--base", default="minilm")
    teacher.add_argument("--train-file", required=True)
    teacher.add_argument("--eval-file", required=True)
    teacher.add_argument("-o", "--output", required=True, type=Path)
    teacher.add_argument("--epochs", type=float, default=2.0)
    teacher.add_argument("--max-steps", type=int)
    teacher.add_argument("--lr", type=float, default=1e-4)
    teacher.add_argument("--batch-size", type=int, default=32)
    teacher.add_argument("--max-seq-length", type=int, default=256)
    teacher.add_argument("--doc-stride", type=int, default=96)
    teacher.add_argument("--max-train-examples", type=int)
    teacher.add_argument("--seed", type=int, default=0)
    teacher.add_argument(
        "--validation-split", type=float, default=0.0,
        help="fraction of the train file's articles held out for model selection (heldout_f1 in metrics.json)",
    )
    teacher.add_argument(
        "--checkpoint-every", type=int, default=200,
        help="steps between checkpoints in OUTPUT.partial/checkpoint (0: none); a rerun resumes from the last one",
    )
    teacher.set_defaults(func=cmd_teacher)

    from cli.bench import add_bench_parser, add_targets_parser  # light: heavy imports run in the commands

    add_bench_parser(sub)  # hwnas bench MODEL --target T [--json] [--precision] [--seq-len]
    add_targets_parser(sub)  # hwnas targets [--json]

    from cli.worker import add_worker_parser  # light: Ray starts in a `ray start` child process

    add_worker_parser(sub)  # hwnas worker --address HEAD --target T [--num-cpus N]
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from cli.client_commands import run_client_command

    args = build_parser().parse_args(argv)
    return run_client_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
