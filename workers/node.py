"""Joining a Ray cluster as a node that serves one or more hardware targets (``hwnas worker``, in ``cli.worker``).

A worker is a plain Ray node started by ``ray start --address HEAD --resources '{"hw:T": 1}'``;
nothing here replaces Ray. The command checks first what this machine is: a host of the
microarchitecture the profile stands for measures ``T`` natively, any other host emulates it
(``ONEDNN_MAX_CPU_ISA`` and a thread cap, every figure tagged ``emulated``) and says so.

The node's ``hw:T`` resource is its measurement slot: a measure task takes it and every CPU
of the node (``nas.coordinator.Coordinator._measure_options``), so measurements on one node
never overlap each other or a build. Builds and teacher training take only CPUs and may run
on any node.

Artifacts are a shared path: every node mounts the service's data directory (``HWNAS_DATA_DIR``,
holding ``artifacts/``, ``teachers/`` and ``targets/``) at the same path as the coordinator, as
the docker-compose ``artifacts`` volume does. The coordinator checks that a built trial's IR
files are visible to it before measuring and fails the trial with a reason naming the path
when they are not.

Ray token authentication (Ray >= 2.52, on by default for new local clusters): the head's token
reaches the nodes and the coordinator through ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``
(or ``~/.ray/auth_token``); when one is given and ``RAY_AUTH_MODE`` is unset this command
sets ``RAY_AUTH_MODE=token`` for ``ray start``.

Light imports only: ``hwnas --help`` must stay fast, and this runs before Ray starts. The command
line (``cmd_worker``, ``add_worker_parser``) is ``cli.worker``; nothing here imports it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from targets.emulation import TargetCheck, check_target, target_resource


def ray_auth_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment changes that make Ray use token authentication when a token is given.

    Ray reads the token from ``RAY_AUTH_TOKEN``, the file named by ``RAY_AUTH_TOKEN_PATH`` or
    ``~/.ray/auth_token``, but only in token mode (``RAY_AUTH_MODE=token``); a joining node or
    driver in the wrong mode is refused by a token-protected head.
    """
    env = os.environ if environ is None else environ
    if env.get("RAY_AUTH_MODE"):
        return {}
    if env.get("RAY_AUTH_TOKEN") or env.get("RAY_AUTH_TOKEN_PATH"):
        return {"RAY_AUTH_MODE": "token"}
    return {}


@dataclass
class WorkerPlan:
    """What ``hwnas worker`` runs: the ``ray start`` command line and the environment it adds."""

    address: str
    targets: list[TargetCheck]
    num_cpus: int
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, float]:
        return {target_resource(t.name): 1.0 for t in self.targets}

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "num_cpus": self.num_cpus,
            "resources": self.resources,
            "targets": [t.to_dict() for t in self.targets],
            "command": self.command,
            "env": self.env,
        }


def _ray_executable() -> str:
    """``ray`` beside this interpreter (a virtual environment's bin/), else on PATH."""
    beside = Path(sys.executable).with_name("ray")
    if beside.is_file():
        return str(beside)
    found = shutil.which("ray")
    if found is None:
        raise FileNotFoundError("the `ray` command was not found beside the Python interpreter or on PATH")
    return found


def _targets_dir_env(data_dir: Path | None, environ: Mapping[str, str]) -> dict[str, str]:
    """``HWNAS_TARGETS_DIR`` for the node's Ray workers: keep the caller's, add ``<data dir>/targets``."""
    from targets import TARGETS_DIR_ENV

    if data_dir is None:
        return {}
    theirs = [p for p in environ.get(TARGETS_DIR_ENV, "").split(os.pathsep) if p]
    ours = str((data_dir / "targets").resolve())
    if ours in theirs:
        return {}
    return {TARGETS_DIR_ENV: os.pathsep.join([*theirs, ours])}


def plan_worker(
    address: str,
    targets: Sequence[str],
    *,
    num_cpus: int | None = None,
    data_dir: Path | None = None,
    block: bool = True,
    ray_args: Sequence[str] = (),
    cpu: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> WorkerPlan:
    """Check the targets against this CPU and build the ``ray start`` command; starts nothing."""
    from targets import detect_cpu, logical_cpus

    if not targets:
        raise ValueError("a worker serves at least one target (--target)")
    environ = os.environ if environ is None else environ
    cpu = detect_cpu() if cpu is None else cpu
    checks = [check_target(t, cpu) for t in dict.fromkeys(targets)]
    cpus = num_cpus if num_cpus is not None else logical_cpus()
    if cpus < 1:
        raise ValueError("--num-cpus must be at least 1: a measurement takes every CPU of its node")
    resources = {target_resource(c.name): 1 for c in checks}
    command = [
        _ray_executable(),
        "start",
        f"--address={address}",
        f"--num-cpus={cpus}",
        f"--resources={json.dumps(resources, separators=(',', ':'))}",
        "--disable-usage-stats",
    ]
    if block:
        command.append("--block")
    command.extend(ray_args)
    env = {**ray_auth_env(environ), **_targets_dir_env(data_dir, environ)}
    if "RAY_USAGE_STATS_ENABLED" not in environ:
        env["RAY_USAGE_STATS_ENABLED"] = "0"
    return WorkerPlan(address=address, targets=checks, num_cpus=cpus, command=command, env=env)


def run_worker(plan: WorkerPlan) -> int:
    """Run ``ray start --block`` as a child, forwarding SIGTERM/SIGINT, and return its exit code.

    ``ray start --block`` stops the node's raylet and workers when it is signalled, so stopping
    this process (``docker stop``, Ctrl-C, ``kill``) takes the node out of the cluster.
    """
    child = subprocess.Popen(plan.command, env={**os.environ, **plan.env})

    def forward(signum: int, _frame: Any) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def local_raylets() -> list[str]:
    """Node ids of the Ray raylets running on this host (any cluster), as ``ray.init`` finds them."""
    from ray._private import services

    return list(services.find_node_ids())


def join_as_driver_node(address: str, *, ray_args: Sequence[str] = ()) -> list[str]:
    """Make this host a CPU-less node of the cluster at ``address`` when it runs no Ray node yet.

    ``ray.init(address=...)`` attaches a driver to a raylet *on its own host*; the coordinator
    may run on a machine that is not otherwise part of the cluster (the compose ``api``
    service), so it first joins as a node with no CPUs and no ``hw:`` resource: nothing is
    built or measured there. Returns the command it ran (empty when a local node exists).
    """
    if local_raylets():
        return []
    command = [_ray_executable(), "start", f"--address={address}", "--num-cpus=0", "--disable-usage-stats", *ray_args]
    env = {**os.environ, **ray_auth_env()}
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"could not join the Ray cluster at {address}: {' '.join(command)}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return command
