"""SingleStream latency and Offline throughput of an OpenVINO IR, one subprocess per measurement.

Why a subprocess: oneDNN reads ``ONEDNN_MAX_CPU_ISA`` once, when OpenVINO first
compiles, so emulating a target needs a fresh interpreter whose environment is set
before ``openvino`` is imported. That is also why this module imports ``openvino``
only inside functions.

Noise: ``measure_ir`` repeats the measurement, each repeat in its own subprocess, until the
relative spread of the repeats' medians (p50) is under ``max_spread_pct`` or ``max_repeats``
is reached, and reports the median of each figure over the repeats. The child renices itself
to 0 (Ray workers run at nice 15) and never imports torch.

Run by hand (one repeat; ``hwnas bench`` repeats like the service)::

    python -m workers.benchmark model.xml --seq-len 128 --target cascadelake [--json]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.types import Measurement
from targets import HardwareTarget, detect_cpu, get_target, is_native, logical_cpus

if TYPE_CHECKING:
    import openvino as ov

ISA_ENV = "ONEDNN_MAX_CPU_ISA"
PRECISIONS = ("int8", "fp32")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
_STDERR_TAIL = 4000


# --------------------------------------------------------------------------- parent side


def target_env(target: HardwareTarget, base: Mapping[str, str]) -> dict[str, str]:
    """The environment a measurement of ``target`` runs in: ISA cap set or removed."""
    env = dict(base)
    if target.isa:
        env[ISA_ENV] = target.isa
    else:
        env.pop(ISA_ENV, None)
    return env


def measure_ir(
    xml_path: str | Path,
    *,
    target: str | HardwareTarget = "native",
    precision: str = "int8",
    seq_len: int | None = None,
    latency_batch: int | None = None,
    throughput_batch: int | None = None,
    min_iterations: int = 50,
    min_seconds: float = 2.0,
    warmup: int = 5,
    timeout_s: float = 600,
    min_repeats: int = 2,
    max_repeats: int = 5,
    max_spread_pct: float = 2.0,
) -> Measurement:
    """Measure one IR for one target, each repeat in a fresh interpreter; return the combined ``Measurement``.

    ``target`` is a profile name or a ``HardwareTarget`` (an ad-hoc profile). ``seq_len`` and the
    batches default to the profile's scenarios. Repeats stop once at least ``min_repeats`` are
    done and the p50s' spread, ``(max - min) / median``, is under ``max_spread_pct`` percent,
    or at ``max_repeats``. ``timeout_s`` applies to each repeat.
    """
    hw = get_target(target)  # KeyError for unknown names before spawning anything
    _check_precision(precision)
    if not 1 <= min_repeats <= max_repeats:
        raise ValueError(f"need 1 <= min_repeats <= max_repeats, got {min_repeats} and {max_repeats}")
    xml = Path(xml_path).resolve()
    if not xml.is_file():
        raise FileNotFoundError(f"IR not found: {xml}")
    cmd = [
        sys.executable, "-m", "workers.benchmark", str(xml),
        "--target", hw.name,
        "--profile", json.dumps(hw.to_profile()),
        "--precision", precision,
        "--seq-len", str(seq_len or hw.seq_len),
        "--latency-batch", str(latency_batch or hw.latency_batch),
        "--throughput-batch", str(throughput_batch or hw.throughput_batch),
        "--min-iterations", str(min_iterations),
        "--min-seconds", str(min_seconds),
        "--warmup", str(warmup),
        "--json",
    ]  # fmt: skip
    env = child_env(hw, os.environ)
    repeats: list[Measurement] = []
    while True:
        repeats.append(_run_child(cmd, env, xml, hw.name, timeout_s))
        n = len(repeats)
        if n >= max_repeats:
            break
        if n >= min_repeats and spread_pct([m.p50_ms for m in repeats]) < max_spread_pct:
            break
    combined = combine_repeats(repeats, max_spread_pct=max_spread_pct)
    combined.fingerprint["target_source"] = hw.source
    combined.fingerprint["target_profile"] = hw.to_profile()
    return combined


def child_env(target: HardwareTarget, base: Mapping[str, str]) -> dict[str, str]:
    """``target_env`` plus what the measurement interpreter needs: the project on its path, and
    one OpenBLAS thread (numpy only draws the inputs; its idle pool would keep the parent's nice)."""
    env = target_env(target, base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def _run_child(cmd: list[str], env: dict[str, str], xml: Path, target: str, timeout_s: float) -> Measurement:
    try:
        proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"measuring {xml.name} for {target} timed out after {timeout_s}s") from exc
    if proc.returncode != 0:
        raise RuntimeError(f"measuring {xml.name} for {target} failed (exit {proc.returncode}):\n" + error_text(proc.stderr))
    return Measurement.from_dict(_last_json_line(proc.stdout, proc.stderr))


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)(:|$)")


def error_text(stderr: str) -> str:
    """The child's exception (OpenVINO's own message for an IR that does not compile), without the
    traceback and library chatter before it; the raw tail when no exception line is found."""
    lines = stderr.rstrip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if _EXCEPTION_LINE.match(lines[i]) and any(line.startswith("Traceback") for line in lines[:i]):
            return "\n".join(lines[i:])[-_STDERR_TAIL:]
    return stderr[-_STDERR_TAIL:]


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


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def _last_json_line(stdout: str, stderr: str) -> dict[str, Any]:
    """The measurement line; anything a library printed before it is ignored."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("benchmark subprocess printed no JSON line:\n" + stderr[-_STDERR_TAIL:])


# --------------------------------------------------------------------------- child side


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
    hint: str, target: HardwareTarget, precision: str, *, streams: bool = False, available: int | None = None
) -> dict[str, Any]:
    """Compile properties for one mode.

    f32 is forced for fp32, and also for int8 on targets without bf16: OpenVINO picks
    bf16 for the non-quantized ops from the host's cpuid and ignores the ISA cap, so a
    Cascade Lake emulated on a bf16 host would otherwise run (emulated) bf16 kernels.
    The profile's thread cap (``threads``, else ``cores``) applies to both modes.
    """
    config: dict[str, Any] = {"PERFORMANCE_HINT": hint}
    if precision == "fp32" or not target.has_bf16:
        config["INFERENCE_PRECISION_HINT"] = "f32"
    threads = thread_cap(target, available)
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    if streams and target.streams:
        config["NUM_STREAMS"] = target.streams
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


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _thread_ids() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # not Linux: the calling thread stands for the process
        return [0]


def normal_priority() -> int:
    """Renice every thread of this process to 0 (Ray workers run at nice 15); returns the niceness.

    Lowering the niceness needs root (or CAP_SYS_NICE); without it the niceness stays and is
    recorded as it is. Call before OpenVINO starts its threads, which inherit the caller's.
    """
    for tid in _thread_ids():
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) > 0:
                os.setpriority(os.PRIO_PROCESS, tid, 0)
        except (PermissionError, ProcessLookupError):
            pass
    return niceness()


def niceness() -> int:
    """The highest niceness among this process's threads (Linux keeps one per thread)."""
    values = []
    for tid in _thread_ids():
        try:
            values.append(os.getpriority(os.PRIO_PROCESS, tid))
        except ProcessLookupError:  # a thread that just ended
            pass
    return max(values) if values else os.getpriority(os.PRIO_PROCESS, 0)


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
    lat_model, lat_inputs = _compile(
        core, args.xml, args.latency_batch, args.seq_len,
        compile_config("LATENCY", target, args.precision),
    )  # fmt: skip
    times = measure_latency(lat_model, lat_inputs, args)
    tput_model, tput_inputs = _compile(
        core, args.xml, args.throughput_batch, args.seq_len,
        compile_config("THROUGHPUT", target, args.precision, streams=True),
    )  # fmt: skip
    sps, requests, nireq = measure_throughput(tput_model, tput_inputs, args)
    p50, p90, p99 = (float(v) for v in np.percentile(times, [50, 90, 99]))
    fp = fingerprint(target, lat_model, tput_model, nireq)
    fp["throughput_iterations"] = requests
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


def _apply_isa_cap(target: HardwareTarget) -> None:
    """Make a hand-run CLI behave like ``measure_ir``: set the cap before OpenVINO loads."""
    wanted = target_env(target, os.environ).get(ISA_ENV)
    if os.environ.get(ISA_ENV) == wanted:
        return
    if "openvino" in sys.modules:
        raise RuntimeError(f"{ISA_ENV} must be set before openvino is imported")
    if wanted is None:
        os.environ.pop(ISA_ENV, None)
    else:
        os.environ[ISA_ENV] = wanted


def target_from_args(args: argparse.Namespace) -> HardwareTarget:
    """The profile ``measure_ir`` passed (``--profile``), else the named one."""
    if getattr(args, "profile", None):
        return HardwareTarget.from_profile(json.loads(args.profile), source="--profile")
    return get_target(args.target)


def format_table(m: Measurement) -> str:
    """A few readable lines for humans running the CLI."""
    fp = m.fingerprint
    mode = "emulated" if fp.get("emulated") else "native"
    threads = f"{fp.get('threads')} threads" + (f", cap {fp['threads_cap']}" if fp.get("threads_cap") else "")
    rows = [
        ("target", f"{m.target} ({mode}, ISA cap {fp.get('isa_cap') or 'none'})"),
        ("host", f"{fp.get('cpu_model_name')} [{fp.get('microarchitecture')}]"),
        ("precision", f"{m.precision} (runs as {fp.get('inference_precision')})"),
        ("seq_len", str(m.seq_len)),
        (
            f"latency b={m.latency_batch}",
            f"p50 {m.p50_ms:.3f} ms  p90 {m.p90_ms:.3f} ms  p99 {m.p99_ms:.3f} ms"
            f"  ({m.latency_iterations} iterations, {threads})",
        ),
        (
            f"throughput b={m.throughput_batch}",
            f"{m.throughput_sps:.1f} samples/s  ({fp.get('streams')} streams, {fp.get('nireq')} requests)",
        ),
    ]
    if "repeats" in fp:
        rows.append(
            (
                "repeats",
                f"{fp['repeats']} (p50 spread {fp['spread_pct']:.2f}%, throughput spread "
                f"{fp['throughput_spread_pct']:.2f}%{_convergence(fp)})",
            )
        )
    rows += [("nice", str(fp.get("nice"))), ("openvino", str(fp.get("openvino_version")))]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _convergence(fp: Mapping[str, Any]) -> str:
    converged = fp.get("converged")
    return "" if converged else (", single repeat" if converged is None else ", not converged")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m workers.benchmark", description=__doc__.splitlines()[0])
    p.add_argument("xml", help="OpenVINO IR .xml file")
    p.add_argument("--seq-len", type=int, help="default: the target profile's")
    p.add_argument("--target", default="native")
    p.add_argument("--profile", help="the target profile as JSON (what measure_ir passes; overrides --target)")
    p.add_argument("--precision", default="int8", choices=PRECISIONS)
    p.add_argument("--latency-batch", type=int, help="default: the profile's SingleStream batch")
    p.add_argument("--throughput-batch", type=int, help="default: the profile's Offline batch")
    p.add_argument("--min-iterations", type=int, default=50)
    p.add_argument("--min-seconds", type=float, default=2.0)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print the Measurement as one JSON line")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    normal_priority()  # first: OpenVINO's threads inherit the niceness of the thread that starts them
    args = parse_args(argv)
    _apply_isa_cap(target_from_args(args))
    m = run_benchmark(args)
    print(json.dumps(m.to_dict()) if args.json else format_table(m), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
