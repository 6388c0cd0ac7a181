"""Which precision a deployment runs in on this CPU: INT8 with its other ops in f32 or bf16, FP32, BF16.

For the fine-tuned MiniLM teacher and a 3-layer subnet of it (layers 0, 2, 4; no distillation), each built
and measured as a search trial with the job spec's defaults (``workers.pipeline.run_trial``, 256-token
windows, the deployment sweep over buckets and dynamic shapes at Offline batch 1 and 16) in FP32 and in
INT8. The trial's sweep tries f32 and, where the CPU has bf16, bf16 for what is not INT8 (an FP32 IR: all of
it), keeping bf16 only if its F1 as deployed is within 0.5 of the trial's f32 F1: that is "the service's
choice" below. Each IR is then swept again in bf16 alone so that every bf16 row has its own F1 as deployed
(the service scores bf16 only where it wins). F1 on XQuAD-en (its first ``--max-eval`` questions).

Figures go to BENCHMARKS.md between ``<!-- bench:inference-precision -->`` markers, with the CPU::

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.inference_precision     # about 25 minutes on 2 zen4 cores
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.report import invocation, publish

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "data" / "squad"
SECTION = "inference-precision"
MODELS = {"teacher": ((0, 1, 2, 3, 4, 5), 12, 1536), "3-layer subnet": ((0, 2, 4), 12, 1536)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.inference_precision", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher-steps", type=int, default=300, help="as bench.deployment (its cached teacher is reused)")
    p.add_argument("--max-eval", type=int, default=600, help="XQuAD-en questions each F1 is measured on")
    p.add_argument("--seconds", type=float, default=2.0, help="measure.seconds of the trials (the sweep runs half of it per point)")
    p.add_argument("--out", type=Path, default=ROOT / "hwnas-data" / "bench" / "deployment")
    p.add_argument("--note", default="")
    p.add_argument("--no-write", action="store_true")
    return p.parse_args(argv)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def bf16_alone(xml: Path, precision: str, req: Any, reference: dict[str, Any], out: Path) -> dict[str, Any]:
    """The trial's IR swept with bf16 alone (every policy and batch in bf16), its choice scored as deployed."""
    from core.qa.length_policy import real_lengths
    from workers import datasets
    from workers.benchmark import measure_deployment
    from workers.deployment_timing import query_lengths

    feats = datasets.eval_features(req.eval_file, req.max_eval_examples, req.teacher_dir, req.max_seq_length, req.doc_stride)
    windows = out / f"windows-{req.max_seq_length}.pkl"
    windows.write_bytes(pickle.dumps((datasets.examples(req.eval_file, req.max_eval_examples), feats)))
    lengths = query_lengths(real_lengths(feats.attention_mask), int(req.deployment["query_samples"]), req.seed)
    scoring = {"windows": str(windows), "task": req.task, "threshold": None, "reference_f1": reference["f1"], "max_f1_drop": 100.0}
    return measure_deployment(xml, target="native", precision=precision, lengths=lengths.tolist(), max_length=req.max_seq_length,
                              policies=tuple(req.deployment["length_policies"]), batches=tuple(req.deployment["offline_batches"]),
                              objective="throughput", loadgen=False, rests=("bf16",), scoring=scoring,
                              min_iterations=max(5, req.measure_iterations // 2), min_seconds=req.measure_seconds / 2)  # fmt: skip


def run_model(name: str, teacher_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from core.types import SubnetConfig
    from nas.context import trial_request
    from nas.spec import JobSpec
    from targets import has_fast_bf16
    from workers.pipeline import run_trial

    train_file, eval_file = str(SQUAD / "squad-v1.1-train-head.json"), str(SQUAD / "xquad-en.json")
    spec = JobSpec.model_validate({
        "base_model": str(teacher_dir), "task": {"train_file": train_file, "eval_file": eval_file, "max_eval_examples": args.max_eval},
        "budget": {"trials": 1}, "objective": "throughput", "measure": {"iterations": 20, "seconds": args.seconds, "max_repeats": 2},
        "deployment": {"inference_precisions": ["f32", "bf16"]},  # bf16 is opt-in in a job
    })  # fmt: skip
    layers, heads, ffn = MODELS[name]
    subnet = SubnetConfig(layers=layers, heads=(heads,) * len(layers), ffn=(ffn,) * len(layers))
    out: dict[str, Any] = {}
    for precision in ("fp32", "int8"):
        d = args.out / f"precision-{name.replace(' ', '-')}-{precision}"
        req = trial_request(spec, job_id="bench-precision", number=0, subnet=subnet, out=d, teacher_dir=str(teacher_dir))
        began = time.perf_counter()
        result = run_trial(replace(req, output_dir=str(d)), precision=precision)
        m = result.measurements[0]
        dep = m.fingerprint["deployment"]
        log(f"{name} {precision}: F1 {result.f1:.2f}; deployed {dep['inference_precision']} {m.throughput_sps:.2f} samples/s "
            f"({time.perf_counter() - began:.0f} s); {dep['reason']}")  # fmt: skip
        entry: dict[str, Any] = {"f1": result.f1, "exact_match": result.exact_match, "questions": result.num_eval_questions,
                                 "chosen": {k: dep.get(k) for k in ("inference_precision", "f1_as_deployed", "rejected", "reason", "offline", "single_stream")},
                                 "throughput_sps": m.throughput_sps, "p90_ms": m.p90_ms, "figures_by": dep.get("figures_by"),
                                 "rows": dep["sweep"], "deployment_s": m.fingerprint.get("deployment_s"), "trial_s": round(time.perf_counter() - began, 1)}  # fmt: skip
        if has_fast_bf16():
            bf16 = bf16_alone(Path(d) / "openvino_model.xml", precision, req, result.reference_scores(), args.out)
            entry["bf16_alone"] = {k: bf16.get(k) for k in ("f1_as_deployed", "offline", "single_stream", "reason")}
            log(f"{name} {precision} bf16 alone: F1 as deployed {bf16['f1_as_deployed']['f1']:.2f}, {bf16['offline']['samples_per_second']:.2f} samples/s")
        out[precision] = entry
    return out


def _policy(p: dict[str, Any]) -> str:
    return {"fixed": f"fixed {p['max_length']}", "dynamic": "dynamic"}.get(p["name"]) or "buckets " + "/".join(map(str, p["buckets"]))


def _f32_best(entry: dict[str, Any]) -> dict[str, Any]:
    """The best Offline point among the trial's f32 rows (the service's f32 candidate), with its policy."""
    rows = [r for r in entry["rows"] if r.get("inference_precision", "f32") == "f32"]
    return max(({**o, "length_policy": r["policy"]} for r in rows for o in r["offline"]), key=lambda o: o["samples_per_second"])


def report(results: dict[str, Any], command: str) -> str:
    cpu = results["cpu"]
    flags = ", ".join(f for f in cpu.get("flags") or [] if f in ("avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")) or "none (AVX2 only)"
    lines = [
        f"Command: `{command}`",
        f"CPU: {cpu['model_name']} [{cpu['microarchitecture']}], {cpu['logical_cpus']} logical CPUs, INT8/BF16 flags: {flags}; {results['date']}."
        + (f" {results['note']}" if results.get("note") else ""),
        f"Trials as a default job builds them (256-token windows, stride 128; deployment sweep buckets + dynamic, Offline batch 1 and 16, "
        f"64 queries; measure {results['seconds']:g} s, up to 2 repeats); F1 on the first {results['max_eval']} XQuAD-en questions.",
        "",
        "| model | IR | runs as | F1 | F1 vs f32 | Offline samples/s (policy, batch) | vs FP32 f32 | SingleStream p90 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, model in results["models"].items():
        base = _f32_best(model["fp32"])["samples_per_second"]
        for precision, e in model.items():
            f32 = _f32_best(e)
            ss = min((r for r in e["rows"] if r.get("inference_precision", "f32") == "f32"), key=lambda r: r["single_stream"]["p90_ms"])
            lines.append(f"| {name} | {precision.upper()} | f32 | {e['f1']:.2f} | 0.00 | {f32['samples_per_second']:.2f} ({_policy(f32['length_policy'])}, {f32['batch']}) | "
                         f"{f32['samples_per_second'] / base:.2f}x | {ss['single_stream']['p90_ms']:.1f} |")  # fmt: skip
            b = e.get("bf16_alone")
            if b:
                off, f1 = b["offline"], b["f1_as_deployed"]["f1"]
                lines.append(f"| {name} | {precision.upper()} | bf16 | {f1:.2f} | {f1 - e['f1']:+.2f} | {off['samples_per_second']:.2f} "
                             f"({_policy(off['length_policy'])}, {off['batch']}) | {off['samples_per_second'] / base:.2f}x | {b['single_stream']['p90_ms']:.1f} |")  # fmt: skip
    lines += ["", "The service's choice per trial (its sweep: f32 over the policies, bf16 at the f32 choice, bf16 kept if within 0.5 F1):", ""]
    for name, model in results["models"].items():
        for precision, e in model.items():
            c = e["chosen"]
            lines.append(f"- {name}, {precision.upper()}: runs as **{c['inference_precision']}**, {e['throughput_sps']:.2f} samples/s "
                         f"({e['figures_by']}); {c['reason']}. Sweep {e['deployment_s']:.0f} s of a {e['trial_s']:.0f} s trial.")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.deployment import teacher
    from targets import detect_cpu

    args.out.mkdir(parents=True, exist_ok=True)
    teacher_dir = teacher(args, str(SQUAD / "squad-v1.1-train-head.json"))
    results: dict[str, Any] = {"cpu": detect_cpu(), "date": time.strftime("%Y-%m-%d"), "max_eval": args.max_eval, "seconds": args.seconds,
                               "note": args.note, "command": invocation(), "models": {}}  # fmt: skip
    for name in MODELS:
        results["models"][name] = run_model(name, teacher_dir, args)
        (args.out / "precision-results.json").write_text(json.dumps(results, indent=2, default=str))
    publish(SECTION, report(results, results["command"]), write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
