"""Pareto fronts through Optuna's own dominance code (no home-made comparison).

Optuna's vectorised ``_is_pareto_front`` answers 10,000 points in milliseconds; building a
throw-away study (``best_trials``, public API) is the fallback if a future Optuna moves it.
"""

from __future__ import annotations

import logging
from typing import Hashable, Sequence

import numpy as np
import optuna
from optuna.trial import TrialState, create_trial

try:  # Optuna >= 3.x
    from optuna.study._multi_objective import _is_pareto_front
except ImportError:  # pragma: no cover - exercised only on an Optuna without it
    _is_pareto_front = None


def _public_front(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    optuna.logging.get_logger("optuna").setLevel(logging.WARNING)
    study = optuna.create_study(directions=list(directions))
    for i, row in enumerate(values):
        study.add_trial(create_trial(state=TrialState.COMPLETE, values=list(row), user_attrs={"i": i}))
    mask = np.zeros(len(values), dtype=bool)
    mask[[t.user_attrs["i"] for t in study.best_trials]] = True
    return mask


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the non-dominated rows; ``directions`` are "maximize"/"minimize" per column."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    if _is_pareto_front is None:
        return _public_front(values, directions)
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return _is_pareto_front(values * signs, assume_unique_lexsorted=False)


def pareto_keys(points: Sequence[tuple[Hashable, Sequence[float]]], directions: Sequence[str]) -> list[Hashable]:
    """Keys of the non-dominated points, in input order."""
    if not points:
        return []
    mask = pareto_mask(np.array([v for _, v in points]), directions)
    return [key for (key, _), on in zip(points, mask) if on]
