#!/usr/bin/env python
"""Teacher benchmark: MiniLM fine-tuned on the SQuAD train slice, scored FP32 and INT8 on XQuAD-en.

What it does, in order:

1. **Model selection on held-out TRAIN articles** (never on XQuAD): for every combination of
   ``--epochs`` x ``--lr`` x ``--batch-size`` it trains a teacher on the train file minus
   ``--validation-split`` of its articles and scores it on those articles (``heldout_f1``).
   Runs are cached (and checkpointed) under ``--out``: re-running skips finished ones and
   resumes an interrupted one.
2. **Final teacher**: with ``--refit`` the best settings are trained again on every train
   article; otherwise the best selection run is the final teacher. ``--reuse-teacher DIR``
   skips steps 1-2.
3. **XQuAD-en** at ``--eval-max-seq-length`` 384 / ``--eval-doc-stride`` 128: the OpenVINO
   FP32 model compiled with ``INFERENCE_PRECISION_HINT=f32``, and NNCF INT8 (calibrated on
   train-file windows) with SmoothQuant on and off, compiled the default way (as deployed);
   optionally ``--max-f1-drop`` adds accuracy-controlled INT8 validated on the held-out
   train articles. F1/EM, the drop, and evaluation throughput (questions/s: model calls
   plus answer extraction, batch ``--eval-batch-size``) for each.
4. Writes the figures, with the exact command, into BENCHMARKS.md (``--output``) between
   ``<!-- bench:teacher -->`` and ``<!-- /bench:teacher -->`` (only that section changes;
   the file is created if missing) and everything into ``--out``/results.json.

``--quick`` is a smoke test (a few questions of each of 4 train articles, 4 steps, short
windows, 20 XQuAD questions, seconds of compute besides NNCF); it prints the section and
writes BENCHMARKS.md only when ``--output`` is given.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.teacher --quick      # smoke test (about a minute)
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.teacher --lr 1e-4 2e-4 --epochs 3 --refit   # the full run (hours)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import DATA, ROOT
SECTION = "teacher"
REFERENCE = {"f1": 49.9, "exact_match": 35.8, "what": "MiniLM fine-tuned 2 epochs, batch 32, seq 256 on the train slice"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.teacher", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--train-file", default=str(DATA / "squad-v1.1-train-head.json"))
    p.add_argument("--eval-file", default=str(DATA / "xquad-en.json"))
    p.add_argument("--base", default="minilm", help="registered base model or a local Hugging Face directory")
    p.add_argument("--epochs", type=float, nargs="+", default=[3.0])
    p.add_argument("--lr", type=float, nargs="+", default=[1e-4])
    p.add_argument("--batch-size", type=int, nargs="+", default=[32])
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--max-seq-length", type=int, default=384, help="training windows")
    p.add_argument("--doc-stride", type=int, default=128, help="training window overlap")
    p.add_argument("--validation-split", type=float, default=0.2, help="fraction of train ARTICLES held out for selection")
    p.add_argument("--refit", action="store_true", help="train the chosen settings again on all train articles")
    p.add_argument("--reuse-teacher", type=Path, help="a finished teacher directory: skip training")
    p.add_argument("--eval-max-seq-length", type=int, default=384)
    p.add_argument("--eval-doc-stride", type=int, default=128)
    p.add_argument("--eval-batch-size", type=int, default=16)
    p.add_argument("--max-eval-examples", type=int)
    p.add_argument("--calibration-samples", type=int, default=300, help="train-file windows for NNCF statistics")
    p.add_argument("--max-f1-drop", type=float, help="also run accuracy-controlled INT8 with this F1 budget")
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "hwnas-data" / "bench" / "teacher")
    p.add_argument("--output", type=Path, help="markdown file to update (default: BENCHMARKS.md; none with --quick)")
    p.add_argument("--quick", action="store_true", help="smoke test on a tiny subset (seconds, plus NNCF)")
    args = p.parse_args(argv)
    if args.quick:
        args.lr = args.lr if len(args.lr) > 1 else [1e-4, 3e-4]  # two settings, to run the selection path
        args.epochs, args.batch_size = [1.0], [8]
        args.max_seq_length, args.doc_stride = 128, 32
        args.eval_max_seq_length, args.eval_doc_stride = 128, 32
        args.max_eval_examples = args.max_eval_examples or 20
        args.calibration_samples = min(args.calibration_samples, 8)
        args.validation_split, args.refit = 0.25, True
        args.out = args.out.with_name(args.out.name + "-quick")
    elif args.output is None:
        args.output = ROOT / "BENCHMARKS.md"
    grid = len(args.epochs) * len(args.lr) * len(args.batch_size)
    if grid > 1 and args.validation_split <= 0 and args.reuse_teacher is None:
        p.error("several settings need --validation-split > 0 to choose between them (never XQuAD)")
    return args


def quick_subset(train_file: str, directory: Path, *, articles: int = 4, per_article: int = 6) -> str:
    """A few questions of each of the first articles, written to a temporary file (not the project)."""
    doc = json.loads(Path(train_file).read_text(encoding="utf-8"))
    data = []
    for article in doc["data"][:articles]:
        left, paragraphs = per_article, []
        for paragraph in article["paragraphs"]:
            if left <= 0:
                break
            qas = paragraph["qas"][:left]
            left -= len(qas)
            paragraphs.append({**paragraph, "qas": qas})
        data.append({"title": article["title"], "paragraphs": paragraphs})
    path = directory / "train-subset.json"
    path.write_text(json.dumps({"version": doc.get("version", "1.1"), "data": data}), encoding="utf-8")
    return str(path)


def _tag(epochs: float, lr: float, batch: int, args: argparse.Namespace, split: float) -> str:
    return f"e{epochs:g}-lr{lr:g}-bs{batch}-L{args.max_seq_length}-S{args.doc_stride}-v{split:g}-s{args.seed}"


def train(base_dir: Path, out: Path, train_file: str, args: argparse.Namespace, epochs: float, lr: float, batch: int,
          split: float) -> dict[str, Any]:
    """One teacher (cached: a finished ``out`` is reused; an interrupted one resumes from its checkpoint)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from search_spaces.bert.training import TrainSettings
    from workers.teacher import train_teacher

    if (out / "metrics.json").is_file():
        print(f"  reusing {out}")
        return json.loads((out / "metrics.json").read_text())
    settings = TrainSettings(
        epochs=epochs, learning_rate=lr, batch_size=batch, warmup_ratio=args.warmup_ratio, seed=args.seed,
        max_steps=4 if args.quick else None,
    )
    columns = (TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns) as progress:
        task = progress.add_task(out.name, total=None)
        return train_teacher(
            base_dir, out, train_file=train_file, eval_file=None,
            max_seq_length=args.max_seq_length, doc_stride=args.doc_stride, settings=settings,
            validation_split=split, checkpoint_every=args.checkpoint_every,
            on_step=lambda s, t, l: progress.update(task, completed=s, total=t, description=f"{out.name} loss {l:.3f}"),
        )


def calibration_batches(train_file: str, tokenizer: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    import numpy as np

    from core.qa.features import prepare_train_features
    from core.qa.squad import load_squad

    feats = prepare_train_features(
        load_squad(train_file), tokenizer, max_seq_length=args.eval_max_seq_length, doc_stride=args.eval_doc_stride
    )
    take = np.random.default_rng(args.seed).choice(len(feats), size=min(args.calibration_samples, len(feats)), replace=False)
    return [{k: getattr(feats, k)[i : i + 1] for k in ("input_ids", "attention_mask", "token_type_ids")} for i in sorted(take)]


def evaluate(model: Any, examples: list[Any], features: Any, *, f32: bool, batch_size: int) -> dict[str, float]:
    """F1/EM and throughput of an OpenVINO model; one warm-up batch is not timed."""
    import openvino as ov

    from core.qa.features import iter_batches
    from workers.evaluate import evaluate_qa, openvino_runner

    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"} if f32 else {})
    run = openvino_runner(compiled)
    run(next(iter_batches(features, batch_size)))
    began = time.perf_counter()
    scores = evaluate_qa(run, examples, features, batch_size=batch_size)
    seconds = time.perf_counter() - began
    return {
        "f1": round(scores["f1"], 2),
        "exact_match": round(scores["exact_match"], 2),
        "questions": int(scores["count"]),
        "seconds": round(seconds, 2),
        "questions_per_s": round(scores["count"] / seconds, 2),
        "windows_per_s": round(len(features) / seconds, 2),
        "precision_hint": "f32" if f32 else _type_name(compiled.get_property("INFERENCE_PRECISION_HINT")),
    }


def _type_name(value: Any) -> str:
    return value.to_string() if hasattr(value, "to_string") else str(value)


def _fmt(value: Any, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def report(results: dict[str, Any], command: str) -> str:
    env, sel, final, ev = results["environment"], results["selection"], results["final"], results["xquad"]
    fp32 = ev["fp32"]
    lines = [
        "### Teacher: MiniLM fine-tuned on the SQuAD train slice, scored on XQuAD-en",
        "",
        f"Command (`{results['date']}`):",
        "",
        f"```\n{command}\n```",
        "",
        f"Machine: {env['cpu']}, {env['cores']} cores for this process, torch {env['torch']} "
        f"(training bf16 autocast: {env['bf16_training']}), OpenVINO {env['openvino']}, NNCF {env['nncf']}."
        + (" **Quick smoke run: tiny subset, figures meaningless.**" if results["quick"] else ""),
        "",
    ]
    if sel["runs"]:
        lines += [
            f"Model selection on {sel['heldout_articles']} held-out train article(s) ({sel['heldout_questions']} questions; "
            "XQuAD never used for choices):",
            "",
            "| epochs | lr | batch | train seq/stride | held-out F1 | held-out EM | steps | train time |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for run in sel["runs"]:
            mark = " **(chosen)**" if run["tag"] == sel["chosen"] else ""
            lines.append(
                f"| {run['epochs']:g} | {run['lr']:g} | {run['batch_size']} | {run['seq']}/{run['stride']} | "
                f"{run['heldout_f1']:.1f}{mark} | {run['heldout_exact_match']:.1f} | {run['steps']} | "
                f"{run['train_seconds'] / 60:.1f} min |"
            )
        lines.append("")
    lines += [
        f"Final teacher: {final['source']}; {_fmt(final.get('train_questions'), 'd')} training questions, "
        f"{_fmt(final.get('steps'), 'd')} steps, training wall time {_fmt((final.get('train_seconds') or 0) / 60)} min "
        f"on {env['cores']} cores ({final.get('device', '?')}).",
        "",
        f"XQuAD-en, {fp32['questions']} questions, windows {ev['max_seq_length']}/{ev['doc_stride']}, "
        f"batch {ev['batch_size']}, INT8 calibrated on {ev['calibration_windows']} train-file windows:",
        "",
        "| model | F1 | EM | F1 drop | questions/s | windows/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    names = {
        "fp32": "OpenVINO FP32 (f32 hint)",
        "int8_sq": "INT8, SmoothQuant on",
        "int8_nosq": "INT8, SmoothQuant off",
        "int8_ac": f"INT8, accuracy control (max drop {results['args'].get('max_f1_drop')})",
    }
    for key, name in names.items():
        if key in ev:
            r = ev[key]
            drop = "" if key == "fp32" else f"{fp32['f1'] - r['f1']:.2f}"
            lines.append(f"| {name} | {r['f1']:.1f} | {r['exact_match']:.1f} | {drop} | {r['questions_per_s']:.1f} | {r['windows_per_s']:.1f} |")
    better = ev["lower_drop"]
    verdict = "neither (same F1)" if better == "tie" else f"**SmoothQuant {better}**"
    lines += [
        "",
        f"INT8 non-quantized operations run in {ev['int8_sq']['precision_hint']} (default compile, as deployed). "
        f"Lower INT8 drop: {verdict} ({ev['drops']['sq']:.2f} on vs {ev['drops']['nosq']:.2f} off). "
        f"INT8 speed-up over FP32: {ev['int8_sq']['questions_per_s'] / fp32['questions_per_s']:.2f}x (SmoothQuant on).",
        f"Reference: {REFERENCE['what']} -> F1 {REFERENCE['f1']} / EM {REFERENCE['exact_match']}; this FP32 teacher: "
        f"{fp32['f1'] - REFERENCE['f1']:+.1f} F1, {fp32['exact_match'] - REFERENCE['exact_match']:+.1f} EM.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import nncf
    import openvino as ov
    import torch
    from transformers import AutoModelForQuestionAnswering

    from search_spaces.base_models import resolve_base_model
    from core.qa.features import prepare_eval_features
    from core.qa.squad import load_squad, split_by_article
    from workers import datasets
    from workers.evaluate import f1_validation
    from workers.export import save_ir, to_openvino
    from workers.quantize import AccuracyValidation, quantize_int8
    from targets import has_fast_bf16

    command = "HF_HUB_OFFLINE=1 " + shlex.join([".venv/bin/python", "-m", "bench.teacher", *(argv if argv is not None else sys.argv[1:])])
    started = time.perf_counter()
    if args.quick:  # a smoke test always runs everything
        shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory(prefix="bench-teacher-")
    train_file = quick_subset(args.train_file, Path(tmp.name)) if args.quick else args.train_file
    base_dir = resolve_base_model(args.base)
    train_examples = load_squad(train_file)

    # 1-2. selection on held-out train articles, then the final teacher
    selection: dict[str, Any] = {"runs": [], "chosen": None}
    if args.reuse_teacher is not None:
        final_dir = args.reuse_teacher
        final = json.loads((final_dir / "metrics.json").read_text()) if (final_dir / "metrics.json").is_file() else {}
        final["source"] = f"reused from {final_dir}"
    else:
        for epochs, lr, batch in itertools.product(args.epochs, args.lr, args.batch_size):
            tag = _tag(epochs, lr, batch, args, args.validation_split)
            print(f"[selection] {tag}")
            m = train(base_dir, args.out / "runs" / tag, train_file, args, epochs, lr, batch, args.validation_split)
            selection["runs"].append({
                "tag": tag, "epochs": epochs, "lr": lr, "batch_size": batch, "seq": args.max_seq_length,
                "stride": args.doc_stride, "heldout_f1": m.get("heldout_f1", float("nan")),
                "heldout_exact_match": m.get("heldout_exact_match", float("nan")), "steps": m["steps"],
                "train_seconds": m["train_seconds"],
            })
            selection.update(heldout_articles=m.get("heldout_articles"), heldout_questions=m.get("heldout_questions"))
        if args.validation_split > 0:
            best = max(selection["runs"], key=lambda r: r["heldout_f1"])
        else:
            best, selection["runs"] = selection["runs"][0], []
        selection["chosen"] = best["tag"]
        final_dir = args.out / "runs" / best["tag"]
        if args.refit and args.validation_split > 0:
            tag = _tag(best["epochs"], best["lr"], best["batch_size"], args, 0.0)
            print(f"[refit on all train articles] {tag}")
            final_dir = args.out / "runs" / tag
            final = train(base_dir, final_dir, train_file, args, best["epochs"], best["lr"], best["batch_size"], 0.0)
            final["source"] = f"chosen settings ({best['tag']}) refitted on all train articles"
        else:
            final = json.loads((final_dir / "metrics.json").read_text())
            final["source"] = (
                f"the chosen run ({best['tag']}), trained without its {args.validation_split:g} held-out articles"
                if args.validation_split > 0 else f"{best['tag']}, trained on all train articles"
            )

    # 3. XQuAD-en: OpenVINO FP32 (f32 hint) and INT8 with SmoothQuant on/off (+ accuracy control)
    print("[xquad] converting and evaluating")
    tok = datasets.tokenizer(final_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(final_dir).eval()
    fp32_xml = save_ir(to_openvino(model, seq_len=min(128, args.eval_max_seq_length)), args.out / "ir-fp32")
    eval_examples = load_squad(args.eval_file, limit=args.max_eval_examples)
    eval_feats = prepare_eval_features(
        eval_examples, tok, max_seq_length=args.eval_max_seq_length, doc_stride=args.eval_doc_stride
    )
    calibration = calibration_batches(train_file, tok, args)
    core = ov.Core()
    xquad: dict[str, Any] = {
        "max_seq_length": args.eval_max_seq_length, "doc_stride": args.eval_doc_stride,
        "batch_size": args.eval_batch_size, "calibration_windows": len(calibration),
    }
    xquad["fp32"] = evaluate(core.read_model(fp32_xml), eval_examples, eval_feats, f32=True, batch_size=args.eval_batch_size)
    print(f"  fp32 {xquad['fp32']}")
    timings: dict[str, float] = {}
    for key, smooth in (("int8_sq", True), ("int8_nosq", False)):
        began = time.perf_counter()
        q = quantize_int8(core.read_model(fp32_xml), calibration, subset_size=len(calibration), smooth_quant=smooth)
        timings[key] = round(time.perf_counter() - began, 1)
        save_ir(q, args.out / f"ir-{key}")
        xquad[key] = evaluate(q, eval_examples, eval_feats, f32=False, batch_size=args.eval_batch_size)
        xquad[key]["quantize_seconds"] = timings[key]
        print(f"  {key} {xquad[key]}")
    if args.max_f1_drop is not None:
        held = split_by_article(train_examples, args.validation_split or 0.2, seed=args.seed)[1][:200]
        held_feats = prepare_eval_features(held, tok, max_seq_length=args.eval_max_seq_length, doc_stride=args.eval_doc_stride)
        items, fn = f1_validation(held, held_feats)
        smooth = xquad["fp32"]["f1"] - xquad["int8_sq"]["f1"] <= xquad["fp32"]["f1"] - xquad["int8_nosq"]["f1"]
        began = time.perf_counter()
        q = quantize_int8(
            core.read_model(fp32_xml), calibration, subset_size=len(calibration), smooth_quant=smooth,
            max_f1_drop=args.max_f1_drop, validation=AccuracyValidation(items, fn),
        )
        xquad["int8_ac"] = evaluate(q, eval_examples, eval_feats, f32=False, batch_size=args.eval_batch_size)
        xquad["int8_ac"].update(quantize_seconds=round(time.perf_counter() - began, 1), smooth_quant=smooth,
                                validation_questions=len(held))
        print(f"  int8_ac {xquad['int8_ac']}")
    drops = {"sq": xquad["fp32"]["f1"] - xquad["int8_sq"]["f1"], "nosq": xquad["fp32"]["f1"] - xquad["int8_nosq"]["f1"]}
    xquad["drops"] = {k: round(v, 2) for k, v in drops.items()}
    xquad["lower_drop"] = "tie" if abs(drops["sq"] - drops["nosq"]) < 0.005 else ("on" if drops["sq"] < drops["nosq"] else "off")

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "quick": args.quick,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "environment": {
            "cpu": cpu, "cores": len(os.sched_getaffinity(0)), "torch": torch.__version__, "openvino": ov.__version__,
            "nncf": nncf.__version__, "bf16_training": has_fast_bf16() and not torch.cuda.is_available(),
        },
        "selection": selection,
        "final": {k: final.get(k) for k in ("source", "train_questions", "steps", "train_seconds", "wall_seconds", "device",
                                             "heldout_f1", "settings")},
        "xquad": xquad,
        "bench_seconds": round(time.perf_counter() - started, 1),
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    body = report(results, command)
    print("\n" + body)
    if args.output is not None:
        from bench.report import replace_section

        replace_section(args.output, SECTION, body)
        print(f"\nwrote {args.output}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
