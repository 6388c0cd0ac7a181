"""The coordinator's side of Ray: joining or starting a cluster, its live nodes, and how many CPUs a task asks for.

Ray is imported inside the functions: the API process imports the coordinator's modules without it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from nas.config import Settings

log = logging.getLogger(__name__)


def connect_ray(settings: Settings) -> None:
    """Join ``settings.ray_address`` or start a local Ray; idempotent. Call it from the main thread
    where possible: Ray installs signal handlers there."""
    import ray

    if ray.is_initialized():
        return
    # workers find user target profiles (posted to the API) through the environment they inherit
    os.environ.setdefault("HWNAS_TARGETS_DIR", str((settings.data_dir / "targets").resolve()))
    if settings.ray_address:
        from workers.node import join_as_driver_node, ray_auth_env

        os.environ.update(ray_auth_env())  # a token in the environment means the head wants it
        joined = join_as_driver_node(settings.ray_address)  # a driver needs a raylet on its own host
        if joined:
            log.info("this host ran no Ray node: joined the cluster as a CPU-less node (%s)", " ".join(joined))
        ray.init(address=settings.ray_address, log_to_driver=False)
        served = sorted({k[3:] for n in ray.nodes() if n.get("Alive") for k in n.get("Resources", {}) if k.startswith("hw:")})
        log.info("joined the Ray cluster at %s; live nodes serve targets: %s", settings.ray_address, ", ".join(served) or "none yet")
    else:
        from targets import TARGETS, target_resource

        # the in-process node serves every known target: natively or emulated by an ISA cap
        resources = {target_resource(name): 1.0 for name in TARGETS}
        # address="local": a new in-process node even when another Ray cluster runs on this machine
        ray.init(address="local", num_cpus=settings.ray_num_cpus, resources=resources, include_dashboard=False, log_to_driver=False)


def live_nodes() -> list[dict[str, Any]]:
    """Live Ray nodes with their resources (``hw:<target>`` marks the targets a node serves)."""
    import ray

    return [
        {
            "node_id": n["NodeID"],
            "address": n.get("NodeManagerAddress"),
            "alive": n.get("Alive", False),
            "resources": n.get("Resources", {}),
            "targets": sorted(k[3:] for k in n.get("Resources", {}) if k.startswith("hw:")),
        }
        for n in ray.nodes()
        if n.get("Alive")
    ]


def task_cpus(concurrent: int) -> float:
    """CPUs for one of ``concurrent`` build tasks: an equal share of the cluster, at most the largest node."""
    import ray

    total = ray.cluster_resources().get("CPU", 1.0)
    # a task runs on one node: never ask for more CPUs than the largest live node has
    largest = max((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")), default=total)
    return max(1.0, float(int(min(total // max(1, concurrent), largest or 1.0))))


def serving(target: str, settings: Settings) -> tuple[str, list[float]]:
    """The resource a measurement for ``target`` takes, and the CPU counts of the live nodes holding it."""
    import ray

    from targets import target_resource

    nodes = ray.nodes()
    key = target_resource(target)
    if not settings.ray_address and not any(key in n.get("Resources", {}) for n in nodes):
        key = target_resource("native")  # a profile added after start: the in-process node emulates it
    return key, [n["Resources"].get("CPU", 1.0) for n in nodes if n.get("Alive") and key in n.get("Resources", {})]
