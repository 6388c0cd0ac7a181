"""Latency predictors by name (lazy registry), and the store-backed bookkeeping a job needs."""

from __future__ import annotations

from collections.abc import Callable

from nas.predictors.base import LatencyPredictor, Prediction, fingerprint_key, mape


def _linear(base_hidden: int) -> LatencyPredictor:
    from nas.predictors.linear import LinearCostPredictor

    return LinearCostPredictor(base_hidden=base_hidden)


PREDICTORS: dict[str, Callable[[int], LatencyPredictor]] = {"linear": _linear}


def make_predictor(name: str, *, base_hidden: int) -> LatencyPredictor:
    try:
        return PREDICTORS[name](base_hidden)
    except KeyError:
        raise ValueError(f"unknown predictor {name!r}; known: {', '.join(PREDICTORS)}") from None


__all__ = ["LatencyPredictor", "Prediction", "fingerprint_key", "make_predictor", "mape", "PREDICTORS"]
