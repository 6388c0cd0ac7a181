"""Does OpenVINO's sparse-weight decompression pay on this CPU? A bert-base-shaped INT8 IR at several
unstructured sparsities, dense kernels vs ``sparse_weights_decompression_rate``, in one run.

A speed probe for issue 23 (random weights, magnitude-pruned per Linear: no F1 here). OpenVINO uses
sparse weights only on AMX CPUs, for static INT8 2-D weights; elsewhere both columns should match.
Measured in this process with the trials' timing loops (``workers.openvino_timing``), static shapes.

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

SECTION = "sparse-weights"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.5, 0.8, 0.9])
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch", type=int, default=4, help="Offline batch")
    p.add_argument("--seconds", type=float, default=4.0)
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


def measure(xml: Path, seq_len: int, batch: int, seconds: float, rate: float | None) -> dict[str, float]:
    import openvino as ov

    from workers.openvino_timing import measure_latency, measure_throughput, synthetic_inputs

    args = argparse.Namespace(warmup=3, min_iterations=10, min_seconds=seconds, throughput_batch=batch)
    core = ov.Core()
    out: dict[str, float] = {}
    for hint, b in (("LATENCY", 1), ("THROUGHPUT", batch)):
        model = core.read_model(str(xml))
        model.reshape({p.get_any_name(): [b, seq_len] for p in model.inputs})
        config: dict[str, Any] = {"PERFORMANCE_HINT": hint}
        if rate is not None:
            config["CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE"] = rate
        compiled = core.compile_model(model, "CPU", config)
        inputs = synthetic_inputs(model, b, seq_len)
        if hint == "LATENCY":
            out["p90_ms"] = float(np.percentile(measure_latency(compiled, inputs, args), 90))
        else:
            out["sps"] = measure_throughput(compiled, inputs, args)[0]
    return out


def main(argv: list[str] | None = None) -> int:
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
            dense = measure(xml, args.seq_len, args.batch, args.seconds, None)
            sparse = measure(xml, args.seq_len, args.batch, args.seconds, max(sparsity - 0.05, 0.0) if sparsity else None)
            rows.append((sparsity, size, dense, sparse))
            print(rows[-1], flush=True)
    cpu = detect_cpu()
    lines = [
        "## Sparse INT8 weights on OpenVINO: dense kernels vs sparse-weight decompression", "",
        f"`{invocation()}`", "",
        f"CPU: {cpu['model_name']} ({cpu['microarchitecture']}; AMX: {'amx_int8' in cpu['flags']}), {cpu['logical_cpus']} logical CPUs. "
        f"bert-base shape ({args.layers} layers, 768 hidden, random weights), encoder Linears magnitude-pruned per layer, "
        f"NNCF INT8; seq {args.seq_len}, SingleStream batch 1, Offline batch {args.batch}, {args.seconds:g} s each, "
        "in one process (no repeats); sparse column: `CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE` = sparsity - 0.05. Speed only: no F1.", "",
        "| sparsity | IR MB | dense p90 ms | sparse p90 ms | dense samples/s | sparse samples/s | sparse/dense throughput | vs dense model |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    base = rows[0][2]["sps"]
    for sparsity, size, dense, sparse in rows:
        lines.append(f"| {sparsity:g} | {size:.1f} | {dense['p90_ms']:.2f} | {sparse['p90_ms']:.2f} | {dense['sps']:.1f} | "
                     f"{sparse['sps']:.1f} | {sparse['sps'] / dense['sps']:.2f} | {sparse['sps'] / base:.2f} |")  # fmt: skip
    body = "\n".join(lines)
    print(body)
    if args.output:
        replace_section(Path(args.output), SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
