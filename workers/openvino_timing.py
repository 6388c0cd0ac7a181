"""The measurement itself, run inside the measurement child: compile an IR, time it, describe the run.

SingleStream latency (synchronous ``infer()`` per call) and Offline throughput (every optimal
infer request kept busy) of one IR for one target, plus the fingerprint of where and how the
numbers were taken. This module imports ``openvino`` only inside functions: the process must
have its ISA cap set (``workers.measurement_process``) before OpenVINO loads.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from core.types import Measurement
from targets import HardwareTarget, detect_cpu, get_target, is_native, logical_cpus
from workers.measurement_process import ISA_ENV, niceness

if TYPE_CHECKING:
    import openvino as ov

PRECISIONS = ("int8", "fp32")


def synthetic_inputs(model: "ov.Model", batch: int, seq_len: int) -> dict[str, np.ndarray]:
    """QA-like inputs: random mid-vocabulary ids, full attention, question/context segments."""
    rng = np.random.default_rng(0)
    token_types = np.zeros((batch, seq_len))
    token_types[:, seq_len // 2 :] = 1
    values = {
        "input_ids": rng.integers(1000, 2000, size=(batch, seq_len)),
        "attention_mask": np.ones((batch, seq_len)),
        "token_type_ids": token_types,
    }
    inputs = {}
    for port in model.inputs:
        # a port can carry several names (the tracer's "308" beside "attention_mask"): take the one we know
        name = next((n for n in sorted(port.get_names()) if n in values), port.get_any_name())
        if name not in values:
            raise ValueError(f"unexpected model input {name!r}; expected {sorted(values)}")
        inputs[name] = values[name].astype(port.get_element_type().to_dtype())
    return inputs


def thread_cap(target: HardwareTarget, available: int | None = None) -> int | None:
    """Inference threads for ``target`` here: the profile's cap, at most the CPUs this process may use."""
    cap = target.thread_cap
    if cap is None:
        return None
    return max(1, min(cap, available if available is not None else logical_cpus()))


def compile_config(
    hint: str, target: HardwareTarget, precision: str, *, streams: bool = False, available: int | None = None, rest: str = "f32"
) -> dict[str, Any]:
    """Compile properties for one mode.

    The inference precision is always explicit: ``rest="f32"`` (the default: FP32, and INT8's
    non-quantized ops, in f32, as the trial's F1 was scored; bf16's rounding depends on the shape, so
    a bf16 deployment has its own F1, scored as deployed) or ``rest="bf16"``, on a target that has
    bf16 only: OpenVINO picks bf16 from the host's cpuid and ignores the ISA cap, so a Cascade Lake
    emulated on a bf16 host must be told f32.
    The profile's thread cap (``threads``, else ``cores``) applies to both modes; its
    ``sparse_weights_rate`` to INT8 compiles (OpenVINO decompresses sparse weights on AMX only).
    """
    config: dict[str, Any] = {"PERFORMANCE_HINT": hint}
    if rest not in ("f32", "bf16"):
        raise ValueError(f"inference precision must be f32 or bf16, got {rest!r}")
    config["INFERENCE_PRECISION_HINT"] = "bf16" if rest == "bf16" and target.has_bf16 else "f32"
    threads = thread_cap(target, available)
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    if streams and target.streams:
        config["NUM_STREAMS"] = target.streams
    if precision == "int8" and target.sparse_weights_rate is not None:
        config["CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE"] = target.sparse_weights_rate  # AMX: sparse kernels; else ignored
    return config


def _run_until(step: Callable[[], None], min_iterations: int, min_seconds: float) -> tuple[int, float]:
    """Call ``step`` until both minimums are met; returns (calls, elapsed seconds)."""
    calls, start = 0, time.perf_counter()
    while calls < min_iterations or time.perf_counter() - start < min_seconds:
        step()
        calls += 1
    return calls, time.perf_counter() - start


def measure_latency(
    compiled: "ov.CompiledModel", inputs: dict[str, np.ndarray], args: argparse.Namespace
) -> list[float]:
    """Per-call milliseconds of synchronous ``infer()`` with inputs already on the request."""
    request = compiled.create_infer_request()
    for name, array in inputs.items():
        request.set_tensor(name, _tensor(array))
    for _ in range(args.warmup):
        request.infer()
    times: list[float] = []

    def step() -> None:
        t0 = time.perf_counter()
        request.infer()
        times.append((time.perf_counter() - t0) * 1000.0)

    _run_until(step, args.min_iterations, args.min_seconds)
    return times


def measure_throughput(
    compiled: "ov.CompiledModel", inputs: dict[str, np.ndarray], args: argparse.Namespace
) -> tuple[float, int, int]:
    """Samples/s with all optimal infer requests kept busy; returns (sps, requests done, nireq)."""
    import openvino as ov

    nireq = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    queue = ov.AsyncInferQueue(compiled, nireq)
    tensors = {name: _tensor(array) for name, array in inputs.items()}  # shared, read-only
    for _ in range(max(args.warmup, nireq)):
        queue.start_async(tensors)
    queue.wait_all()
    done, elapsed = _run_until(lambda: queue.start_async(tensors), args.min_iterations, args.min_seconds)
    queue.wait_all()
    elapsed = max(elapsed, 1e-9)
    return args.throughput_batch * done / elapsed, done, nireq


def _tensor(array: np.ndarray) -> "ov.Tensor":
    import openvino as ov

    return ov.Tensor(np.ascontiguousarray(array))


def _compile(
    core: "ov.Core", xml: str, batch: int, seq_len: int, config: dict[str, Any]
) -> tuple["ov.CompiledModel", dict[str, np.ndarray]]:
    """Read the IR, fix every input to ``[batch, seq_len]`` and compile it for the CPU."""
    model = core.read_model(xml)
    model.reshape({port.get_any_name(): [batch, seq_len] for port in model.inputs})
    return core.compile_model(model, "CPU", config), synthetic_inputs(model, batch, seq_len)


def kernel_census(core: "ov.Core", xml: str, seq_len: int, config: dict[str, Any]) -> dict[str, Any]:
    """Which kernels OpenVINO ran the IR's FullyConnected layers with under ``config`` (one batch-1 inference
    with its performance counters on): ``sparse`` of ``fully_connected`` used a sparse-weight kernel.

    Why: ``CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE`` is a request, not a guarantee (AMX only, INT8 2-D weights
    whose dimensions are multiples of 64, sparse enough for the rate); a sparse trial's figures say whether
    its zeros were run as zeros, read from the runtime rather than assumed from the CPU's flags."""
    compiled, inputs = _compile(core, xml, 1, seq_len, {**config, "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True})
    request = compiled.create_infer_request()
    request.infer(inputs)
    kernels = [info.exec_type for info in request.profiling_info if info.node_type == "FullyConnected"]
    return {"sparse": sum("sparse" in k.lower() for k in kernels), "fully_connected": len(kernels), "kernels": sorted(set(kernels))}


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def fingerprint(
    target: HardwareTarget, latency: "ov.CompiledModel", throughput: "ov.CompiledModel", nireq: int
) -> dict[str, Any]:
    """Where and how the numbers were taken, read back from the compiled models."""
    import openvino as ov

    cpu = detect_cpu()
    native = is_native(target, cpu)
    return {
        "cpu_model_name": cpu["model_name"],
        "microarchitecture": cpu["microarchitecture"],
        "vendor": cpu["vendor"],
        "native": native,
        "emulated": not native,
        "isa_cap": os.environ.get(ISA_ENV),
        "threads": int(latency.get_property("INFERENCE_NUM_THREADS")),
        "threads_cap": thread_cap(target, cpu["logical_cpus"]),
        "logical_cpus": cpu["logical_cpus"],
        "streams": int(throughput.get_property("NUM_STREAMS")),
        "nireq": nireq,
        "inference_precision": latency.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
        "nice": niceness(),
        "openvino_version": ov.get_version(),
        "nncf_version": _version("nncf"),
        "python_version": platform.python_version(),
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def run_benchmark(args: argparse.Namespace) -> Measurement:
    """Both measurements of one IR in this process (its ISA cap must already be set)."""
    import openvino as ov

    target = target_from_args(args)
    args.seq_len = args.seq_len or target.seq_len
    args.latency_batch = args.latency_batch or target.latency_batch
    args.throughput_batch = args.throughput_batch or target.throughput_batch
    core = ov.Core()
    lat_config = compile_config("LATENCY", target, args.precision)
    lat_model, lat_inputs = _compile(core, args.xml, args.latency_batch, args.seq_len, lat_config)
    times = measure_latency(lat_model, lat_inputs, args)
    tput_model, tput_inputs = _compile(
        core, args.xml, args.throughput_batch, args.seq_len,
        compile_config("THROUGHPUT", target, args.precision, streams=True),
    )  # fmt: skip
    sps, requests, nireq = measure_throughput(tput_model, tput_inputs, args)
    p50, p90, p99 = (float(v) for v in np.percentile(times, [50, 90, 99]))
    fp = fingerprint(target, lat_model, tput_model, nireq)
    fp["throughput_iterations"] = requests
    if getattr(args, "kernel_census", False) and "CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE" in lat_config:
        fp["sparse_kernels"] = kernel_census(core, args.xml, args.seq_len, lat_config)  # after the clocks
    return Measurement(
        target=target.name,
        precision=args.precision,
        seq_len=args.seq_len,
        latency_batch=args.latency_batch,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        latency_iterations=len(times),
        throughput_batch=args.throughput_batch,
        throughput_sps=sps,
        fingerprint=fp,
    )


def target_from_args(args: argparse.Namespace) -> HardwareTarget:
    """The profile ``measure_ir`` passed (``--profile``), else the named one."""
    if getattr(args, "profile", None):
        return HardwareTarget.from_profile(json.loads(args.profile), source="--profile")
    return get_target(args.target)
