"""Gradual unstructured magnitude pruning with distillation (NNCF ``nncf.prune`` and its scheduler).

The subnet is distilled from the teacher while the share of zeroed weights in every Linear of the
encoder rises along the cubic schedule of Zhu & Gupta (2017), ``s(t) = S (1 - (1 - t/T)^3)``, to
``subnet.sparsity`` at 70% of the steps; the masks then hold while the rest of the steps recover the
accuracy (Neural Magic's oBERT recipe has the same shape). Embeddings and the QA head stay dense: they
are a small share of the compute, and the QA head is 2 x hidden. The masks stay as NNCF hooks so that
a QAT step after this one trains with them; ``workers.compression.nncf_torch.strip_for_export``
writes them into the weights.
"""

from __future__ import annotations

from typing import Any

from core.types import TrialRequest
from workers.compression.base import CompressionStep, StepContext

RAMP_SHARE = 0.7  # of the steps: the sparsity reaches its target here, then the masks hold
MILESTONES = 10  # mask updates on the way (each one recomputes the masks from the weights' magnitudes)
DENSE_PATTERNS = (".*embeddings.*", ".*qa_outputs.*")  # node names NNCF never prunes here


def cubic_schedule(target: float, steps: int, *, milestones: int = MILESTONES, ramp_share: float = RAMP_SHARE) -> dict[int, float]:
    """Training step -> sparsity from that step on (NNCF's ``MultiStepMagnitudePruningScheduler`` form):
    0 at step 0, ``target`` from step ``ramp_share * steps`` (from step 0 when ``steps`` is 0: one shot)."""
    if not 0 <= target < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {target}")
    ramp = int(round(ramp_share * steps))
    if ramp < 1:
        return {0: target}
    points = min(milestones, ramp)
    schedule = {0: 0.0}
    for k in range(1, points + 1):
        schedule[round(k * ramp / points)] = round(target * (1 - (1 - k / points) ** 3), 6)
    return schedule


class Prune(CompressionStep):
    """Needs ``context.distil`` (and the teacher) when ``request.plan.prune_steps`` > 0; with 0 steps the
    subnet is pruned in one shot, untrained (fast, and far less accurate)."""

    name = "prune"
    works_on = "torch"
    timed_as = "prune"

    def apply(self, model: Any, *, request: TrialRequest, context: StepContext) -> Any:
        if model is None:
            raise ValueError("prune works on the sliced PyTorch model: it cannot start a chain")
        target, plan = request.subnet.sparsity, request.plan
        if not target:
            return model
        import nncf
        from nncf.torch.function_hook.pruning.magnitude.schedulers import MultiStepMagnitudePruningScheduler

        from workers.compression.nncf_torch import example_inputs

        mode = {"local": nncf.PruneMode.UNSTRUCTURED_MAGNITUDE_LOCAL, "global": nncf.PruneMode.UNSTRUCTURED_MAGNITUDE_GLOBAL}[plan.prune_mode]
        ignored = nncf.IgnoredScope(patterns=list(DENSE_PATTERNS), validate=False)
        pruned = nncf.prune(model, mode, ratio=0.0, ignored_scope=ignored, examples_inputs=example_inputs(model))
        schedule = cubic_schedule(target, plan.prune_steps)
        scheduler = MultiStepMagnitudePruningScheduler(pruned, mode=mode, steps=schedule)  # type: ignore[arg-type]
        scheduler.step(0)
        if plan.prune_steps == 0:
            return pruned
        if context.distil is None:
            raise ValueError("gradual pruning distils the subnet: it needs StepContext.distil")
        last = max(schedule)

        def on_step(step: int, total: int) -> None:
            if step <= last:
                scheduler.step(step)  # masks from the weights as trained so far, at the schedule's sparsity

        context.distil(pruned, request, steps=plan.prune_steps, learning_rate=plan.prune_lr, on_step=on_step)
        return pruned


STEP = Prune()
