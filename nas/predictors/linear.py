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
from core.types import SubnetConfig


class LinearCostPredictor(LatencyPredictor):
    def __init__(self, *, base_hidden: int, robust: bool = True) -> None:
        self.base_hidden = base_hidden
        self.robust = robust
        self._lat: np.ndarray | None = None
        self._tpt: np.ndarray | None = None
        self._n = 0

    def features(self, subnet: SubnetConfig) -> np.ndarray:
        h = (subnet.hidden or self.base_hidden) / self.base_hidden
        return np.array([1.0, subnet.num_layers * h, sum(subnet.heads) * h, sum(subnet.ffn) * h / 64.0])

    @staticmethod
    def _fit(x: np.ndarray, y: np.ndarray, *, robust: bool = True, huber_k: float = 1.345, iterations: int = 20) -> np.ndarray:
        """NNLS on relative error; with ``robust``, Huber-reweighted (IRLS): a measurement disturbed by
        another process on the host (a p90 twice the model's) pulls the fit by a bounded amount."""
        a, b = x / y[:, None], np.ones(len(y))
        coef, _ = nnls(a, b)
        if not robust or len(y) < 2 * x.shape[1]:  # too few points to tell an outlier from the model
            return coef
        w = np.ones(len(y))
        for _ in range(iterations):
            r = a @ coef - b
            scale = 1.4826 * float(np.median(np.abs(r - np.median(r))))
            if scale <= 1e-9:
                break
            u = np.abs(r) / (huber_k * scale)
            w_new = np.sqrt(np.where(u <= 1.0, 1.0, 1.0 / np.maximum(u, 1e-12)))
            coef, _ = nnls(a * w_new[:, None], b * w_new)
            if np.allclose(w_new, w, atol=1e-4):
                break
            w = w_new
        return coef

    def fit(self, subnets: Sequence[SubnetConfig], p90_ms: Sequence[float], throughput_sps: Sequence[float]) -> None:
        if not (len(subnets) == len(p90_ms) == len(throughput_sps)) or not subnets:
            raise ValueError("fit needs one p90 and one throughput per subnet, and at least one subnet")
        x = np.stack([self.features(s) for s in subnets])
        self._lat = self._fit(x, np.asarray(p90_ms, dtype=float), robust=self.robust)
        self._tpt = self._fit(x, 1.0 / np.asarray(throughput_sps, dtype=float), robust=self.robust)
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
