"""A job's speed predictors: one per target, learning from every measurement taken alike.

Warm start: the store's measurements (any job) whose fingerprint key equals the one this job's
own baselines were measured with. Each new measurement is first compared with what the
predictor said before it was taken (an honest held-out error), then added and the model refitted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from nas.predictors import make_predictor
from nas.predictors.base import LatencyPredictor, Prediction, mape
from core.types import SubnetConfig


@dataclass
class _Target:
    key: str
    model: LatencyPredictor
    points: dict[str, tuple[SubnetConfig, float, float]] = field(default_factory=dict)  # encoding -> latest
    held_out: list[tuple[float, float]] = field(default_factory=list)  # (predicted p90, measured p90)


class SpeedPredictors:
    def __init__(self, kind: str, *, base_hidden: int, keys: dict[str, str]) -> None:
        self.targets = {t: _Target(key, make_predictor(kind, base_hidden=base_hidden)) for t, key in keys.items()}

    def add(self, target: str, subnet: SubnetConfig, p90_ms: float, throughput_sps: float, *, refit: bool = True) -> None:
        t = self.targets[target]
        t.points[subnet.encoding()] = (subnet, p90_ms, throughput_sps)
        if refit:
            self._refit(t)

    def warm_start(self, target: str, key: str, samples: Iterable[tuple[SubnetConfig, float, float]]) -> int:
        """Add the samples measured under ``key`` (others are ignored); returns how many were used."""
        t = self.targets[target]
        if key != t.key:
            return 0
        n = 0
        for subnet, p90, sps in samples:
            self.add(target, subnet, p90, sps, refit=False)
            n += 1
        if n:
            self._refit(t)
        return n

    def _refit(self, t: _Target) -> None:
        subnets, p90, sps = zip(*t.points.values())
        t.model.fit(list(subnets), list(p90), list(sps))

    def points(self, target: str) -> int:
        return len(self.targets[target].points)

    def predict(self, subnet: SubnetConfig) -> dict[str, Prediction]:
        """Predictions for the targets that have at least one point."""
        return {name: t.model.predict(subnet) for name, t in self.targets.items() if t.points}

    def record(self, target: str, predicted_p90: float, measured_p90: float) -> None:
        self.targets[target].held_out.append((predicted_p90, measured_p90))

    def error_pct(self, target: str) -> float:
        """MAPE of the p90 predictions made before each measurement of this job."""
        return mape(self.targets[target].held_out)
