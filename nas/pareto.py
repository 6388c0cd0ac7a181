"""Pareto fronts through Optuna's own dominance rules (no home-made comparison)."""

from __future__ import annotations

import logging
from typing import Hashable, Sequence

import optuna
from optuna.trial import TrialState, create_trial


def pareto_keys(points: Sequence[tuple[Hashable, Sequence[float]]], directions: Sequence[str]) -> list[Hashable]:
    """Keys of the non-dominated points; ``directions`` are "maximize"/"minimize" per value."""
    if not points:
        return []
    optuna.logging.get_logger("optuna").setLevel(logging.WARNING)
    study = optuna.create_study(directions=list(directions))
    keys = {}
    for i, (key, values) in enumerate(points):
        keys[i] = key
        study.add_trial(create_trial(state=TrialState.COMPLETE, values=list(values), user_attrs={"i": i}))
    return [keys[t.user_attrs["i"]] for t in study.best_trials]

