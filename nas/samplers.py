"""Optuna samplers by name, imported lazily (Ray Tune's registry habit).

``grid`` needs the space as ``{param: choices}``; ``grid_of`` reads it off one sampled trial, so any
search space whose parameters do not depend on each other can be enumerated without a second
description of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution

Grid = Mapping[str, Sequence[Any]]


def _nsga2(seed: int, grid: Grid | None) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)


def _tpe(seed: int, grid: Grid | None) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=5)


def _gp(seed: int, grid: Grid | None) -> optuna.samplers.BaseSampler:
    # categorical choices become one-hot inputs of the GP; multi-objective uses log EHVI
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=5, warn_independent_sampling=False)


def _random(seed: int, grid: Grid | None) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


class AskTellGridSampler(optuna.samplers.GridSampler):
    """``GridSampler`` for ask-and-tell: Optuna's calls ``study.stop()`` once the grid is covered, which
    raises outside ``optimize``. Here nothing stops; later proposals repeat grid points, which the
    coordinator answers from the store, and the job's trial budget ends the search."""

    def after_trial(self, study, trial, state, values) -> None:  # type: ignore[no-untyped-def, override]
        return None


def _grid(seed: int, grid: Grid | None) -> optuna.samplers.BaseSampler:
    if not grid:
        raise ValueError("sampler 'grid' needs the search space's choices (see grid_of)")
    return AskTellGridSampler({k: list(v) for k, v in grid.items()}, seed=seed)


SAMPLERS: dict[str, Callable[[int, Grid | None], optuna.samplers.BaseSampler]] = {
    "nsga2": _nsga2,
    "tpe": _tpe,
    "gp": _gp,
    "random": _random,
    "grid": _grid,
}


def make_sampler(name: str, *, seed: int, grid: Grid | None = None) -> optuna.samplers.BaseSampler:
    try:
        factory = SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}") from None
    return factory(seed, grid)


def grid_of(sample: Callable[[optuna.Trial], Any], *, probes: int = 8) -> dict[str, list[Any]]:
    """The ``{param: choices}`` that ``sample`` draws from, read off a few throw-away in-memory trials.

    Raises ``ValueError`` when the parameters are not all categorical or change between trials
    (a conditional space, e.g. per-layer widths for a varying depth): a grid cannot enumerate it.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: dict[str, CategoricalDistribution] | None = None
    for _ in range(probes):
        trial = study.ask()
        sample(trial)
        dists = trial.distributions
        if any(not isinstance(d, CategoricalDistribution) for d in dists.values()):
            raise ValueError("sampler 'grid' needs a space of categorical choices only")
        if seen is not None and dists != seen:
            raise ValueError("sampler 'grid' needs a space whose parameters do not depend on each other (per_layer with several depths, say)")
        seen = dists  # type: ignore[assignment]
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    assert seen is not None
    return {name: list(d.choices) for name, d in seen.items()}
