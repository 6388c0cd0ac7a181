"""The measurement child's command line (``python -m workers.benchmark``): its arguments and output.

``measure_ir`` starts this in a fresh interpreter with ``--profile ... --json`` and reads the last
JSON line; a person runs it by hand and reads the table. ``main`` renices the process and sets
the ISA cap before anything imports OpenVINO.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from core.types import Measurement
from workers.measurement_process import apply_isa_cap, normal_priority
from workers.openvino_timing import PRECISIONS, run_benchmark, target_from_args

DESCRIPTION = "SingleStream latency and Offline throughput of an OpenVINO IR, one subprocess per measurement."


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
    p = argparse.ArgumentParser(prog="python -m workers.benchmark", description=DESCRIPTION)
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
    p.add_argument("--kernel-census", action="store_true",
                   help="after the clocks, record which kernels ran the FullyConnected layers (sparse-weight targets only)")
    p.add_argument(
        "--deployment",
        help="JSON: run the deployment sweep (workers.deployment_timing) instead; lengths, max_length, policies, batches, objective, loadgen",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    normal_priority()  # first: OpenVINO's threads inherit the niceness of the thread that starts them
    args = parse_args(argv)
    apply_isa_cap(target_from_args(args))
    if args.deployment:
        from workers.deployment_child import run_deployment

        print(json.dumps(run_deployment(args)), flush=True)
        return 0
    m = run_benchmark(args)
    print(json.dumps(m.to_dict()) if args.json else format_table(m), flush=True)
    return 0
