"""How well the supernet ranks subnets: 8 fixed subnets, supernet-sliced F1 against standalone-distilled F1.

The standalone side needs no supernet (``--stage standalone``) and is cached apart from the
supernet side, so either can be re-run alone; ``rank_stage`` puts the two together with Kendall tau.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.supernet_stages import settings_from_args, space_from_args

# 8 subnets spread over bench.supernet.DEFAULT_SPACE (depth, width, uniform and per-layer), fixed before any run.
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
    space, settings = space_from_args(args, teacher_dir), settings_from_args(args)
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
    space = space_from_args(args, teacher_dir)
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
