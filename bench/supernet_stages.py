"""The stages of ``bench.supernet`` that train and score models: teacher, supernet, held-out F1, XQuAD.

Each stage caches its result under ``--out`` so a re-run skips it; the supernet trains in a child
process so its peak RSS is its own. ``bench.supernet`` runs them in order and writes the report
(``bench.supernet_report``); the ranking of subnets is ``bench.supernet_ranking``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any


def space_from_args(args: argparse.Namespace, teacher_dir: Path) -> Any:
    """The ``--space`` spec as a search space (the teacher's family's) over the teacher's configuration."""
    from search_spaces.base_models import read_config
    from search_spaces import space_for

    return space_for(args.space, read_config(teacher_dir))


def settings_from_args(args: argparse.Namespace) -> Any:
    """The ``SupernetSettings`` the command line asks for (the supernet cache key depends on them)."""
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
    from search_spaces import space_for
    from workers.supernet import SupernetSettings, train_supernet

    last = [0.0]

    def on_step(step: int, total: int, loss: float) -> None:
        if time.perf_counter() - last[0] > 30 or step == total:
            last[0] = time.perf_counter()
            print(f"  supernet step {step}/{total} loss {loss:.3f}", flush=True)

    space = space_for(space_spec, read_config(Path(teacher_dir)))
    return train_supernet(teacher_dir, out_dir, train_file=train_file, space=space, settings=SupernetSettings(**settings),
                          on_step=on_step, on_stage=lambda s: print(f"  [{s}]", flush=True))


def supernet_stage(args: argparse.Namespace, teacher_dir: Path, train_file: str) -> tuple[Path, dict[str, Any]]:
    import multiprocessing

    from workers.supernet import SUPERNET_FILE, supernet_key

    space, settings = space_from_args(args, teacher_dir), settings_from_args(args)
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

    space, settings = space_from_args(args, teacher_dir), settings_from_args(args)
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

    space = space_from_args(args, teacher_dir)
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
    space = space_from_args(args, teacher_dir)
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
