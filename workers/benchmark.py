"""SingleStream latency and Offline throughput of an OpenVINO IR, one subprocess per measurement.

Why a subprocess: oneDNN reads ``ONEDNN_MAX_CPU_ISA`` once, when OpenVINO first
compiles, so emulating a target needs a fresh interpreter whose environment is set
before ``openvino`` is imported. That is also why this module imports ``openvino``
only inside functions.

Noise: ``measure_ir`` repeats the measurement, each repeat in its own subprocess, until the
relative spread of the repeats' medians (p50) is under ``max_spread_pct`` or ``max_repeats``
is reached, and reports the median of each figure over the repeats. The child renices itself
to 0 (Ray workers run at nice 15) and never imports torch.

This module is the parent side (``measure_ir``: spawn, repeat, read back) and the child's entry
point. The rest lives beside it: ``workers.measurement_process`` (the child's environment and
priority), ``workers.openvino_timing`` (the timing in the child), ``workers.repeat_stats``
(spread and combination of repeats), ``workers.measurement_child`` (the measuring child process: its arguments and output; not a user command).

Run by hand (one repeat; ``hwnas bench`` repeats like the service)::

    python -m workers.benchmark model.xml --seq-len 128 --target cascadelake [--json]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from core import progress
from core.types import Measurement
from targets import HardwareTarget, get_target
from workers.measurement_child import main
from workers.measurement_process import ISA_ENV, PROJECT_ROOT, child_env, target_env
from workers.openvino_timing import PRECISIONS, compile_config, synthetic_inputs, thread_cap
from workers.repeat_stats import combine_repeats, spread_pct

# what callers and tests have imported from here since before the split
__all__ = [
    "ISA_ENV",
    "PRECISIONS",
    "PROJECT_ROOT",
    "child_env",
    "combine_repeats",
    "compile_config",
    "error_text",
    "main",
    "measure_deployment",
    "measure_ir",
    "spread_pct",
    "synthetic_inputs",
    "target_env",
    "thread_cap",
]

_STDERR_TAIL = 4000


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
        census = [] if repeats else ["--kernel-census"]  # once: the combined fingerprint is the first repeat's
        repeats.append(_run_child(cmd + census, env, xml, hw.name, timeout_s))
        n = len(repeats)
        progress.current().step(n, max_repeats, unit="repeats")  # at most max_repeats: fewer when they agree
        if n >= max_repeats:
            break
        if n >= min_repeats and spread_pct([m.p50_ms for m in repeats]) < max_spread_pct:
            break
    combined = combine_repeats(repeats, max_spread_pct=max_spread_pct)
    combined.fingerprint["target_source"] = hw.source
    combined.fingerprint["target_profile"] = hw.to_profile()
    return combined


def measure_deployment(
    xml_path: str | Path,
    *,
    target: str | HardwareTarget = "native",
    precision: str = "int8",
    lengths: list[int],
    max_length: int,
    policies: tuple[str, ...] = ("fixed", "buckets"),
    buckets: tuple[int, ...] | None = None,
    batches: tuple[int, ...] = (1, 16),
    streams: tuple[int, ...] = (),
    objective: str = "throughput",
    loadgen: bool = False,
    fixed: dict[str, Any] | None = None,
    rests: tuple[str, ...] = ("f32",),
    scoring: dict[str, Any] | None = None,
    log_dir: str | Path | None = None,
    min_iterations: int = 20,
    min_seconds: float = 1.0,
    warmup: int = 5,
    timeout_s: float = 600,
) -> dict[str, Any]:
    """The deployment sweep of one IR on one target (``workers.deployment_timing``), once, in a fresh
    interpreter with the target's ISA cap: every policy's SingleStream and Offline figures over the query
    set ``lengths`` (real window lengths), and the chosen deployment with its reason. ``fixed`` (figures already
    taken at full padding: ``single_stream`` and ``offline`` rows) joins the candidates as the fixed policy.
    ``rests``: inference precisions for what is not INT8, the first swept, the others measured at its choice;
    a bf16 choice is scored as deployed on ``scoring["windows"]`` (``workers.deployment_precision``)."""
    hw = get_target(target)
    _check_precision(precision)
    from core.qa.length_policy import POLICIES

    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        raise ValueError(f"length policies must be some of {', '.join(POLICIES)}, got {list(policies)}")
    if not batches or min(batches) < 1:
        raise ValueError(f"Offline batch sizes must be at least 1, got {list(batches)}")
    if streams and min(streams) < 1:
        raise ValueError(f"stream counts must be at least 1, got {list(streams)}")
    if objective not in ("throughput", "latency"):
        raise ValueError(f"objective must be throughput or latency, got {objective!r}")
    if not rests or set(rests) - {"f32", "bf16"}:
        raise ValueError(f"inference precisions must be some of f32, bf16, got {list(rests)}")
    if "bf16" in rests and scoring is None:
        raise ValueError("a bf16 deployment is scored as deployed: give scoring (the eval windows, task, reference F1)")
    xml = Path(xml_path).resolve()
    if not xml.is_file():
        raise FileNotFoundError(f"IR not found: {xml}")
    spec = {"lengths": [int(n) for n in lengths], "max_length": max_length, "policies": list(policies), "buckets": buckets,
            "batches": list(batches), "streams": list(streams), "objective": objective, "loadgen": loadgen, "fixed": fixed,
            "rests": list(rests), "scoring": scoring, "log_dir": str(log_dir) if log_dir else None}  # fmt: skip
    cmd = [
        sys.executable, "-m", "workers.benchmark", str(xml),
        "--target", hw.name, "--profile", json.dumps(hw.to_profile()), "--precision", precision,
        "--min-iterations", str(min_iterations), "--min-seconds", str(min_seconds), "--warmup", str(warmup),
    ]  # fmt: skip
    env = {**child_env(hw, os.environ), "PYTHONFAULTHANDLER": "1"}  # a native crash leaves its Python stack in stderr
    crashes: list[str] = []
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="hwnas-deployment-") as spec_file:
        json.dump(spec, spec_file)  # a file, not an argument: a query set of thousands of lengths is long
        spec_file.flush()
        for _ in range(3):  # a child killed by a signal runs again, twice at most (zen4, bf16 models: SIGSEGV/SIGABRT in about half of the runs)
            try:
                proc = subprocess.run([*cmd, "--deployment", "@" + spec_file.name], cwd=PROJECT_ROOT,
                                      env=env, capture_output=True, text=True, timeout=timeout_s)  # fmt: skip
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(f"the deployment sweep of {xml.name} for {hw.name} timed out after {timeout_s}s") from exc
            if proc.returncode >= 0:
                break
            crashes.append(f"signal {-proc.returncode}: " + error_text(proc.stderr)[-1500:])
    if proc.returncode != 0:
        raise RuntimeError(f"the deployment sweep of {xml.name} for {hw.name} failed (exit {proc.returncode}):\n" + error_text(proc.stderr))
    result = _last_json_line(proc.stdout, proc.stderr)
    if crashes:
        result["child_crashes"] = crashes  # stored with the sweep: what the first child died of
    return result


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


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def _last_json_line(stdout: str, stderr: str) -> dict[str, Any]:
    """The measurement line; anything a library printed before it is ignored."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("benchmark subprocess printed no JSON line:\n" + stderr[-_STDERR_TAIL:])


if __name__ == "__main__":
    sys.exit(main())
