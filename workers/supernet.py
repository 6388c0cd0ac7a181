"""Train a weight-sharing supernet from a QA teacher.

Interface for the coordinator (all pure functions of their arguments; they write only under
the directories they are given and never touch the database):

- ``supernet_key(teacher_dir, train_file, space, settings)``: the cache key of a supernet
  (the teacher's weights, the data file's bytes, the space and the settings); a supernet
  trained under ``<data dir>/supernets/<key>`` can be reused by every job with the same key.
- ``train_supernet(teacher_dir, out_dir, train_file=..., space=..., settings=...) -> metrics``:
  importance reordering, then sandwich training with in-place distillation from the teacher's
  logits. Checkpoints go to ``<out>.partial/checkpoint``; a second call resumes from the last
  one; the finished supernet is renamed to ``out_dir`` (a full-size ``BertForQuestionAnswering``
  directory plus ``supernet.json``), so a half-trained supernet is never found under it.
- A trial slices the supernet when its ``TrialRequest.supernet_dir`` is set (``build_candidate``).
- Refining a chosen subnet standalone is ``workers.refine``; what it and calibration may read of the
  train file is ``workers.training_articles``.
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from search_spaces.training_settings import SUPERNET_FILE, SupernetSettings, supernet_key  # noqa: F401 (this module's interface)

CHECKPOINT_SUBDIR = "checkpoint"


def partial_dir(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + ".partial")


def load_supernet_space(supernet_dir: str | Path) -> Any:
    """The space a supernet was trained over (to check that a job's space narrows it), built by the
    family of the supernet's ``model_type`` over the base dimensions recorded in ``supernet.json``."""
    from types import SimpleNamespace

    from search_spaces import space_for

    info = json.loads((Path(supernet_dir) / SUPERNET_FILE).read_text())
    model_type = json.loads((Path(supernet_dir) / "config.json").read_text()).get("model_type")
    base = info["space"]["base"]
    cfg = SimpleNamespace(model_type=model_type, num_hidden_layers=base["layers"], num_attention_heads=base["heads"],
                          intermediate_size=base["ffn"], hidden_size=base["hidden"], attention_head_size=base["head_size"])
    return space_for(info["space"], cfg)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_supernet(
    teacher_dir: str | Path,
    out_dir: str | Path,
    *,
    train_file: str,
    space: Any,
    settings: SupernetSettings = SupernetSettings(),
    checkpoint_every: int | None = 25,
    on_step: Callable[[int, int, float], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Importance-reorder a copy of the teacher, train it as a supernet over ``space``, save it atomically.

    ``space`` is the teacher's family's ``JobSpace``. Returns (and writes into ``supernet.json``) the
    metrics: steps, wall/train seconds, peak RSS, and with ``validation_split`` > 0 the held-out F1 of
    the largest and smallest subnets and of the teacher on the same held-out articles.
    """
    import numpy as np
    import torch
    from transformers import AutoModelForQuestionAnswering

    from core.qa.features import prepare_eval_features, prepare_train_features
    from core.qa.squad import split_by_article
    from search_spaces import family_for
    from search_spaces.bert.training import Sandwich, teacher_logits, train_qa
    from workers import datasets
    from workers.evaluate import evaluate_qa, torch_runner
    from targets import has_fast_bf16

    def stage(text: str) -> None:
        if on_stage is not None:
            on_stage(text)

    started = time.perf_counter()
    teacher_dir, out_dir = Path(teacher_dir), Path(out_dir)
    tmp = partial_dir(out_dir)
    torch.manual_seed(settings.seed)
    tok = datasets.tokenizer(teacher_dir)
    stage("tokenising")
    examples = datasets.examples(train_file, settings.max_train_examples)
    heldout: list[Any] = []
    if settings.validation_split > 0:
        examples, heldout = split_by_article(examples, settings.validation_split, seed=settings.seed)
    seq, stride = settings.max_seq_length, settings.doc_stride
    feats = prepare_train_features(examples, tok, max_seq_length=seq, doc_stride=stride)
    teacher = AutoModelForQuestionAnswering.from_pretrained(teacher_dir).eval()
    family = family_for(teacher.config)
    space.check_base(teacher.config)
    stage("teacher logits")
    t0 = time.perf_counter()
    soft = teacher_logits(teacher, feats)
    logits_seconds = time.perf_counter() - t0
    stage("importance reordering")
    supernet = AutoModelForQuestionAnswering.from_pretrained(teacher_dir)
    rng = np.random.default_rng(settings.seed)
    take = rng.permutation(len(feats))[: settings.importance_batches * settings.batch_size]
    keys = ("input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions")
    batches = [
        {k: getattr(feats, k)[take[i : i + settings.batch_size]] for k in keys}
        for i in range(0, len(take), settings.batch_size)
    ]
    t0 = time.perf_counter()
    orders = family.reorder_by_importance(supernet, batches)
    importance_seconds = time.perf_counter() - t0
    bf16 = has_fast_bf16() and not torch.cuda.is_available()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sandwich = Sandwich(space, settings.random_subnets)
    stage("supernet training")
    stats = train_qa(
        supernet,
        feats,
        settings.train_settings(bf16=bf16),
        soft_targets=soft,
        device=device,
        on_step=on_step,
        checkpoint_dir=tmp / CHECKPOINT_SUBDIR if checkpoint_every else None,
        checkpoint_every=checkpoint_every,
        sandwich=sandwich,
    )
    supernet.to("cpu").eval()
    peak_rss = _peak_rss_mib()
    metrics: dict[str, Any] = {
        "steps": stats.steps,
        "resumed_from_step": stats.resumed_from_step,
        "final_loss": stats.final_loss,
        "train_seconds": round(stats.seconds, 1),
        "teacher_logits_seconds": round(logits_seconds, 1),
        "importance_seconds": round(importance_seconds, 1),
        "train_features": len(feats),
        "train_questions": len(examples),
        "peak_rss_mib": round(peak_rss, 1),
        "bf16": bf16,
        "device": device,
        "torch_threads": torch.get_num_threads(),
    }
    if heldout:
        stage("evaluating on the held-out train articles")
        held_feats = prepare_eval_features(heldout, tok, max_seq_length=seq, doc_stride=stride)
        for name, model in (
            ("teacher", teacher),
            ("largest", family.sliced(supernet, space.largest())),
            ("smallest", family.sliced(supernet, space.smallest())),
        ):
            # SQuAD v2.0 data (unanswerable questions): the official best_f1 on these held-out questions
            task = "squad-v2.0" if any(e.is_impossible for e in heldout) else "squad-v1.1"
            scores = evaluate_qa(torch_runner(model), heldout, held_feats, batch_size=32, task=task)
            metrics[f"heldout_f1_{name}"] = scores["f1"]
            metrics[f"heldout_em_{name}"] = scores["exact_match"]
        metrics["heldout_questions"] = len(heldout)
        metrics["heldout_articles"] = len({e.title for e in heldout})
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    stage("saving")
    tmp.mkdir(parents=True, exist_ok=True)
    supernet.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    info = {
        "space": space.to_dict(),
        "settings": asdict(settings),
        "teacher_dir": str(teacher_dir),
        "train_file": str(train_file),
        "largest": space.largest().to_dict(),
        "smallest": space.smallest().to_dict(),
        "importance_order": orders,
        "metrics": metrics,
    }
    (tmp / SUPERNET_FILE).write_text(json.dumps(info, indent=2))
    shutil.rmtree(tmp / CHECKPOINT_SUBDIR, ignore_errors=True)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return metrics
