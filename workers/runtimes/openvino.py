"""OpenVINO on the CPU: the runtime every trial is evaluated and measured with today."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.types import Measurement
from workers.evaluate import openvino_runner
from workers.runtimes.base import Runner, Runtime, SweepRequest


class OpenVINORuntime(Runtime):
    name = "openvino"

    def compile(self, model_path: str | Path, *, precision: str) -> Runner:
        """``INFERENCE_PRECISION_HINT=f32`` for both precisions: OpenVINO would otherwise run FP32 (and INT8's
        non-quantized ops) in bf16 on AMX/BF16 CPUs, whose rounding depends on the shape, so the F1 of the
        IR would change with the padded length and the batch (a bf16 deployment is scored as deployed)."""
        import openvino as ov

        self.check_precision(precision)
        config = {"INFERENCE_PRECISION_HINT": "f32"}
        return openvino_runner(ov.Core().compile_model(str(model_path), "CPU", config))

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
        """``workers.benchmark.measure_ir``: each repeat in a fresh interpreter, the target's ISA and thread cap;
        at least two repeats (compared for convergence) unless ``max_repeats`` is 1."""
        from workers.benchmark import measure_ir

        return measure_ir(
            model_path,
            target=target,
            precision=precision,
            seq_len=seq_len,
            throughput_batch=throughput_batch,
            min_iterations=min_iterations,
            min_seconds=min_seconds,
            min_repeats=min(2, max_repeats),
            max_repeats=max_repeats,
        )

    def measure_deployment(self, model_path: str | Path, *, target: str, precision: str, sweep: SweepRequest) -> dict[str, Any] | None:
        """``workers.benchmark.measure_deployment``: one fresh interpreter with the target's ISA and thread cap;
        LoadGen's logs beside the model (``loadgen-<target>/``)."""
        from workers.benchmark import measure_deployment

        return measure_deployment(model_path, target=target, precision=precision, **asdict(sweep), log_dir=Path(model_path).parent / f"loadgen-{target}")


RUNTIME = OpenVINORuntime()
