#!/usr/bin/env python
"""Model families at real shapes: each family's teacher-sized encoder (random weights, a tokenizer trained on
the SQuAD slice) exported to OpenVINO, NNCF INT8, and measured FP32 vs INT8 with the trials' own harness.

Only MiniLM is packaged, so the other families' real-size models are built from their configs with
random weights: speed depends on the shapes (layers, hidden, heads, FFN, sequence length), not on the
weights, and the vocabulary is the locally trained one (2,000 pieces; a real checkpoint's larger
embedding table changes the IR's size, not its compute). F1 at these sizes would mean nothing with
random weights; the INT8 method check (``bench.family_int8``) is done on tiny models trained here
instead: the section's second table.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.families                  # every family, writes BENCHMARKS.md
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.families --families roberta distilbert --seq-len 128 --no-output
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import DATA, ROOT, family_int8
from bench.family_models import FAMILIES, calibration_windows, family_config, family_tokenizer, qa_class
from bench.report import invocation, replace_section

SECTION = "families"
# (layers, hidden, heads, FFN) of the public checkpoint each family's row stands for
SHAPES: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "bert": ("bert-base", (12, 768, 12, 3072)),
    "roberta": ("roberta-base", (12, 768, 12, 3072)),
    "xlm-roberta": ("xlm-roberta-base", (12, 768, 12, 3072)),
    "distilbert": ("distilbert-base", (6, 768, 12, 3072)),
    "electra": ("electra-base", (12, 768, 12, 3072)),
    "deberta-v2": ("deberta-v3-small", (6, 768, 12, 3072)),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.families", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    p.add_argument("--train-file", default=str(DATA / "squad-v1.1-train-head.json"))
    p.add_argument("--eval-file", default=str(DATA / "xquad-en.json"), help="scores the INT8 method check only")
    p.add_argument("--no-accuracy", action="store_true", help="speed only: skip the INT8 method check on tiny trained models")
    family_int8.add_arguments(p)
    p.add_argument("--seq-len", type=int, default=128, help="measured (and calibrated) window length")
    p.add_argument("--calibration", type=int, default=32, help="NNCF calibration windows")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    p.add_argument("--no-output", action="store_true", help="print the section only")
    return p.parse_args(argv)


def one_family(family: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch

    from core.model_inputs import model_input_names
    from workers.benchmark import measure_ir
    from workers.export import ir_size_bytes, save_ir, to_openvino
    from workers.quantize import quantize_int8

    name, (layers, hidden, heads, ffn) = SHAPES[family]
    began = time.perf_counter()
    tok = family_tokenizer(family, args.train_file)
    cfg = family_config(family, tok, hidden=hidden, layers=layers, heads=heads, ffn=ffn)
    torch.manual_seed(0)
    model = qa_class(family)(cfg).eval()
    params = sum(p.numel() for p in model.parameters())
    inputs = model_input_names(model, tok)
    ov_model = to_openvino(model, seq_len=args.seq_len)
    fp32_xml = save_ir(ov_model, work / family / "fp32")
    t = time.perf_counter()
    int8 = quantize_int8(ov_model, calibration_windows(tok, args.train_file, args.seq_len, args.calibration), subset_size=args.calibration)
    quant_s = time.perf_counter() - t
    int8_xml = save_ir(int8, work / family / "int8")
    row: dict[str, Any] = {"family": family, "shape": name, "layers": layers, "hidden": hidden, "heads": heads, "ffn": ffn,
                           "parameters": params, "inputs": list(inputs), "quantize_s": round(quant_s, 1)}  # fmt: skip
    for precision, xml in (("fp32", fp32_xml), ("int8", int8_xml)):
        m = measure_ir(xml, precision=precision, seq_len=args.seq_len, min_iterations=args.iterations,
                       min_seconds=args.seconds, max_repeats=args.repeats, min_repeats=min(2, args.repeats))  # fmt: skip
        row[precision] = {"p50_ms": m.p50_ms, "p90_ms": m.p90_ms, "throughput_sps": m.throughput_sps,
                          "spread_pct": m.fingerprint.get("spread_pct"), "ir_mb": round(ir_size_bytes(xml.parent) / 2**20, 1)}  # fmt: skip
    row["cpu"] = m.fingerprint.get("cpu_model_name")
    row["microarchitecture"] = m.fingerprint.get("microarchitecture")
    row["seconds"] = round(time.perf_counter() - began, 1)
    return row


def section(rows: list[dict[str, Any]], acc: list[dict[str, Any]], args: argparse.Namespace) -> str:
    cpu = rows[0].get("cpu") if rows else "?"
    lines = [
        "## Model families at real shapes: FP32 vs INT8 teacher speed",
        "",
        f"`{invocation()}`",
        "",
        f"CPU: {cpu} ({rows[0].get('microarchitecture') if rows else '?'}), 2 cores; sequence length {args.seq_len}; "
        f"random weights at each checkpoint's shape, NNCF INT8 (mixed preset, SmoothQuant) calibrated on {args.calibration} real "
        "SQuAD windows; measured with the trials' harness (`workers.benchmark.measure_ir`, medians of repeats). "
        "Ratios are INT8 over FP32 in the same run.",
        "",
        "| family | shape (L/H/heads/FFN) | inputs | FP32 p90 ms | INT8 p90 ms | p90 INT8/FP32 | FP32 samples/s | INT8 samples/s | throughput INT8/FP32 | IR MB FP32 / INT8 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f, i = r["fp32"], r["int8"]
        lines.append(
            f"| {r['family']} | {r['shape']} ({r['layers']}/{r['hidden']}/{r['heads']}/{r['ffn']}) | {', '.join(r['inputs'])} | "
            f"{f['p90_ms']:.2f} | {i['p90_ms']:.2f} | {i['p90_ms'] / f['p90_ms']:.2f} | {f['throughput_sps']:.1f} | "
            f"{i['throughput_sps']:.1f} | {i['throughput_sps'] / f['throughput_sps']:.2f} | {f['ir_mb']} / {i['ir_mb']} |"
        )
    if acc:
        lines += ["", *family_int8.table(acc, args.check_seq_len)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hwnas-families-") as tmp:
        for family in args.families:
            rows.append(one_family(family, args, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
        acc = [] if args.no_accuracy else family_int8.run_checks(args.families, args, Path(tmp))
    body = section(rows, acc, args)
    print(body)
    if not args.no_output:
        replace_section(Path(args.output), SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
