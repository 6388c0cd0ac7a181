"""Optuna samplers by name, imported lazily (Ray Tune's registry habit)."""

from __future__ import annotations

from typing import Callable

import optuna


def _nsga2(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)


def _tpe(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=5)


def _random(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {"nsga2": _nsga2, "tpe": _tpe, "random": _random}


def make_sampler(name: str, *, seed: int) -> optuna.samplers.BaseSampler:
    try:
        return SAMPLERS[name](seed)
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}") from None
