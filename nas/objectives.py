"""What a job optimises and what it requires: Optuna directions, values and named constraints.

One place turns a ``TrialResult`` into the numbers Optuna sees, so the coordinator, the API and
the benchmarks agree on them. Constraints follow Optuna's convention (a value <= 0 is feasible)
and are set with ``Trial.set_constraint`` (Optuna 5's replacement for ``constraints_func``; the
samplers read the same stored values).
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.spec import JobSpec
from core.types import TrialResult

MIB = float(1 << 20)


def objective_names(targets: list[str], objective: str = "latency") -> list[str]:
    speed = "p90 latency {} (ms)" if objective == "latency" else "throughput {} (samples/s)"
    return ["F1"] + [speed.format(t) for t in targets]


def directions(targets: list[str], objective: str = "latency") -> list[str]:
    return ["maximize"] + ["minimize" if objective == "latency" else "maximize"] * len(targets)


def f1_floor(min_f1: float | None, min_f1_ratio: float | None, teacher_fp32_f1: float | None) -> float | None:
    """The F1 a trial must reach: the higher of the absolute floor and the ratio of the teacher's FP32 F1."""
    ratio = None if min_f1_ratio is None or teacher_fp32_f1 is None else min_f1_ratio * teacher_fp32_f1
    floors = [v for v in (min_f1, ratio) if v is not None]
    return max(floors) if floors else None


@dataclass(frozen=True)
class JobObjectives:
    targets: tuple[str, ...]
    objective: str  # "latency" | "throughput"
    min_f1: float | None  # the F1 floor in points, after the teacher ratio is applied
    max_latency_ms: float | None
    max_model_mb: float | None

    @classmethod
    def of(cls, spec: JobSpec, teacher_fp32_f1: float | None) -> "JobObjectives":
        c = spec.constraints
        return cls(
            targets=tuple(spec.targets),
            objective=spec.objective,
            min_f1=f1_floor(c.min_f1, c.min_f1_ratio, teacher_fp32_f1),
            max_latency_ms=c.max_latency_ms,
            max_model_mb=c.max_model_mb,
        )

    @property
    def names(self) -> list[str]:
        return objective_names(list(self.targets), self.objective)

    @property
    def directions(self) -> list[str]:
        return directions(list(self.targets), self.objective)

    def values(self, result: TrialResult) -> list[float]:
        speed = [result.measurement_for(t) for t in self.targets]
        if self.objective == "latency":
            return [result.f1] + [m.p90_ms for m in speed]
        return [result.f1] + [m.throughput_sps for m in speed]

    def constraints(self, result: TrialResult) -> dict[str, float]:
        """Named constraint values (<= 0 feasible); only the constraints the job sets."""
        out: dict[str, float] = {}
        if self.min_f1 is not None:
            out["f1_floor"] = self.min_f1 - result.f1
        if self.max_latency_ms is not None:
            out["p90_cap"] = max(result.measurement_for(t).p90_ms for t in self.targets) - self.max_latency_ms
        if self.max_model_mb is not None:
            out["size_cap"] = result.ir_size_bytes / MIB - self.max_model_mb
        return out

    def feasible(self, result: TrialResult) -> bool:
        return all(v <= 0 for v in self.constraints(result).values())
