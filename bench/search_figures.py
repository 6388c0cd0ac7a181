"""Figures read off a finished search: measurements per target, the front's order, hypervolume, overheads, predictor error.

Pure functions of the service's trial and baseline rows (as ``/api/v1/jobs/<id>/trials`` returns
them), shared by ``bench.search``, its report and the benches that re-read its results
(``bench.headline``, ``bench.samplers``, ``bench.predictor``).
"""

from __future__ import annotations

import statistics
from typing import Any


def meas(row: dict[str, Any], target: str = "native") -> dict[str, Any]:
    """A trial's or a baseline's measurement on ``target``."""
    return next(m for m in row["measurements"] if m["target"] == target)


def fastest_first(objective: str, target: str = "native") -> Any:
    """Sort key: fastest first by the job's objective (Offline samples/s, or SingleStream p90)."""
    if objective == "throughput":
        return lambda t: -meas(t, target)["throughput_sps"]
    return lambda t: meas(t, target)["p90_ms"]


def refined(trials: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(refine-stage trial, the search trial it was refined from): a completed one carries
    ``f1_before_refine`` and its source's architecture; a failed one says "refinement of trial N failed"."""
    import re

    searched = [t for t in trials if t.get("f1_before_refine") is None and t["state"] == "completed"]
    pairs: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for t in trials:
        failed = re.match(r"refinement of trial (\d+) failed", t.get("error") or "")
        if t.get("f1_before_refine") is not None:
            pairs.append((t, next((s for s in searched if s["config"] == t["config"]), None)))
        elif failed:
            pairs.append((t, next((s for s in searched if s["number"] == int(failed.group(1))), None)))
    return pairs


def hypervolume(points: list[tuple[float, float]], ref_p90: float) -> float:
    """Area dominated by (F1 up, p90 down) points, bounded by F1 0 and ``ref_p90`` (Optuna's WFG)."""
    import numpy as np
    from optuna._hypervolume import compute_hypervolume

    loss = np.array([(-f1, p90) for f1, p90 in points if p90 < ref_p90 and f1 > 0], dtype=float)
    if len(loss) == 0:
        return 0.0
    return float(compute_hypervolume(loss, np.array([0.0, ref_p90]), assume_pareto=False))


def overheads(trials: list[dict[str, Any]]) -> dict[str, float]:
    """Coordinator share of trial wall time: wall (start to finish) minus the tasks' own time."""
    from datetime import datetime

    shares, walls = [], []
    for t in trials:
        s = t["stage_seconds"] or {}
        if t["state"] != "completed" or "build_started_at" not in s or "reused_from_trial" in s or t.get("f1_before_refine") is not None:
            continue
        wall = (datetime.fromisoformat(t["finished_at"]) - datetime.fromisoformat(t["started_at"])).total_seconds()
        tasks = s["build_finished_at"] - s["build_started_at"]
        tasks += sum(m["fingerprint"].get("finished_at", 0) - m["fingerprint"].get("started_at", 0) for m in t["measurements"])
        if wall > 0:
            shares.append(max(0.0, wall - tasks) / wall)
            walls.append(wall)
    return {
        "trials": len(shares),
        "median_share_pct": 100 * statistics.median(shares) if shares else float("nan"),
        "mean_share_pct": 100 * statistics.mean(shares) if shares else float("nan"),
        "median_trial_wall_s": statistics.median(walls) if walls else float("nan"),
    }


def leave_one_out(subnets: list[Any], p90: list[float], tpt: list[float], *, hidden: int = 384, min_points: int = 1
                  ) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:  # fmt: skip
    """(predicted, measured) p90 and throughput pairs of the service's predictor, each subnet predicted
    from all the others (none when fewer than ``min_points`` others)."""
    from nas.predictors.linear import LinearCostPredictor

    loo: list[tuple[float, float]] = []
    loo_tpt: list[tuple[float, float]] = []
    for i in range(len(subnets) if len(subnets) - 1 >= min_points else 0):
        rest = [j for j in range(len(subnets)) if j != i]
        model = LinearCostPredictor(base_hidden=hidden)
        model.fit([subnets[j] for j in rest], [p90[j] for j in rest], [tpt[j] for j in rest])
        pred = model.predict(subnets[i])
        loo.append((pred.p90_ms, p90[i]))
        loo_tpt.append((pred.throughput_sps, tpt[i]))
    return loo, loo_tpt


def predictor_error(trials: list[dict[str, Any]], min_points: int = 6) -> dict[str, Any]:
    """The latency predictor's error on measurements it had not seen: each prediction the search made
    before measuring (all of them, and those made from at least ``min_points`` measurements, when the
    search may act on them), and leave-one-out over the run's final measurements (one refit each)."""
    from nas.predictors.base import mape
    from core.types import SubnetConfig

    built = [
        t for t in trials
        if t["state"] == "completed" and t["measurements"] and "reused_from_trial" not in (t["stage_seconds"] or {})
        and t.get("f1_before_refine") is None  # a refined trial repeats its source's subnet
    ]  # fmt: skip
    online = [(t["predicted"]["native"], meas(t)) for t in built if t.get("predicted") and "native" in t["predicted"]]
    enough = [(p, m) for p, m in online if p.get("points", 0) >= min_points]
    subnets = [SubnetConfig.from_dict(t["config"]) for t in built]
    loo, loo_tpt = leave_one_out(subnets, [meas(t)["p90_ms"] for t in built], [meas(t)["throughput_sps"] for t in built], min_points=min_points)
    return {
        "online": mape([(p["p90_ms"], m["p90_ms"]) for p, m in online]), "online_n": len(online),
        "enough": mape([(p["p90_ms"], m["p90_ms"]) for p, m in enough]), "enough_n": len(enough), "min_points": min_points,
        "enough_tpt": mape([(p["throughput_sps"], m["throughput_sps"]) for p, m in enough]),
        "loo": mape(loo), "loo_tpt": mape(loo_tpt), "loo_n": len(loo),
    }
