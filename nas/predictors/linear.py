"""A cost-model predictor: non-negative least squares on the work a subnet does.

At a fixed sequence length a BERT encoder's time is a sum of per-layer costs: Q/K/V/O projections
and the attention itself scale with heads x hidden, the FFN with its width x hidden, LayerNorms and
residuals with hidden. So latency ~ c0 + c1 * layers * H + c2 * sum(heads) * H + c3 * sum(ffn) * H with
non-negative c (a physical cost cannot be negative), fitted to minimise *relative* error (rows
divided by the measurement). The Offline time per sample (1 / throughput) gets the same model.
With 4 coefficients it is sound from a handful of points, which is what a search has early on
(HAT's predictor needs thousands of samples; this one does not learn anything it need not).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import nnls

from nas.predictors.base import LatencyPredictor, Prediction
from nas.types import SubnetConfig


class LinearCostPredictor(LatencyPredictor):
    def __init__(self, *, base_hidden: int) -> None:
        self.base_hidden = base_hidden
        self._lat: np.ndarray | None = None
        self._tpt: np.ndarray | None = None
        self._n = 0

    def features(self, subnet: SubnetConfig) -> np.ndarray:
        h = (subnet.hidden or self.base_hidden) / self.base_hidden
        return np.array([1.0, subnet.num_layers * h, sum(subnet.heads) * h, sum(subnet.ffn) * h / 64.0])

    @staticmethod
    def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        coef, _ = nnls(x / y[:, None], np.ones(len(y)))
        return coef

    def fit(self, subnets: Sequence[SubnetConfig], p90_ms: Sequence[float], throughput_sps: Sequence[float]) -> None:
        if not (len(subnets) == len(p90_ms) == len(throughput_sps)) or not subnets:
            raise ValueError("fit needs one p90 and one throughput per subnet, and at least one subnet")
        x = np.stack([self.features(s) for s in subnets])
        self._lat = self._fit(x, np.asarray(p90_ms, dtype=float))
        self._tpt = self._fit(x, 1.0 / np.asarray(throughput_sps, dtype=float))
        self._n = len(subnets)

    def predict(self, subnet: SubnetConfig) -> Prediction:
        if self._lat is None or self._tpt is None:
            raise RuntimeError("predict before fit")
        x = self.features(subnet)
        per_sample = float(x @ self._tpt)
        return Prediction(p90_ms=float(x @ self._lat), throughput_sps=1.0 / per_sample if per_sample > 0 else float("inf"))

    @property
    def n_points(self) -> int:
        return self._n
