"""Refine a chosen subnet standalone: distil it from the teacher for more steps, then INT8 and F1 again."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from core.types import TrialRequest, TrialResult
from workers.pipeline import build_candidate
from workers.training_articles import training_articles_file


def refine_candidate(request: TrialRequest, steps: int, *, before: TrialResult | None = None, precision: str = "int8") -> TrialResult:
    """Distil ``request.subnet`` (sliced from ``request.supernet_dir``) standalone from the teacher for
    ``steps`` steps, then INT8 and F1 as any trial. ``f1_before_refine`` / ``exact_match_before_refine``
    are ``before``'s F1/EM (the search's result for this subnet), or those of a build without refinement."""
    if request.supernet_dir is None:
        raise ValueError("refine_candidate needs a TrialRequest with supernet_dir")
    request = replace(request, train_file=training_articles_file(request))  # distil and calibrate on training articles only
    if before is None:
        out = Path(request.output_dir)
        before = build_candidate(replace(request, finetune_steps=0, output_dir=str(out.with_name(out.name + "-before"))), precision=precision)
    after = build_candidate(replace(request, finetune_steps=steps), precision=precision)
    return replace(
        after,
        f1_before_refine=before.f1,
        exact_match_before_refine=before.exact_match,
        stage_seconds={**after.stage_seconds, "refine_steps": float(steps)},
    )
