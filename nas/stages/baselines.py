"""The baselines stage: the teacher itself as a trial, in FP32 and in INT8 (the F1 floor's and the speed-ups' reference)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from nas.context import JobContext
from nas.deployment import choose_precision
from nas.errors import StageFailed
from nas.store import repo
from search_spaces import full_subnet
from search_spaces.base_models import read_config

PRECISIONS = ("fp32", "int8")


def run_baselines_stage(ctx: JobContext, teacher_dir: str) -> None:
    """Measure whichever baseline the store lacks (a resumed job keeps the ones it has)."""
    ctx.update(stage="baseline")
    with ctx.sessions() as s:
        done = {b.precision for b in repo.baselines_of(s, ctx.job_id)}
    subnet = full_subnet(read_config(Path(teacher_dir)))
    for i, precision in enumerate(PRECISIONS):
        if precision in done or ctx.cancelled:
            continue
        out = ctx.trial_dir(f"baseline-{precision}")
        req = replace(ctx.request(-1 - i, subnet, out, teacher_dir=teacher_dir), finetune_steps=0, compression=None)  # PTQ: the reference
        outcome = ctx.runner.run(req, precision=precision)
        if outcome.result is None:
            raise StageFailed(outcome.error)
        with ctx.sessions.begin() as s:
            repo.save_baseline(s, ctx.job_id, precision, outcome.result)
    choose_deployment(ctx)


def choose_deployment(ctx: JobContext) -> str:
    """Store the job's precision and its reason (``nas.deployment``), once: a resumed job keeps its choice."""
    with ctx.sessions() as s:
        job = repo.get_job(s, ctx.job_id)
        if job is not None and job.deployment and "precision" in job.deployment:
            return str(job.deployment["precision"])
        measured = {b.precision: list(b.measurements) for b in repo.baselines_of(s, ctx.job_id)}
        earlier = dict((job.deployment if job is not None else None) or {})  # e.g. unavailable_targets (nas.runtime_check)
    choice = choose_precision(ctx.spec.precision, ctx.spec.objective, measured, ctx.spec.targets)
    ctx.update(deployment={**earlier, **choice})
    return str(choice["precision"])

