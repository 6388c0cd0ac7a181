"""The latency-predictor interface: fit on measured subnets of one target fingerprint, predict new ones."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.types import SubnetConfig

# fingerprint fields that change speed; measurements agreeing on all of them are one population
SPEED_KEYS = ("microarchitecture", "emulated", "isa_cap", "threads", "streams", "inference_precision", "openvino_version")


def fingerprint_key(target: str, precision: str, seq_len: int, latency_batch: int, throughput_batch: int, fingerprint: Mapping[str, Any]) -> str:
    """Which measurements a predictor may learn from together: same target, scenario and machine setup."""
    parts = [target, precision, str(seq_len), str(latency_batch), str(throughput_batch)]
    parts += [f"{k}={fingerprint.get(k)}" for k in SPEED_KEYS]
    return "|".join(parts)


@dataclass(frozen=True)
class Prediction:
    p90_ms: float
    throughput_sps: float


class LatencyPredictor(ABC):
    """Narrow on purpose: ``fit`` on measured subnets, ``predict`` one; ``n_points`` says how much it knows."""

    @abstractmethod
    def fit(self, subnets: Sequence[SubnetConfig], p90_ms: Sequence[float], throughput_sps: Sequence[float]) -> None:
        """Replace the model with one fitted on these measurements (all of one fingerprint key)."""

    @abstractmethod
    def predict(self, subnet: SubnetConfig) -> Prediction:
        """Predicted SingleStream p90 and Offline throughput; ``RuntimeError`` before any ``fit``."""

    @property
    @abstractmethod
    def n_points(self) -> int:
        """Measurements behind the current fit (0 when unfitted)."""


def mape(pairs: Sequence[tuple[float, float]]) -> float:
    """Mean absolute percentage error of ``(predicted, measured)`` pairs, in percent."""
    if not pairs:
        return float("nan")
    return 100.0 * sum(abs(p - m) / m for p, m in pairs) / len(pairs)
