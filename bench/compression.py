"""Compression beyond slicing: QAT against PTQ, and gradual pruning at several sparsities, on one host.

Every model is built by the service's own compression steps (``workers.compression``: slice, the pipeline's
distillation from the FP32 teacher, ``prune``, ``qat_int8``, ``ptq_int8``), exported and scored on XQuAD-en
as a trial is (``workers.pipeline.evaluate_ir``: the IR as deployed), and timed by the trials' harness
(``workers.benchmark.measure_ir``: a fresh process per repeat, fixed ``--seq`` padding, SingleStream batch 1
and Offline batch 16). Nothing is chosen on XQuAD-en; the training data is the SQuAD train slice.

1. **Teacher**: all-MiniLM-L6-v2 fine-tuned as in ``bench.deployment`` (cached, shared with it).
2. **PTQ vs QAT**: each subnet is sliced and distilled ``--distil-steps``; from that one state, (a) ``--qat-steps``
   more plain distillation, then its FP32 IR and NNCF PTQ INT8; (b) ``--qat-steps`` of QAT instead. Both INT8
   models had the same training steps, so the difference is quantization-awareness, not more training. Share of
   PTQ's F1 drop recovered = (QAT - PTQ) / (FP32 - PTQ).
3. **Sparsity**: the teacher and a subnet (its distilled state) pruned to each ``--sparsities`` while distilled
   ``--prune-steps`` (sparsity 0: the same steps of plain distillation), then PTQ INT8: F1, weight zeros, IR
   and zip size, OpenVINO speed; DeepSparse's where it is installed (``make deepsparse-venv``).
4. **Precision on this CPU**: the teacher and a subnet as FP32, the FP32 IR at OpenVINO's default hint (bf16
   where the CPU has it) and INT8, and what the service's rule (``nas.deployment.choose_precision``) takes.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.compression           # about an hour on 2 cores
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.compression --quick   # smoke test, not written
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.report import invocation, publish

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "data" / "squad"
SECTION = "compression"
SUBNETS = {"L6": (6, 12, 1536), "L4": (4, 12, 1536), "L3": (3, 12, 1536), "L2": (2, 12, 1536)}  # layers spread over the 6, heads, FFN


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.compression", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher-steps", type=int, default=300)
    p.add_argument("--distil-steps", type=int, default=150, help="plain distillation of each subnet before it branches")
    p.add_argument("--qat-steps", type=int, default=60)
    p.add_argument("--qat-lr", type=float, default=5e-5, help="the job spec's default (quantization.qat_learning_rate)")
    p.add_argument("--prune-steps", type=int, default=80)
    p.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.5, 0.8, 0.9])
    p.add_argument("--qat-subnets", nargs="+", default=["L4", "L3"], choices=sorted(SUBNETS))
    p.add_argument("--sparse-subnet", default="L3", choices=sorted(SUBNETS))
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--max-eval", type=int, default=600, help="XQuAD-en questions scored (of 1,190)")
    p.add_argument("--seconds", type=float, default=3.0, help="per timed scenario and repeat")
    p.add_argument("--quiet-load", type=float, default=0.6, help="wait for this 1-min load average before timing")
    p.add_argument("--quick", action="store_true", help="a few steps, 40 questions, short timings; not written")
    p.add_argument("--out", type=Path, default=ROOT / "hwnas-data" / "bench" / "compression")
    p.add_argument("--teacher-cache", type=Path, default=ROOT / "hwnas-data" / "bench" / "deployment")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    args.train_file = str(SQUAD / "squad-v1.1-train-head.json")
    if args.quick:
        args.teacher_steps, args.distil_steps, args.qat_steps, args.prune_steps = 4, 4, 3, 6
        args.max_eval, args.seconds, args.no_write, args.qat_subnets, args.quiet_load = 40, 0.3, True, ["L2"], 99.0
        args.sparsities, args.sparse_subnet = [0.0, 0.8], "L2"
        args.out = args.out.with_name("compression-quick")
        from bench.teacher import quick_subset

        args.out.mkdir(parents=True, exist_ok=True)
        args.train_file = quick_subset(args.train_file, args.out, articles=6, per_article=8)
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Builder:
    """The service's steps on one request template, with the teacher loaded once."""

    def __init__(self, teacher_dir: Path, args: argparse.Namespace) -> None:
        from transformers import AutoModelForQuestionAnswering

        from core.types import TrialRequest
        from search_spaces import family_for
        from search_spaces.base_models import read_config
        from search_spaces.bert.space import kept_layers
        from workers.compression import StepContext
        from workers.pipeline import _distil, trial_calibration, trial_validation

        self.args, self.teacher_dir = args, teacher_dir
        self.teacher = AutoModelForQuestionAnswering.from_pretrained(teacher_dir).eval()
        self.family = family_for(read_config(teacher_dir))
        self.kept_layers = kept_layers
        self.req = TrialRequest(
            job_id="bench-compression", trial_number=0, subnet=self.subnet("L2"), teacher_dir=str(teacher_dir),
            train_file=args.train_file, eval_file=str(SQUAD / "xquad-en.json"),
            max_seq_length=args.seq, doc_stride=128, max_eval_examples=args.max_eval, calibration_samples=64,
            targets=("native",), output_dir=str(args.out / "unused"), seed=0, finetune_lr=1e-4,
        )  # fmt: skip
        self.context = StepContext(family=self.family, calibration=trial_calibration, validation=trial_validation, teacher=self.teacher)
        self.context.distil = lambda model, request, **kw: _distil(model, self.teacher, request, **kw)

    def subnet(self, name: str, sparsity: float = 0.0) -> Any:
        from core.types import SubnetConfig

        layers, heads, ffn = SUBNETS[name]
        kept = self.kept_layers(6, layers)
        return SubnetConfig(kept, (heads,) * layers, (ffn,) * layers, sparsity=sparsity)

    def request(self, **kw: Any) -> Any:
        return replace(self.req, **kw)

    def sliced(self, name: str) -> Any:
        return self.family.extract_subnet(self.teacher, self.subnet(name))

    def distil(self, model: Any, steps: int) -> float:
        began = time.perf_counter()
        if steps:
            self.context.distil(model, self.req, steps=steps, learning_rate=1e-4)
        return time.perf_counter() - began

    def step(self, name: str, model: Any, req: Any) -> tuple[Any, float]:
        from workers.compression import get_step

        began = time.perf_counter()
        out = get_step(name).apply(model, request=req, context=self.context)
        return out, time.perf_counter() - began

    def export(self, model: Any, tag: str, *, ptq: bool) -> dict[str, Any]:
        """The model's IR (PTQ INT8 on the OpenVINO side when ``ptq``; a QAT model is INT8 already), scored as
        a trial's; FP32 when neither."""
        from workers import datasets
        from workers.compression import get_step
        from workers.compression.nncf_torch import has_quantizers, strip_for_export
        from workers.export import ir_size_bytes, save_ir, to_openvino, weight_sparsity
        from workers.pipeline import evaluate_ir

        out = self.args.out / tag
        began = time.perf_counter()
        quantized = has_quantizers(model)
        ov_model = to_openvino(strip_for_export(model), seq_len=128, tokenizer=datasets.tokenizer(self.teacher_dir))
        if ptq:
            ov_model = get_step("ptq_int8").apply(ov_model, request=self.req, context=self.context)
        xml = save_ir(ov_model, out)
        precision = "int8" if (ptq or quantized) else "fp32"
        scores = evaluate_ir(xml, replace(self.req, output_dir=str(out)), precision=precision)
        row = {
            "tag": tag, "xml": str(xml), "precision": precision, "f1": scores["f1"], "exact_match": scores["exact_match"],
            "weight_sparsity": round(weight_sparsity(ov_model), 4), "ir_bytes": ir_size_bytes(out), "zip_bytes": zip_size(out),
            "export_s": round(time.perf_counter() - began, 1),
        }  # fmt: skip
        log(f"{tag}: {precision} F1 {row['f1']:.2f}, zeros {row['weight_sparsity']:.3f}, IR {row['ir_bytes'] / 1e6:.1f} MB, zip {row['zip_bytes'] / 1e6:.1f} MB")
        return row


def zip_size(ir_dir: Path) -> int:
    """Bytes of the IR files deflated as the service's download zips them (the zeros compress)."""
    path = ir_dir / "ir.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in ("openvino_model.xml", "openvino_model.bin"):
            z.write(ir_dir / name, name)
    size = path.stat().st_size
    path.unlink()
    return size


def teacher_dir(args: argparse.Namespace) -> Path:
    from bench.deployment import teacher

    return teacher(argparse.Namespace(teacher_steps=args.teacher_steps, out=args.teacher_cache), str(SQUAD / "squad-v1.1-train-head.json"))


def ptq_vs_qat(b: Builder, name: str, subnet: Any, *, distil_steps: int, qat_steps: int, qat_lr: float) -> dict[str, Any]:
    """One subnet sliced and distilled ``distil_steps``; from that state, ``qat_steps`` more plain distillation then
    FP32 and PTQ INT8, or ``qat_steps`` of QAT: the same training, so the difference is quantization-awareness."""
    from core.types import CompressionPlan

    log(f"{name}: slice, distil {distil_steps} steps")
    start = b.family.extract_subnet(b.teacher, subnet)
    distil_s = b.distil(start, distil_steps)
    plain = copy.deepcopy(start)
    more_s = b.distil(plain, qat_steps)
    fp32, ptq = b.export(plain, f"{name}-fp32", ptq=False), b.export(plain, f"{name}-ptq", ptq=True)
    qmodel, qat_s = b.step("qat_int8", copy.deepcopy(start), b.request(subnet=subnet, compression=CompressionPlan(qat_steps=qat_steps, qat_lr=qat_lr)))
    qat = b.export(qmodel, f"{name}-qat", ptq=False)
    drop = fp32["f1"] - ptq["f1"]
    log(f"{name}: FP32 {fp32['f1']:.2f}, PTQ {ptq['f1']:.2f}, QAT {qat['f1']:.2f}; QAT {qat_s:.0f} s vs {more_s:.0f} s plain")
    return {"subnet": name, "fp32": fp32, "ptq": ptq, "qat": qat, "distil_s": round(distil_s, 1), "plain_steps_s": round(more_s, 1),
            "qat_s": round(qat_s, 1), "recovered": (qat["f1"] - ptq["f1"]) / drop if drop > 0 else None}  # fmt: skip


def qat_rows(b: Builder, args: argparse.Namespace) -> list[dict[str, Any]]:
    return [ptq_vs_qat(b, name, b.subnet(name), distil_steps=args.distil_steps, qat_steps=args.qat_steps, qat_lr=args.qat_lr) for name in args.qat_subnets]


def sparsity_rows(b: Builder, args: argparse.Namespace) -> list[dict[str, Any]]:
    from core.types import CompressionPlan

    rows = []
    starts = {"teacher": copy.deepcopy(b.teacher)}
    sub = b.sliced(args.sparse_subnet)
    b.distil(sub, args.distil_steps)
    starts[args.sparse_subnet] = sub
    for model_name, start in starts.items():
        for sparsity in args.sparsities:
            model = copy.deepcopy(start)
            tag = f"{model_name}-s{sparsity:g}"
            if sparsity:
                subnet = b.subnet(args.sparse_subnet if model_name != "teacher" else "L6", sparsity)
                req = b.request(subnet=subnet, compression=CompressionPlan(prune_steps=args.prune_steps))
                model, seconds = b.step("prune", model, req)
            else:
                seconds = b.distil(model, args.prune_steps)
            row = {"model": model_name, "sparsity": sparsity, "train_s": round(seconds, 1), **b.export(model, tag, ptq=True)}
            row["deepsparse"] = deepsparse_row(b, model, tag, args)
            rows.append(row)
    return rows


def deepsparse_row(b: Builder, model: Any, tag: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """The same pruned model as a torch-side NNCF INT8 ONNX (QDQ) on DeepSparse, where it is installed."""
    from workers.runtimes import RUNTIMES, get_runtime

    if "deepsparse" not in RUNTIMES:
        return None
    runtime = get_runtime("deepsparse")
    why = runtime.unavailable()
    if why:
        return {"unavailable": why}
    from core.types import CompressionPlan
    from workers.compression.nncf_torch import strip_for_export
    from workers.export_onnx import save_onnx

    out = args.out / tag / "deepsparse"
    req = b.request(compression=CompressionPlan(qat_steps=0))
    quantized, _ = b.step("qat_int8", copy.deepcopy(model), req)  # calibrated fake quantizers, no training: torch-side PTQ
    onnx = save_onnx(strip_for_export(quantized), out, seq_len=args.seq)
    return {"onnx": str(onnx)}


def time_all(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Every IR (and ONNX) timed at the end, on a quiet host, by the trials' harness."""
    from bench.refine import wait_for_quiet
    from workers.benchmark import measure_ir

    load = wait_for_quiet(args.quiet_load, 600, log)
    results["load_when_timed"] = load
    rows = [r for q in results["qat"] for r in (q["fp32"], q["ptq"], q["qat"])] + results["sparsity"] + results["precision_rows"]
    for row in rows:
        m = measure_ir(row["xml"], target="native", precision=row.get("run_as", row["precision"]), seq_len=args.seq, throughput_batch=16,
                       min_iterations=20, min_seconds=args.seconds, max_repeats=3)  # fmt: skip
        row["speed"] = {"p50_ms": m.p50_ms, "p90_ms": m.p90_ms, "throughput_sps": m.throughput_sps,
                        "inference_precision": m.fingerprint.get("inference_precision"), "repeats": m.fingerprint.get("repeats")}  # fmt: skip
        log(f"{row['tag']}: {m.throughput_sps:.1f} samples/s, p90 {m.p90_ms:.1f} ms ({row['speed']['inference_precision']})")
    for row in results["sparsity"]:
        ds = row.get("deepsparse")
        if ds and "onnx" in ds:
            from workers.runtimes import get_runtime

            m = get_runtime("deepsparse").measure(ds["onnx"], target="native", precision="int8", seq_len=args.seq, throughput_batch=16,
                                                  min_iterations=20, min_seconds=args.seconds, max_repeats=1)  # fmt: skip
            ds.update(p90_ms=m.p90_ms, throughput_sps=m.throughput_sps, label=m.fingerprint.get("runtime_label"))
            log(f"{row['tag']} on DeepSparse: {m.throughput_sps:.1f} samples/s, p90 {m.p90_ms:.1f} ms")


def precision_rows(b: Builder, results: dict[str, Any]) -> list[dict[str, Any]]:
    """FP32 (f32), the FP32 IR at the default hint (bf16 where the CPU has it) and INT8 of the teacher and the
    QAT bench's first subnet: the dense sparsity-0 teacher IR and the subnet's FP32/PTQ IRs, timed again."""
    rows = []
    teacher_int8 = next(r for r in results["sparsity"] if r["model"] == "teacher" and r["sparsity"] == 0)
    teacher_fp32 = b.export(copy.deepcopy(b.teacher), "teacher-fp32", ptq=False)
    sub = results["qat"][0]
    for model, fp32, int8 in (("teacher", teacher_fp32, teacher_int8), (sub["subnet"], sub["fp32"], sub["ptq"])):
        rows.append({**fp32, "tag": f"{model}-fp32-f32", "model": model, "run_as": "fp32"})
        rows.append({**fp32, "tag": f"{model}-fp32-default", "model": model, "run_as": "int8"})  # no f32 hint: bf16 on bf16 CPUs
        rows.append({**int8, "tag": f"{model}-int8", "model": model, "run_as": "int8"})
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from targets import detect_cpu

    began = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    b = Builder(teacher_dir(args), args)
    results: dict[str, Any] = {"cpu": detect_cpu(), "date": time.strftime("%Y-%m-%d %H:%M"), "args": {k: str(v) for k, v in vars(args).items()}}
    results["qat"] = qat_rows(b, args)
    results["sparsity"] = sparsity_rows(b, args)
    results["precision_rows"] = precision_rows(b, results)
    time_all(results, args)
    results["minutes"] = round((time.time() - began) / 60, 1)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    from bench.compression_report import report

    publish(SECTION, report(results, invocation()), write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
