"""Fine-tune a base encoder into an extractive-QA teacher and save it as a Hugging Face directory."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

from search_spaces.bert.training import TrainSettings, train_qa
from workers import datasets
from workers.evaluate import evaluate_qa, torch_runner
from workers.targets import has_fast_bf16


def train_teacher(
    base_dir: str | Path,
    out_dir: str | Path,
    *,
    train_file: str,
    eval_file: str,
    max_seq_length: int,
    doc_stride: int,
    settings: TrainSettings,
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Train, evaluate (PyTorch FP32) and write ``out_dir`` atomically: a half-written teacher is never cached."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    torch.manual_seed(settings.seed)
    out_dir = Path(out_dir)
    started = time.perf_counter()
    tok = datasets.tokenizer(base_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(base_dir)
    feats = datasets.train_features(train_file, max_train_examples, base_dir, max_seq_length, doc_stride)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and has_fast_bf16():
        settings = replace(settings, bf16=True)
    stats = train_qa(model, feats, settings, device=device, on_step=on_step)
    model.to("cpu")
    examples = datasets.examples(eval_file, max_eval_examples)
    eval_feats = datasets.eval_features(eval_file, max_eval_examples, base_dir, max_seq_length, doc_stride)
    scores = evaluate_qa(torch_runner(model), examples, eval_feats, batch_size=32)
    metrics = {
        "f1": scores["f1"],
        "exact_match": scores["exact_match"],
        "eval_questions": scores["count"],
        "train_features": len(feats),
        "steps": stats.steps,
        "final_loss": stats.final_loss,
        "train_seconds": stats.seconds,
        "wall_seconds": time.perf_counter() - started,
        "device": device,
        "settings": asdict(settings),
        "max_seq_length": max_seq_length,
        "doc_stride": doc_stride,
        "train_file": str(train_file),
        "eval_file": str(eval_file),
    }
    tmp = out_dir.with_name(out_dir.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return metrics
