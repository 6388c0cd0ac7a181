"""The BENCHMARKS.md section of ``bench.compression``: tables from its results.json, and what they say."""

from __future__ import annotations

from typing import Any


def _f(value: Any, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


def cpu_line(cpu: dict[str, Any]) -> str:
    flags = set(cpu.get("flags", []))
    isa = ", ".join(f for f in ("avx2", "avx512_vnni", "avx512_bf16", "amx_int8") if f in flags)
    return f"{cpu.get('model_name', '?')} ({cpu.get('microarchitecture', '?')}; {isa}), {cpu.get('logical_cpus', '?')} logical CPUs"


def precision_choice(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``nas.deployment.choose_precision`` takes from each model's FP32 and INT8 Offline figures."""
    from core.types import Measurement
    from nas.deployment import choose_precision

    out = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        by = {r["tag"].removeprefix(f"{model}-"): r for r in rows if r["model"] == model}
        measured = {
            p: [Measurement(target="native", precision=p, seq_len=0, latency_batch=1, p50_ms=r["speed"]["p50_ms"], p90_ms=r["speed"]["p90_ms"],
                            p99_ms=r["speed"]["p90_ms"], latency_iterations=0, throughput_batch=16, throughput_sps=r["speed"]["throughput_sps"])]
            for p, r in (("fp32", by["fp32-f32"]), ("int8", by["int8"]))
        }  # fmt: skip
        out[model] = choose_precision("auto", "throughput", measured, ["native"])
    return out


def qat_cells(q: dict[str, Any]) -> str:
    """FP32, PTQ and QAT F1, PTQ's drop and the share of it QAT recovers (``bench.compression.ptq_vs_qat``'s row)."""
    rec = "–" if q["recovered"] is None else f"{100 * q['recovered']:.0f}%"
    return f"{q['fp32']['f1']:.2f} | {q['ptq']['f1']:.2f} | {q['qat']['f1']:.2f} | {q['fp32']['f1'] - q['ptq']['f1']:+.2f} | {rec}"


def report(results: dict[str, Any], command: str) -> str:
    a = results["args"]
    lines = [  # the markers are replace_section's
        "## Compression beyond slicing: QAT against PTQ, gradual pruning, precision per CPU",
        "",
        f"Command: `{command}` ({results['date']}, {results['minutes']} min). CPU: {cpu_line(results['cpu'])}. "
        f"Timed at the end at a 1-min load average of {results.get('load_when_timed', float('nan')):.2f}, by the trials' harness "
        f"(`measure_ir`: fresh process per repeat, up to 3 repeats, fixed {a['seq']}-token padding, SingleStream batch 1, Offline batch 16).",
        "",
        f"Teacher: all-MiniLM-L6-v2 fine-tuned {a['teacher_steps']} steps (bench.deployment's). F1 on the first {a['max_eval']} "
        f"XQuAD-en questions at {a['seq']}-token windows (stride 128), of each IR as deployed; nothing is chosen on XQuAD-en. "
        "Every model is built by the service's own steps (slice, distillation from the FP32 teacher on the SQuAD train slice, "
        "`prune`, `qat_int8`, `ptq_int8`).",
        "",
        f"### PTQ vs QAT (each subnet distilled {a['distil_steps']} steps, then {a['qat_steps']} more: plain before PTQ, or QAT)",
        "",
        "| subnet | FP32 F1 | PTQ INT8 F1 | QAT INT8 F1 | PTQ drop | share of the drop QAT recovers | QAT s / plain s (same steps) |",
        "|---|---|---|---|---|---|---|",
    ]
    for q in results["qat"]:
        lines.append(f"| {q['subnet']} | {qat_cells(q)} | {q['qat_s']:.0f} / {q['plain_steps_s']:.0f} |")
    lines += [
        "",
        f"### Sparsity (each model pruned while distilled {a['prune_steps']} steps, cubic ramp to 70% then held; sparsity 0: the same steps of plain distillation), then PTQ INT8",
        "",
        "| model | sparsity | zeros in IR MatMul weights | INT8 F1 | IR MB | zip MB | OpenVINO Offline samples/s | vs dense | OpenVINO SingleStream p90 ms | DeepSparse Offline samples/s / p90 ms | pruning s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    dense = {r["model"]: r for r in results["sparsity"] if r["sparsity"] == 0}
    for r in results["sparsity"]:
        base = dense.get(r["model"])
        ratio = r["speed"]["throughput_sps"] / base["speed"]["throughput_sps"] if base else None
        ds = r.get("deepsparse") or {}
        ds_text = f"{ds['throughput_sps']:.1f} / {ds['p90_ms']:.1f}" if "throughput_sps" in ds else ("not installed" if "unavailable" in ds else "–")
        lines.append(f"| {r['model']} | {r['sparsity']:g} | {100 * r['weight_sparsity']:.1f}% | {r['f1']:.2f} | {_mb(r['ir_bytes'])} | {_mb(r['zip_bytes'])} | "
                     f"{r['speed']['throughput_sps']:.1f} | {_f(ratio)}x | {r['speed']['p90_ms']:.1f} | {ds_text} | {r['train_s']:.0f} |")  # fmt: skip
    labels = {ds.get("label") for r in results["sparsity"] if (ds := r.get("deepsparse")) and ds.get("label")}
    if labels:
        lines += ["", f"DeepSparse figures: {', '.join(sorted(labels))}; fed the same pruned model as a torch-side NNCF INT8 ONNX (quantized MatMuls as MatMulInteger: DeepSparse runs plain QDQ MatMuls in FP32)."]
    choice = precision_choice(results["precision_rows"])
    lines += [
        "",
        "### Precision on this CPU (Offline samples/s; p90 ms)",
        "",
        "| model | FP32 (f32 hint) | FP32 IR, default hint (ran as) | INT8 (PTQ) | F1 FP32 / INT8 | the service's choice (precision: auto) |",
        "|---|---|---|---|---|---|",
    ]
    for model, c in choice.items():
        by = {r["tag"].removeprefix(f"{model}-"): r for r in results["precision_rows"] if r["model"] == model}
        cell = lambda r: f"{r['speed']['throughput_sps']:.1f}; {r['speed']['p90_ms']:.1f}"  # noqa: E731
        lines.append(f"| {model} | {cell(by['fp32-f32'])} | {cell(by['fp32-default'])} ({by['fp32-default']['speed']['inference_precision']}) | "
                     f"{cell(by['int8'])} | {by['fp32-f32']['f1']:.2f} / {by['int8']['f1']:.2f} | {c['precision'].upper()}: {c['reason']} |")  # fmt: skip
    lines += ["", *reading(results)]
    return "\n".join(lines)


def reading(results: dict[str, Any]) -> list[str]:
    """Sentences computed from the figures (the interpretation is written beside them by hand)."""
    out = []
    recovered = [q["recovered"] for q in results["qat"] if q["recovered"] is not None]
    if recovered:
        out.append(f"- QAT recovers {', '.join(f'{100 * r:.0f}%' for r in recovered)} of PTQ's F1 drop (goal: at least half).")
    for model in dict.fromkeys(r["model"] for r in results["sparsity"]):
        rows = {r["sparsity"]: r for r in results["sparsity"] if r["model"] == model}
        if 0 in rows and max(rows) > 0:
            top = rows[max(rows)]
            out.append(f"- {model} at sparsity {max(rows):g}: {top['speed']['throughput_sps'] / rows[0]['speed']['throughput_sps']:.2f}x the dense INT8 "
                       f"throughput on OpenVINO, F1 {top['f1'] - rows[0]['f1']:+.2f}, zip {top['zip_bytes'] / rows[0]['zip_bytes']:.2f}x the dense one.")  # fmt: skip
    return out
