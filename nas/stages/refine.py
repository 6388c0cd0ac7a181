"""The refine stage: distil the fronts' chosen members standalone, then build and measure them again.

Each refined subnet becomes a new trial (``refined_from``) with its F1 before and after; which
members are chosen is ``nas.refine.refine_choice`` over each target's front of the job's objective.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.types import SubnetConfig
from nas.context import compression_plan
from nas.dispatch import BuildCall
from nas.pareto import pareto_keys
from nas.refine import refine_choice
from nas.stages.search import JobSearch, result_from_row
from nas.store import repo


def run_refine_stage(search: JobSearch) -> None:
    """Refine ``refine.top_k`` front members per target (a supernet job only)."""
    ctx, spec = search.ctx, search.spec
    top_k = spec.refine.top_k
    if top_k == 0 or search.supernet_dir is None or ctx.cancelled:
        return
    chosen = refine_candidates(search, top_k)
    if not chosen:
        return
    ctx.update(stage="refine")
    plan = compression_plan(spec, refine=True)  # QAT (qat_scope refine or all) and the pruning steps
    sparsities = search.sparsity.choices if spec.sparsity.stage == "refine" else (None,)
    for number in chosen:
        with ctx.sessions() as s:
            row = repo.get_trial(s, ctx.job_id, number)
            assert row is not None
            found = SubnetConfig.from_dict(row.config)
            before = result_from_row(row, trial_number=number, subnet=found)
        for sparsity in sparsities:  # sparsity.stage refine: the member once per choice; else as the search found it
            if ctx.cancelled:
                return
            subnet = found if sparsity is None else replace(found, sparsity=sparsity)
            _refine_one(search, number, subnet, before, plan)


def _refine_one(search: JobSearch, number: int, subnet: SubnetConfig, before: Any, plan: Any) -> None:
    """One refined trial of front member ``number``: the search's own parameters, ``subnet`` (its sparsity
    may be the refine stage's), distilled for ``refine.steps`` and then compressed by ``plan``."""
    ctx, spec, study = search.ctx, search.spec, search.study
    steps = spec.refine.steps
    source = study.trials[number]
    study.enqueue_trial(source.params, skip_if_exists=False)  # same architecture; the sampler is not asked
    trial = study.ask()
    for name, dist in source.distributions.items():  # the search's own choices, so the study's space stays one
        trial.suggest_categorical(name, list(dist.choices))  # type: ignore[attr-defined]
    trial.set_user_attr("hwnas:config", subnet.to_dict())
    trial.set_user_attr("hwnas:refined_from", number)
    out = ctx.trial_dir(f"trial-{trial.number}-refined")
    request = replace(search.request(trial.number, subnet, out), finetune_lr=spec.refine.learning_rate, compression=plan)
    with ctx.sessions.begin() as s:
        repo.start_trial(s, ctx.job_id, number=trial.number, optuna_trial_id=trial._trial_id, config=subnet.to_dict())
    if trial.params != source.params:  # a queued trial (an unspent retry) was handed out first
        search.record_failure(trial, f"refinement of trial {number} failed: the study handed out queued trial {trial.number}")
        return
    outcome = ctx.runner.run(request, precision=search.precision, build=BuildCall("refine", (steps, before, search.precision)))
    if outcome.result is None:
        search.record_failure(trial, f"refinement of trial {number} failed: {outcome.error}")
        return
    search.record_success(trial, outcome.result)


def refine_candidates(search: JobSearch, top_k: int) -> list[int]:
    """Per target, ``nas.refine.refine_choice`` over the front of the job's own objective."""
    spec = search.spec
    latency = spec.objective == "latency"
    metric, speed_dir = ("p90_ms", "minimize") if latency else ("throughput_sps", "maximize")
    chosen: list[int] = []
    with search.sessions() as s:
        completed = repo.trials_of(s, search.job_id, state="completed")
        feasible = {t.number for t in completed if t.feasible}
        subnets = {t.number: SubnetConfig.from_dict(t.config) for t in completed}
        refined = {subnets[t.number].dense for t in completed if t.f1_before_refine is not None}
        done = {n for n, sub in subnets.items() if sub.dense in refined}  # a resumed job refines once
        for target in spec.targets:
            points = repo.pareto_points(s, search.job_id, target, metric)
            on_front = set(pareto_keys([(n, (f1, v)) for n, f1, v in points], ["maximize", speed_dir]))
            front = [(n, f1, -v if latency else v) for n, f1, v in points if n in on_front and n not in done]
            rs = spec.refine
            for n in refine_choice(front, feasible, top_k, rs.policy, floor=search.objectives.min_f1, max_gap=rs.max_gap):
                if n not in chosen:
                    chosen.append(n)
    return chosen
