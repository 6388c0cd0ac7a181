"""How repeated measurements of one IR are judged and combined: their spread, and one figure from many.

Pure arithmetic on ``Measurement`` values, apart from the subprocesses that produce them, so the
convergence rule ``measure_ir`` stops on can be read (and tested) on its own.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from core.types import Measurement


def spread_pct(values: Sequence[float]) -> float:
    """Relative spread in percent: ``(max - min) / median * 100`` (0 for fewer than two values)."""
    if len(values) < 2:
        return 0.0
    mid = statistics.median(values)
    return (max(values) - min(values)) / mid * 100.0 if mid > 0 else float("inf")


def combine_repeats(repeats: Sequence[Measurement], *, max_spread_pct: float = 2.0) -> Measurement:
    """One ``Measurement`` from repeats: the median of each figure, iterations summed, spreads recorded.

    The fingerprint is the first repeat's plus ``repeats``, ``spread_pct`` (of the p50s),
    ``throughput_spread_pct``, ``converged`` (p50 spread under ``max_spread_pct``; None for a
    single repeat) and the per-repeat p50s and throughputs.
    """
    if not repeats:
        raise ValueError("no repeats to combine")
    first = repeats[0]
    p50s = [m.p50_ms for m in repeats]
    tputs = [m.throughput_sps for m in repeats]
    med = statistics.median
    fp = dict(first.fingerprint)
    spread = spread_pct(p50s)
    fp.update(
        repeats=len(repeats),
        spread_pct=round(spread, 3),
        throughput_spread_pct=round(spread_pct(tputs), 3),
        converged=spread < max_spread_pct if len(repeats) > 1 else None,  # None: one repeat, nothing to compare
        repeat_p50_ms=[round(v, 6) for v in p50s],
        repeat_throughput_sps=[round(v, 3) for v in tputs],
        throughput_iterations=sum(int(m.fingerprint.get("throughput_iterations", 0)) for m in repeats),
        nice=max(int(m.fingerprint.get("nice", 0)) for m in repeats),
    )
    return Measurement(
        target=first.target,
        precision=first.precision,
        seq_len=first.seq_len,
        latency_batch=first.latency_batch,
        p50_ms=float(med(p50s)),
        p90_ms=float(med(m.p90_ms for m in repeats)),
        p99_ms=float(med(m.p99_ms for m in repeats)),
        latency_iterations=sum(m.latency_iterations for m in repeats),
        throughput_batch=first.throughput_batch,
        throughput_sps=float(med(tputs)),
        fingerprint=fp,
    )
