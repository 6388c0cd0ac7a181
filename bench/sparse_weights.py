"""Does OpenVINO's sparse-weight decompression pay on this CPU? A bert-base-shaped INT8 IR at several
unstructured sparsities, dense kernels vs ``sparse_weights_decompression_rate``, in one run.

A speed probe for issue 23 (random weights, magnitude-pruned per Linear: no F1 here). OpenVINO uses
sparse weights only on AMX CPUs, for static INT8 2-D weights; elsewhere both columns should match.
Measured in this process with the trials' timing loops (``workers.openvino_timing``), static shapes:
both compiles of an IR are timed in alternation, ``--repeats`` rounds, medians, so drift hits both
columns alike. Whether a layer really ran sparse is read from OpenVINO's own performance counters
(a FullyConnected whose ``exec_type`` names ``sparse``), not assumed from the CPU's flags.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.sparse_weights --output BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench import DATA
from bench.family_models import calibration_windows, family_config, family_tokenizer, qa_class
from bench.report import invocation, replace_section
from workers.openvino_timing import kernel_census, measure_latency, measure_throughput, synthetic_inputs

SECTION = "sparse-weights"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.5, 0.8, 0.9])
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch", type=int, default=4, help="Offline batch")
    p.add_argument("--seconds", type=float, default=4.0, help="per measurement (one mode, one round)")
    p.add_argument("--repeats", type=int, default=3, help="rounds of dense and sparse in alternation; medians")
    p.add_argument("--train-file", default=str(DATA / "squad-v1.1-train-head.json"))
    p.add_argument("--output")
    return p.parse_args(argv)


def prune_linears(model: Any, sparsity: float) -> None:
    """Zero the smallest-magnitude share of every encoder Linear's weights (layer-local magnitude pruning)."""
    import torch

    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and ".layer." in name and sparsity > 0:
                w = module.weight
                k = int(w.numel() * sparsity)
                threshold = w.abs().flatten().kthvalue(k).values
                w.mul_((w.abs() > threshold).to(w.dtype))


def f32_config(rate: float | None) -> dict[str, Any]:
    """f32 for what is not INT8, and sparse-weight decompression at ``rate`` (None: off)."""
    return {"INFERENCE_PRECISION_HINT": "f32", **({"CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE": rate} if rate is not None else {})}


def compile_modes(xml: Path, seq_len: int, batch: int, rate: float | None) -> dict[str, Any]:
    """The IR compiled for SingleStream (LATENCY, batch 1) and Offline (THROUGHPUT, ``batch``), with
    sparse-weight decompression at ``rate`` (None: off)."""
    import openvino as ov

    core, out = ov.Core(), {}
    for hint, b in (("LATENCY", 1), ("THROUGHPUT", batch)):
        model = core.read_model(str(xml))
        model.reshape({p.get_any_name(): [b, seq_len] for p in model.inputs})
        out[hint] = (core.compile_model(model, "CPU", {"PERFORMANCE_HINT": hint, **f32_config(rate)}), synthetic_inputs(model, b, seq_len))
    return out


def measure(compiled: dict[str, Any], batch: int, seconds: float) -> dict[str, float]:
    """One round: SingleStream p90 and Offline samples/s of both compiles."""
    args = argparse.Namespace(warmup=3, min_iterations=10, min_seconds=seconds, throughput_batch=batch)
    latency_model, latency_inputs = compiled["LATENCY"]
    throughput_model, throughput_inputs = compiled["THROUGHPUT"]
    return {"p90_ms": float(np.percentile(measure_latency(latency_model, latency_inputs, args), 90)),
            "sps": measure_throughput(throughput_model, throughput_inputs, args)[0]}  # fmt: skip


def summarize(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Medians over rounds, and the spread of Offline samples/s (max/min - 1)."""
    sps = [r["sps"] for r in rounds]
    return {"p90_ms": float(np.median([r["p90_ms"] for r in rounds])), "sps": float(np.median(sps)), "spread": max(sps) / min(sps) - 1}


def main(argv: list[str] | None = None) -> int:
    import openvino as ov
    import torch

    from targets import detect_cpu
    from workers.export import ir_size_bytes, save_ir, to_openvino
    from workers.quantize import quantize_int8

    args = parse_args(argv)
    tok = family_tokenizer("bert", args.train_file)
    calib = calibration_windows(tok, args.train_file, args.seq_len, 16)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for sparsity in args.sparsities:
            torch.manual_seed(0)
            model = qa_class("bert")(family_config("bert", tok, hidden=768, layers=args.layers, heads=12, ffn=3072)).eval()
            prune_linears(model, sparsity)
            int8 = quantize_int8(to_openvino(model, seq_len=args.seq_len), calib, subset_size=16)
            xml = save_ir(int8, Path(tmp) / f"s{sparsity}")
            size = ir_size_bytes(xml.parent) / 2**20
            rate = max(sparsity - 0.05, 0.0) if sparsity else None
            modes = {"dense": compile_modes(xml, args.seq_len, args.batch, None), "sparse": compile_modes(xml, args.seq_len, args.batch, rate)}
            rounds: dict[str, list[dict[str, float]]] = {"dense": [], "sparse": []}
            for r in range(args.repeats):  # alternate, starting with the other mode each round
                for mode in ("dense", "sparse") if r % 2 == 0 else ("sparse", "dense"):
                    rounds[mode].append(measure(modes[mode], args.batch, args.seconds))
            del modes
            census = kernel_census(ov.Core(), str(xml), args.seq_len, f32_config(rate))
            layers = (census["sparse"], census["fully_connected"], census["kernels"])
            rows.append((sparsity, size, summarize(rounds["dense"]), summarize(rounds["sparse"]), layers))
            print(rows[-1], flush=True)
    cpu = detect_cpu()
    lines = [
        "## Sparse INT8 weights on OpenVINO: dense kernels vs sparse-weight decompression", "",
        f"`{invocation()}`", "",
        f"CPU: {cpu['model_name']} ({cpu['microarchitecture']}; AMX: {'amx_int8' in cpu['flags']}), {cpu['logical_cpus']} logical CPUs. "
        f"bert-base shape ({args.layers} layers, 768 hidden, random weights), encoder Linears magnitude-pruned per layer, "
        f"NNCF INT8; seq {args.seq_len}, SingleStream batch 1, Offline batch {args.batch}, {args.seconds:g} s each, "
        f"in one process, {args.repeats} rounds of both columns in alternation, medians (spread: max/min - 1 of the Offline rounds); "
        "sparse column: `CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE` = sparsity - 0.05, f32 for what is not INT8. "
        "\"Sparse FC\": FullyConnected layers whose kernel (OpenVINO's performance counters, sparse column) names sparse. Speed only: no F1.", "",
        "| sparsity | IR MB | sparse FC | dense p90 ms | sparse p90 ms | dense samples/s (spread) | sparse samples/s (spread) | sparse/dense throughput | vs dense model |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    base = rows[0][2]["sps"]
    for sparsity, size, dense, sparse, (n_sparse, n_fc, kinds) in rows:
        lines.append(f"| {sparsity:g} | {size:.1f} | {n_sparse}/{n_fc} | {dense['p90_ms']:.2f} | {sparse['p90_ms']:.2f} | {dense['sps']:.1f} ({dense['spread']:.0%}) | "
                     f"{sparse['sps']:.1f} ({sparse['spread']:.0%}) | {sparse['sps'] / dense['sps']:.2f} | {sparse['sps'] / base:.2f} |")  # fmt: skip
    kinds = sorted({k for row in rows for k in row[4][2]})
    lines += ["", f"FullyConnected kernels seen: {', '.join(f'`{k}`' for k in kinds)}."]
    body = "\n".join(lines)
    print(body)
    if args.output:
        replace_section(Path(args.output), SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
