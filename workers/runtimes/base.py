"""The runtime interface: run an exported model on batches (for F1) and measure its speed.

Narrow on purpose, keyword-only arguments: a runtime compiles a model file for a precision into a
batch runner that ``workers.evaluate.evaluate_qa`` drives, and measures that file's speed on a
hardware target. Exporting and compressing the model are not its business (``workers.export``,
``workers.compression``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.types import Measurement
from workers.evaluate import Runner  # model inputs by name -> (start_logits, end_logits)

PRECISIONS = ("fp32", "int8")


@dataclass(frozen=True)
class SweepRequest:
    """What a deployment sweep measures (``nas.spec.DeploymentSpec`` for one trial and target)."""

    lengths: tuple[int, ...]  # the query set: real window lengths (tokens)
    max_length: int
    policies: tuple[str, ...]  # core.qa.length_policy.POLICIES, besides the fixed length
    buckets: tuple[int, ...] | None
    batches: tuple[int, ...]  # Offline batch sizes (the best policy is swept over them)
    streams: tuple[int, ...]  # NUM_STREAMS points besides the hint's
    objective: str  # "throughput" or "latency"
    loadgen: bool
    fixed: dict[str, Any] | None  # measure_ir's fixed-length figures as a candidate (workers.deployed.fixed_rows)
    min_iterations: int
    min_seconds: float
    rests: tuple[str, ...] = ("f32",)  # inference precisions (f32, bf16) for what is not INT8; the first one is swept
    scoring: dict[str, Any] | None = None  # how a bf16 choice is scored as deployed (workers.deployment_precision)


class Runtime(ABC):
    """One inference engine. ``precision`` is how the model is meant to run: ``fp32`` means FP32 math
    (no silent bf16 on CPUs that have it), ``int8`` the quantized ops in INT8 and the rest in FP32 (a
    bf16 rest is a deployment choice, scored as deployed: its rounding depends on the shape)."""

    name: str
    precisions: tuple[str, ...] = PRECISIONS
    reads: str = "openvino-ir"  # the model file it measures: the IR, or "onnx" (model.onnx beside it, which a trial then writes)

    def unavailable(self) -> str | None:
        """Why this runtime cannot run here, with how to fix it (an optional engine that is not installed);
        None: usable. Callers and the conformance suite skip a runtime that says why."""
        return None

    def check_precision(self, precision: str) -> None:
        if precision not in self.precisions:
            raise ValueError(f"runtime {self.name!r} runs precisions {', '.join(self.precisions)}, not {precision!r}")

    @abstractmethod
    def compile(self, model_path: str | Path, *, precision: str) -> Runner:
        """Load and compile the model file for ``precision``; the runner takes one batch of named
        int64 arrays ([batch, seq]) and returns the start and end logits as float arrays."""

    @abstractmethod
    def measure(
        self,
        model_path: str | Path,
        *,
        target: str,
        precision: str,
        seq_len: int | None,
        throughput_batch: int | None,
        min_iterations: int,
        min_seconds: float,
        max_repeats: int = 5,
    ) -> Measurement:
        """Latency (batch of the target's latency scenario) and throughput (``throughput_batch``) at
        ``seq_len`` on hardware target ``target``, in a process of its own, with its fingerprint;
        repeated (until the repeats agree) at most ``max_repeats`` times, the count in the fingerprint."""

    def measure_deployment(self, model_path: str | Path, *, target: str, precision: str, sweep: SweepRequest) -> dict[str, Any] | None:
        """The deployment sweep (``workers.deployment_timing``) of the model on ``target`` over ``sweep``'s query
        set of real window lengths: each length policy's SingleStream and Offline figures, the chosen one and
        why. None: this runtime runs one fixed shape only (the trial keeps ``measure``'s figures)."""
        return None
