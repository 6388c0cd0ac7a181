"""Targets whose runtime the cluster cannot run (an optional one, DeepSparse, not installed): dropped
at the job's start, with the reason stored, instead of failing every trial on them.

The check runs as a Ray task (``workers.ray_tasks.runtimes_unavailable``) because availability is a fact
of the nodes, not of the coordinator. It is made once per job: a resumed job keeps the targets (and so
the objectives of its Optuna study) it started with.
"""

from __future__ import annotations

import logging

from nas.context import JobContext
from nas.store import repo

log = logging.getLogger(__name__)
UNAVAILABLE = "unavailable_targets"  # the key in Job.deployment: {target: why}


def drop_unavailable_targets(ctx: JobContext) -> None:
    """Narrow ``ctx.spec.targets`` to those whose runtime runs (the stored spec keeps what was asked for)."""
    with ctx.sessions() as s:
        job = repo.get_job(s, ctx.job_id)
        deployment = dict((job.deployment if job is not None else None) or {})
    if UNAVAILABLE in deployment:
        dropped = dict(deployment[UNAVAILABLE])
    else:
        from workers import ray_tasks

        dropped = ctx.wait(ray_tasks.runtimes_unavailable.remote(list(ctx.spec.targets)))
        if dropped:
            ctx.update(deployment={**deployment, UNAVAILABLE: dropped})
    if not dropped:
        return
    kept = [t for t in ctx.spec.targets if t not in dropped]
    if not kept:
        raise RuntimeError("no target of this job can be measured: " + "; ".join(dropped.values()))
    for why in dropped.values():
        log.warning("job %s: %s; the job goes on without it", ctx.job_id, why)
    ctx.spec = ctx.spec.model_copy(update={"targets": kept})
