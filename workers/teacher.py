"""Fine-tune a base encoder into an extractive-QA teacher and save it as a Hugging Face directory.

Training checkpoints go to ``<out>.partial/checkpoint`` every ``checkpoint_every`` steps; a
later call with the same arguments resumes from the last one. The finished teacher is
written to ``<out>.partial`` and renamed to ``<out>``, so a half-written teacher is never
found (and cached) under ``<out>``.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

from core.qa.features import prepare_eval_features, prepare_train_features
from core.qa.sources import resolve_data_file
from core.qa.squad import split_by_article
from search_spaces.bert.training import TrainSettings, train_qa
from workers import datasets
from workers.evaluate import evaluate_qa, torch_runner
from targets import has_fast_bf16

CHECKPOINT_SUBDIR = "checkpoint"


def partial_dir(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + ".partial")


def train_teacher(
    base_dir: str | Path,
    out_dir: str | Path,
    *,
    train_file: str,
    eval_file: str | None,
    max_seq_length: int,
    doc_stride: int,
    settings: TrainSettings,
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
    validation_split: float = 0.0,
    checkpoint_every: int | None = 200,
    on_step: Callable[[int, int, float], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
    task: str = "squad-v1.1",
) -> dict[str, Any]:
    """Train, evaluate (PyTorch FP32) and write ``out_dir`` atomically; return its metrics.

    ``validation_split`` > 0 holds out that fraction of the training file's *articles*
    (never single questions: their contexts would leak into training); the model trains on
    the rest and ``heldout_f1`` / ``heldout_exact_match`` score it on the held-out articles.
    Choose hyper-parameters on those, never on the evaluation file. ``max_train_examples``
    limits the questions read from the train file, before the split. ``checkpoint_every``
    None disables checkpoints. Named data sets (``squad``) are resolved as in job specs.
    ``eval_file`` None skips the evaluation-file scores (``f1``/``exact_match`` are then absent).

    ``task`` ``squad-v2.0`` (unanswerable questions): the teacher always holds out train articles
    (``validation_split``, else ``workers.null_threshold.TEACHER_HOLDOUT``), chooses its null-score threshold
    on them (the best F1 there) and scores the eval file at that threshold; ``heldout_titles`` (also read
    by trials, which choose their own threshold on the same articles), ``threshold`` and the v2.0 figures
    (HasAns/NoAns) are in the metrics.
    """
    import torch
    from transformers import AutoModelForQuestionAnswering

    def stage(text: str) -> None:
        if on_stage is not None:
            on_stage(text)

    from core.qa.tasks import get_task

    null_answers = get_task(task).null_answers  # an unknown task fails before any training
    if null_answers and validation_split <= 0:
        from workers.null_threshold import TEACHER_HOLDOUT

        validation_split = TEACHER_HOLDOUT
    torch.manual_seed(settings.seed)
    out_dir = Path(out_dir)
    tmp = partial_dir(out_dir)
    started = time.perf_counter()
    train_path = resolve_data_file(train_file, role="train")
    eval_path = resolve_data_file(eval_file, role="eval") if eval_file is not None else None
    tok = datasets.tokenizer(base_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(base_dir)
    stage("tokenising")
    heldout: list[Any] = []
    if validation_split > 0:
        kept, heldout = split_by_article(
            datasets.examples(train_path, max_train_examples), validation_split, seed=settings.seed
        )
        feats = prepare_train_features(kept, tok, max_seq_length=max_seq_length, doc_stride=doc_stride)
        train_questions = len(kept)
    else:
        feats = datasets.train_features(train_path, max_train_examples, base_dir, max_seq_length, doc_stride)
        train_questions = len(datasets.examples(train_path, max_train_examples))
    # Every data set is tokenised before training, so bad data fails here, not after hours of it.
    held_feats = (
        prepare_eval_features(heldout, tok, max_seq_length=max_seq_length, doc_stride=doc_stride) if heldout else None
    )
    if eval_path is not None:
        examples = datasets.examples(eval_path, max_eval_examples)
        eval_feats = datasets.eval_features(eval_path, max_eval_examples, base_dir, max_seq_length, doc_stride)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and has_fast_bf16():
        settings = replace(settings, bf16=True)
    stage("fine-tuning")
    stats = train_qa(
        model,
        feats,
        settings,
        device=device,
        on_step=on_step,
        checkpoint_dir=tmp / CHECKPOINT_SUBDIR if checkpoint_every else None,
        checkpoint_every=checkpoint_every,
    )
    model.to("cpu")
    metrics: dict[str, Any] = {}
    threshold: float | None = None
    if held_feats is not None:
        stage("evaluating on the held-out train articles")
        # SQuAD v2.0: at the null threshold that maximises F1 on these held-out questions, kept for the eval file
        held = evaluate_qa(torch_runner(model), heldout, held_feats, batch_size=32, task=task)
        metrics.update(
            heldout_f1=held["f1"],
            heldout_exact_match=held["exact_match"],
            heldout_questions=held["count"],
            heldout_articles=len({e.title for e in heldout}),
        )
        if null_answers:
            threshold = held["threshold"]
            metrics["heldout_titles"] = sorted({e.title for e in heldout})
    scores: dict[str, Any] = {}
    if eval_path is not None:
        stage("evaluating on the evaluation file")
        done = evaluate_qa(torch_runner(model), examples, eval_feats, batch_size=32, task=task, null_threshold=threshold)
        scores = {"f1": done["f1"], "exact_match": done["exact_match"], "eval_questions": done["count"]}
        if null_answers:
            scores.update({k: v for k, v in done.items() if k not in ("f1", "exact_match", "count")})
            scores["threshold_chosen_on"] = "train articles the teacher was not trained on"
    metrics = {
        **scores,
        **metrics,
        "validation_split": validation_split,
        "train_questions": train_questions,
        "train_features": len(feats),
        "steps": stats.steps,
        "resumed_from_step": stats.resumed_from_step,
        "final_loss": stats.final_loss,
        "train_seconds": stats.seconds,
        "wall_seconds": time.perf_counter() - started,
        "device": device,
        "settings": asdict(settings),
        "max_seq_length": max_seq_length,
        "doc_stride": doc_stride,
        "train_file": str(train_file),
        "eval_file": None if eval_file is None else str(eval_file),
    }
    stage("saving")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
    shutil.rmtree(tmp / CHECKPOINT_SUBDIR, ignore_errors=True)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return metrics
