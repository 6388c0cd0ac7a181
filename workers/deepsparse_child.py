"""The DeepSparse side of ``workers.runtimes.deepsparse``: a script run by the DeepSparse venv's python.

DeepSparse 1.8 installs only in a virtual environment of its own (``make deepsparse-venv``: numpy<2 and
old dependencies), so this file imports the standard library, numpy and deepsparse, nothing of the
project (``pyproject.toml``'s import-linter contract says so). Two modes:

``serve MODEL.onnx``: for F1. Reads frames from stdin and answers each on stdout. A frame is an 8-byte
little-endian length and an ``np.savez`` archive: in, the named int64 [batch, seq] inputs; out,
``start_logits`` and ``end_logits`` or ``error`` (a message). The first frame out is ``ready`` (JSON:
versions, the model's input names). DeepSparse compiles static shapes, so one engine is compiled per
(batch, seq) and kept (the ``MAX_ENGINES`` used last: a length policy that runs every length would otherwise
keep a copy of the weights per length).

``measure MODEL.onnx``: SingleStream (``--latency-batch``, synchronous runs, p50/p90/p99) and Offline
(``--throughput-batch``, samples/s) at ``--seq-len`` for at least ``--min-iterations`` runs and
``--min-seconds`` each after ``--warmup`` runs; prints one JSON line.

DeepSparse's engine rewrites the input shapes of the file it is given in place (``input_shapes``), so an
engine is compiled from a static-shape copy in a temporary directory, never from the trial's file. Its
C library prints to fd 1: in ``serve`` mode fd 1 is pointed at stderr and the frames go to a duplicate of
the original stdout. ``--num-cores``: the target's thread cap (DeepSparse runs one thread per core);
default all. Not a user command: ``workers.runtimes.deepsparse`` starts it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import struct
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # run as a script: no project module shadows a library

import numpy as np  # noqa: E402

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")  # DeepSparse would otherwise report usage over the network
_HEADER = struct.Struct("<Q")
MAX_ENGINES = 8
IDS = (1000, 2000)  # synthetic ids, as workers.openvino_timing.synthetic_inputs draws them


def read_frame(stream: BinaryIO) -> dict[str, np.ndarray] | None:
    """One frame's arrays; None at end of stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def write_frame(stream: BinaryIO, arrays: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


class Engines:
    """DeepSparse engines of one ONNX file, one per (batch, seq), compiled from a static-shape copy."""

    def __init__(self, model: str, num_cores: int | None) -> None:
        from deepsparse.utils import get_input_names

        self.model, self.num_cores = model, num_cores
        self.input_names: list[str] = list(get_input_names(model))
        self.compiled: OrderedDict[tuple[int, int], Any] = OrderedDict()
        self.compile_s: dict[str, float] = {}

    def get(self, batch: int, seq: int) -> Any:
        key = (batch, seq)
        if key in self.compiled:
            self.compiled.move_to_end(key)
        else:
            while len(self.compiled) >= MAX_ENGINES:
                self.compiled.popitem(last=False)
            from deepsparse import Engine
            from deepsparse.utils import override_onnx_input_shapes

            began = time.perf_counter()
            shapes = [[batch, seq] for _ in self.input_names]
            with override_onnx_input_shapes(self.model, shapes, inplace=False) as static_copy:
                self.compiled[key] = Engine(static_copy, batch_size=batch, num_cores=self.num_cores)
            self.compile_s[f"{batch}x{seq}"] = round(time.perf_counter() - began, 3)
        return self.compiled[key]

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise KeyError(f"the model takes {missing}, which the batch lacks (it has {sorted(inputs)})")
        arrays = [np.ascontiguousarray(inputs[n], dtype=np.int64) for n in self.input_names]
        batch, seq = arrays[0].shape
        return self.get(int(batch), int(seq)).run(arrays)


def versions() -> dict[str, Any]:
    import deepsparse

    cpu = deepsparse.cpu_architecture()
    return {
        "deepsparse_version": deepsparse.__version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "deepsparse_cpu": {k: cpu[k] for k in ("isa", "vnni", "bf16", "vendor", "vendor_model", "num_cores", "threads_per_core") if k in cpu},
    }


def serve(args: argparse.Namespace) -> int:
    frames = os.fdopen(os.dup(1), "wb")  # the protocol's stdout ...
    os.dup2(2, 1)  # ... and the libraries' prints go to stderr
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer
    engines = Engines(args.model, args.num_cores)
    write_frame(frames, {"ready": np.array(json.dumps({**versions(), "input_names": engines.input_names}))})
    while (batch := read_frame(requests)) is not None:
        try:
            start, end = engines.run(batch)[:2]
        except Exception as exc:  # one bad batch is the caller's error, not the end of the engines
            write_frame(frames, {"error": np.array(f"{type(exc).__name__}: {exc}")})
            continue
        write_frame(frames, {"start_logits": np.asarray(start, dtype=np.float32), "end_logits": np.asarray(end, dtype=np.float32)})
    return 0


def synthetic(names: list[str], batch: int, seq: int) -> list[np.ndarray]:
    """QA-like inputs (workers.openvino_timing.synthetic_inputs): mid-vocabulary ids, full attention, two segments."""
    rng = np.random.default_rng(0)
    types = np.zeros((batch, seq), dtype=np.int64)
    types[:, seq // 2 :] = 1
    values = {"input_ids": rng.integers(*IDS, size=(batch, seq), dtype=np.int64), "attention_mask": np.ones((batch, seq), dtype=np.int64), "token_type_ids": types}
    unknown = [n for n in names if n not in values]
    if unknown:
        raise ValueError(f"unexpected model inputs {unknown}; expected some of {sorted(values)}")
    return [values[n] for n in names]


def run_until(step: Any, min_iterations: int, min_seconds: float) -> tuple[int, float]:
    calls, began = 0, time.perf_counter()
    while calls < min_iterations or time.perf_counter() - began < min_seconds:
        step()
        calls += 1
    return calls, time.perf_counter() - began


def measure(args: argparse.Namespace) -> int:
    engines = Engines(args.model, args.num_cores)
    latency = engines.get(args.latency_batch, args.seq_len)
    inputs = synthetic(engines.input_names, args.latency_batch, args.seq_len)
    for _ in range(args.warmup):
        latency.run(inputs)
    times: list[float] = []

    def timed() -> None:
        began = time.perf_counter()
        latency.run(inputs)
        times.append((time.perf_counter() - began) * 1000.0)

    run_until(timed, args.min_iterations, args.min_seconds)
    offline = engines.get(args.throughput_batch, args.seq_len)
    batch = synthetic(engines.input_names, args.throughput_batch, args.seq_len)
    for _ in range(args.warmup):
        offline.run(batch)
    calls, elapsed = run_until(lambda: offline.run(batch), args.min_iterations, args.min_seconds)
    p50, p90, p99 = (float(v) for v in np.percentile(times, [50, 90, 99]))
    result = {
        "seq_len": args.seq_len,
        "latency_batch": args.latency_batch,
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "latency_iterations": len(times),
        "throughput_batch": args.throughput_batch,
        "throughput_sps": args.throughput_batch * calls / max(elapsed, 1e-9),
        "throughput_iterations": calls,
        "num_cores": int(latency.num_cores),
        "num_streams": int(offline.num_streams),
        "scheduler": str(offline.scheduler),
        "fraction_of_supported_ops": float(latency.fraction_of_supported_ops),
        "cpu_avx_type": str(latency.cpu_avx_type),
        "cpu_vnni": bool(latency.cpu_vnni),
        "compile_s": engines.compile_s,
        "input_names": engines.input_names,
        "nice": niceness(),
        **versions(),
    }
    print(json.dumps(result), flush=True)
    return 0


def _thread_ids() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def normal_priority() -> None:
    """Renice this process's threads to 0 (Ray workers run at nice 15; workers.measurement_process does the
    same for OpenVINO); before DeepSparse starts the threads that inherit it. Lowering needs the right to."""
    for tid in _thread_ids():
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) > 0:
                os.setpriority(os.PRIO_PROCESS, tid, 0)
        except (PermissionError, ProcessLookupError):
            pass


def niceness() -> int:
    values = []
    for tid in _thread_ids():
        try:
            values.append(os.getpriority(os.PRIO_PROCESS, tid))
        except ProcessLookupError:
            pass
    return max(values) if values else os.getpriority(os.PRIO_PROCESS, 0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="deepsparse_child.py", description="DeepSparse engine for hwnas (run by the DeepSparse venv's python)")
    sub = p.add_subparsers(dest="mode", required=True)
    for mode in ("serve", "measure"):
        s = sub.add_parser(mode)
        s.add_argument("model", help="ONNX file")
        s.add_argument("--num-cores", type=int, default=None, help="DeepSparse cores (threads); default: all")
    m = sub.choices["measure"]
    m.add_argument("--seq-len", type=int, required=True)
    m.add_argument("--latency-batch", type=int, default=1)
    m.add_argument("--throughput-batch", type=int, default=16)
    m.add_argument("--min-iterations", type=int, default=50)
    m.add_argument("--min-seconds", type=float, default=2.0)
    m.add_argument("--warmup", type=int, default=5)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    normal_priority()
    args = parse_args(argv)
    return serve(args) if args.mode == "serve" else measure(args)


if __name__ == "__main__":
    sys.exit(main())
