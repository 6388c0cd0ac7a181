"""``hwnas worker``: join a Ray cluster as a node that serves one or more hardware targets.

The command line of ``workers.node`` (the plan, the ``ray start`` child, the native/emulated
check live there). Light imports only: ``hwnas --help`` must stay fast, and this runs before
Ray starts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from workers.node import plan_worker, run_worker

EXIT_BAD_INPUT = 2


def cmd_worker(args: argparse.Namespace) -> int:
    from targets import TargetProfileError, load_targets

    data_dir = args.data_dir
    if data_dir is None:
        from nas.config import Settings

        data_dir = Settings().data_dir
    ray_args = list(args.ray_args or [])
    if ray_args and ray_args[0] == "--":
        ray_args = ray_args[1:]
    try:
        load_targets(Path(data_dir) / "targets")
        plan = plan_worker(
            args.address,
            args.target,
            num_cpus=args.num_cpus,
            data_dir=Path(data_dir),
            block=not args.no_block,
            ray_args=ray_args,
        )
    except (KeyError, ValueError, TargetProfileError, FileNotFoundError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"error: {message}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(plan.to_dict()), flush=True)
    else:
        print(f"hwnas worker: joining the Ray cluster at {plan.address} with {plan.num_cpus} CPUs", flush=True)
        for check in plan.targets:
            print(f"  serves {check.describe()}", flush=True)
        print(f"  node resources: {json.dumps(plan.resources)} (a measurement takes the slot and all {plan.num_cpus} CPUs)", flush=True)
        for key, value in plan.env.items():
            print(f"  environment: {key}={value}", flush=True)
        print("  running: " + " ".join(plan.command), flush=True)
    if args.dry_run:
        return 0
    return run_worker(plan)


def add_worker_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "worker",
        help="join a Ray cluster as a node that measures for a hardware target",
        description=(
            "Checks whether this machine is TARGET (native) or will emulate it, then runs "
            "`ray start --address ADDRESS --resources '{\"hw:TARGET\": 1}' --block`. Stop it with "
            "SIGTERM or Ctrl-C; the node leaves the cluster. Arguments after `--` go to `ray start`."
        ),
    )
    p.add_argument("--address", required=True, help="the Ray head, HOST:PORT (the head's GCS port)")
    p.add_argument(
        "--target", required=True, action="append",
        help="hardware target profile this node measures for (repeat for several)",
    )
    p.add_argument("--num-cpus", type=int, help="CPUs the node offers (default: the CPUs this process may use)")
    p.add_argument("--data-dir", type=Path, help="the shared service data directory (default: HWNAS_DATA_DIR)")
    p.add_argument("--no-block", action="store_true", help="start the node in the background and return")
    p.add_argument("--dry-run", action="store_true", help="print the checks and the ray start command, start nothing")
    p.add_argument("--json", action="store_true", help="print the plan as one JSON line")
    p.add_argument("ray_args", nargs=argparse.REMAINDER, help="after `--`: extra `ray start` arguments")
    p.set_defaults(func=cmd_worker)
    return p
