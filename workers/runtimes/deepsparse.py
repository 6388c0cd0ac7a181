"""DeepSparse (Neural Magic's sparse CPU engine) as an optional runtime, run in a virtual environment of its own.

DeepSparse 1.8 is end-of-life and licensed for evaluation only, and it needs numpy<2 and old dependencies,
so it is never a dependency of the project: ``make deepsparse-venv`` builds ``.venv-deepsparse`` (or
``HWNAS_DEEPSPARSE_PYTHON`` names another interpreter), and every call crosses into that interpreter
through ``workers/deepsparse_child.py``: a long-lived child per compiled runner (batches in, logits out,
over pipes), a fresh one per measurement repeat. Without it ``unavailable()`` says why and how to get it.

It reads ONNX, not OpenVINO IR: ``model.onnx`` beside the IR it is given (``workers.export_onnx.save_onnx``
writes it), or the ``.onnx`` path itself. Precision is the file's: ``int8`` needs a quantized graph
(MatMulInteger or QDQ ops, as ``save_onnx`` writes an NNCF-quantized model), ``fp32`` one without any.
DeepSparse ignores ``ONEDNN_MAX_CPU_ISA``, so it measures only targets this host is (a thread cap is kept).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import subprocess
import tempfile
import threading
import weakref
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import numpy as np

from core.model_inputs import select_inputs
from core.types import Measurement
from workers.runtimes.base import Runner, Runtime

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHILD = PROJECT_ROOT / "workers" / "deepsparse_child.py"
PYTHON_ENV = "HWNAS_DEEPSPARSE_PYTHON"
DEFAULT_PYTHON = PROJECT_ROOT / ".venv-deepsparse" / "bin" / "python"
ONNX_FILE = "model.onnx"  # workers.export_onnx.ONNX_FILE (not imported: that module loads torch)
LABEL = "DeepSparse 1.8, end-of-life, evaluation licence"
HOW = "run `make deepsparse-venv` (optional; DeepSparse 1.8 is end-of-life, evaluation licence)"
QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "MatMulInteger", "QLinearMatMul", "QLinearConv", "ConvInteger"})
_HEADER = struct.Struct("<Q")
_STDERR_TAIL = 4000


def deepsparse_python() -> Path:
    """The interpreter of the DeepSparse venv: ``HWNAS_DEEPSPARSE_PYTHON``, else ``.venv-deepsparse/bin/python``."""
    return Path(os.environ.get(PYTHON_ENV) or DEFAULT_PYTHON)


def child_env() -> dict[str, str]:
    """The child's environment: no usage reports over the network, no ISA cap (DeepSparse ignores it anyway)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ONEDNN_MAX_CPU_ISA")}
    env["NM_DISABLE_ANALYTICS"] = "1"
    return env


@lru_cache(maxsize=8)
def _probe(python: str) -> tuple[str | None, str | None]:
    """(why it cannot be used or None, deepsparse's version) for the interpreter ``python``; asked once."""
    if not os.access(python, os.X_OK):
        return f"DeepSparse is not installed: {HOW}", None
    try:
        proc = subprocess.run([python, "-c", "import deepsparse; print(deepsparse.__version__)"], env=child_env(),
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"DeepSparse is not usable: {python} did not start ({exc}); {HOW}", None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        return f"DeepSparse is not usable: {python} cannot import deepsparse ({last}); {HOW}", None
    return None, proc.stdout.strip().splitlines()[-1]


def onnx_path(model_path: str | Path) -> Path:
    """The ONNX file for ``model_path``: itself if it ends in .onnx, else ``model.onnx`` in its directory."""
    path = Path(model_path)
    onnx = path if path.suffix == ".onnx" else path.parent / ONNX_FILE
    if not onnx.is_file():
        raise FileNotFoundError(f"DeepSparse reads ONNX: {onnx} not found; write it with "
                                f"workers.export_onnx.save_onnx(model, {str(onnx.parent)!r})")  # fmt: skip
    return onnx


def graph_precision(onnx: Path) -> str:
    """``int8`` if the graph has quantized ops, else ``fp32`` (read without the weights where they are external)."""
    import onnx as onnx_lib

    ops = {node.op_type for node in onnx_lib.load(str(onnx), load_external_data=False).graph.node}
    return "int8" if ops & QUANTIZED_OPS else "fp32"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DeepSparseRuntime(Runtime):
    name = "deepsparse"
    reads = "onnx"

    def unavailable(self) -> str | None:
        return _probe(str(deepsparse_python()))[0]

    def _model(self, model_path: str | Path, precision: str) -> Path:
        """The ONNX file to run, after the checks every call makes (precision, venv, file, its precision)."""
        self.check_precision(precision)
        reason = self.unavailable()
        if reason:
            raise RuntimeError(reason)
        onnx = onnx_path(model_path)
        found = graph_precision(onnx)
        if found != precision:
            raise ValueError(f"{onnx} is an {found} graph, not {precision}: DeepSparse runs a graph as it is quantized "
                             "(export the NNCF-quantized model with save_onnx for int8, the plain one for fp32)")  # fmt: skip
        return onnx

    def compile(self, model_path: str | Path, *, precision: str) -> Runner:
        """A runner backed by a long-lived DeepSparse child (one engine per batch shape, compiled on first use)."""
        return _ChildRunner(self._model(model_path, precision), num_cores=None)

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
        timeout_s: float = 600,
        max_spread_pct: float = 2.0,
    ) -> Measurement:
        """SingleStream and Offline in a fresh DeepSparse child per repeat, repeated like ``workers.benchmark.measure_ir``
        (at least two unless ``max_repeats`` is 1, until the p50s agree within ``max_spread_pct``); the target's
        thread cap as DeepSparse's ``num_cores``. ``ValueError`` for a target this host is not (no ISA emulation)."""
        from targets import detect_cpu, get_target, is_native
        from workers.repeat_stats import combine_repeats, spread_pct

        hw = get_target(target)
        onnx = self._model(model_path, precision)
        cpu = detect_cpu()
        if not is_native(hw, cpu):
            raise ValueError(f"DeepSparse cannot emulate target {hw.name!r} (it ignores ONEDNN_MAX_CPU_ISA): measure it on a "
                             f"{hw.stands_for} host; this one is {cpu['microarchitecture']}")  # fmt: skip
        cap = hw.thread_cap
        num_cores = max(1, min(cap, cpu["logical_cpus"])) if cap else None
        cmd = [
            str(deepsparse_python()), str(CHILD), "measure", str(onnx),
            "--seq-len", str(seq_len or hw.seq_len),
            "--latency-batch", str(hw.latency_batch),
            "--throughput-batch", str(throughput_batch or hw.throughput_batch),
            "--min-iterations", str(min_iterations), "--min-seconds", str(min_seconds),
        ]  # fmt: skip
        if num_cores:
            cmd += ["--num-cores", str(num_cores)]
        digest = sha256(onnx)
        repeats: list[Measurement] = []
        min_repeats = min(2, max_repeats)
        while True:
            raw = _run_measure_child(cmd, onnx, hw.name, timeout_s)
            repeats.append(_measurement(raw, hw, cpu, precision, num_cores, onnx, digest))
            n = len(repeats)
            if n >= max_repeats or (n >= min_repeats and spread_pct([m.p50_ms for m in repeats]) < max_spread_pct):
                break
        combined = combine_repeats(repeats, max_spread_pct=max_spread_pct)
        combined.fingerprint["target_source"] = hw.source
        combined.fingerprint["target_profile"] = hw.to_profile()
        return combined


def _run_measure_child(cmd: list[str], onnx: Path, target: str, timeout_s: float) -> dict[str, Any]:
    try:
        proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=child_env(), capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"DeepSparse measuring {onnx.name} for {target} timed out after {timeout_s}s") from exc
    if proc.returncode != 0:
        raise RuntimeError(f"DeepSparse measuring {onnx.name} for {target} failed (exit {proc.returncode}):\n{proc.stderr[-_STDERR_TAIL:]}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("the DeepSparse child printed no JSON line:\n" + proc.stderr[-_STDERR_TAIL:])


def _measurement(raw: dict[str, Any], hw: Any, cpu: dict[str, Any], precision: str, cap: int | None, onnx: Path, digest: str) -> Measurement:
    """One repeat's Measurement; the fingerprint has ``workers.openvino_timing.fingerprint``'s keys where they apply."""
    fingerprint = {
        "runtime": "deepsparse",
        "runtime_label": LABEL,
        "deepsparse_version": raw["deepsparse_version"],
        "cpu_model_name": cpu["model_name"],
        "microarchitecture": cpu["microarchitecture"],
        "vendor": cpu["vendor"],
        "host_cpu": cpu,
        "native": True,  # measure() refuses targets that would need emulation
        "emulated": False,
        "isa_cap": None,
        "deepsparse_isa": raw["cpu_avx_type"],
        "deepsparse_vnni": raw["cpu_vnni"],
        "deepsparse_cpu": raw.get("deepsparse_cpu"),
        "num_cores": raw["num_cores"],
        "threads": raw["num_cores"],
        "threads_cap": cap,
        "logical_cpus": cpu["logical_cpus"],
        "streams": raw["num_streams"],
        "scheduler": raw["scheduler"],
        "nireq": 1,  # Offline: synchronous runs of the batch on one engine
        "inference_precision": precision,
        "fraction_of_supported_ops": raw["fraction_of_supported_ops"],  # the rest runs in DeepSparse's ONNX Runtime fallback
        "compile_s": raw["compile_s"],
        "onnx_file": str(onnx),
        "onnx_sha256": digest,
        "throughput_iterations": raw["throughput_iterations"],
        "nice": raw["nice"],
        "python_version": raw["python_version"],
        "numpy_version": raw["numpy_version"],
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return Measurement(
        target=hw.name,
        precision=precision,
        seq_len=raw["seq_len"],
        latency_batch=raw["latency_batch"],
        p50_ms=raw["p50_ms"],
        p90_ms=raw["p90_ms"],
        p99_ms=raw["p99_ms"],
        latency_iterations=raw["latency_iterations"],
        throughput_batch=raw["throughput_batch"],
        throughput_sps=raw["throughput_sps"],
        fingerprint=fingerprint,
    )


class _ChildRunner:
    """The ``Runner`` of a DeepSparse child in ``serve`` mode: each batch is one frame there and one back.

    The child's stderr goes to a temporary file (read when it fails: DeepSparse aborts on graphs it cannot
    compile); the child ends when the runner is collected or the interpreter exits.
    """

    def __init__(self, onnx: Path, *, num_cores: int | None) -> None:
        cmd = [str(deepsparse_python()), str(CHILD), "serve", str(onnx)] + (["--num-cores", str(num_cores)] if num_cores else [])
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _stop, self._proc, self._stderr)
        ready = self._read()
        if "ready" not in ready:
            raise RuntimeError(f"the DeepSparse child did not start: {ready}")
        self.info: dict[str, Any] = json.loads(str(ready["ready"]))
        self.input_names: tuple[str, ...] = tuple(self.info["input_names"])

    def __call__(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        arrays = {k: np.ascontiguousarray(v, dtype=np.int64) for k, v in select_inputs(batch, self.input_names).items()}
        with self._lock:
            self._write(arrays)
            answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"DeepSparse failed on a batch of shape {arrays[self.input_names[0]].shape}: {answer['error']}")
        return answer["start_logits"], answer["end_logits"]

    def close(self) -> None:
        self._finalizer()

    def _write(self, arrays: dict[str, np.ndarray]) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        payload = buffer.getvalue()
        stdin = self._pipe(self._proc.stdin)
        try:
            stdin.write(_HEADER.pack(len(payload)) + payload)
            stdin.flush()
        except BrokenPipeError:
            raise self._died() from None

    def _read(self) -> dict[str, np.ndarray]:
        stdout = self._pipe(self._proc.stdout)
        header = stdout.read(_HEADER.size)
        if len(header) < _HEADER.size:
            raise self._died()
        (size,) = _HEADER.unpack(header)
        payload = stdout.read(size)
        if len(payload) < size:
            raise self._died()
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}

    @staticmethod
    def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
        assert stream is not None
        return stream

    def _died(self) -> RuntimeError:
        code = self._proc.wait()
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace")[-_STDERR_TAIL:]
        return RuntimeError(f"the DeepSparse child ended (exit {code}):\n{tail}")


def _stop(proc: subprocess.Popen[bytes], stderr: IO[bytes]) -> None:
    """End the serving child: end of input first (it returns), then a kill if it does not."""
    try:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()
    finally:
        if proc.stdout:
            proc.stdout.close()
        stderr.close()


RUNTIME = DeepSparseRuntime()
