"""The QA fine-tuning/distillation loop learns on a toy task and keeps its schedule."""

from __future__ import annotations

import numpy as np
import torch
import transformers

from nas.data.features import TrainFeatures
from search_spaces.bert.training import TrainSettings, teacher_logits, total_steps, train_qa


def _features(n: int = 64, seq: int = 16) -> TrainFeatures:
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 100, size=(n, seq))
    start = rng.integers(1, seq - 2, size=n)
    ids[np.arange(n), start] = 3  # the answer starts at the marker token: learnable
    return TrainFeatures(
        input_ids=ids.astype(np.int64),
        attention_mask=np.ones((n, seq), np.int64),
        token_type_ids=np.zeros((n, seq), np.int64),
        start_positions=start.astype(np.int64),
        end_positions=(start + 1).astype(np.int64),
    )


def _model() -> transformers.BertForQuestionAnswering:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=32)
    return transformers.BertForQuestionAnswering(cfg)


def test_total_steps_respects_epochs_and_cap() -> None:
    assert total_steps(64, TrainSettings(epochs=2, batch_size=16)) == 8
    assert total_steps(64, TrainSettings(epochs=2, batch_size=16, max_steps=3)) == 3
    assert total_steps(64, TrainSettings(epochs=1, batch_size=16, max_steps=10)) == 10


def test_loss_falls_and_distillation_runs() -> None:
    feats = _features()
    model = _model()
    losses: list[float] = []
    stats = train_qa(model, feats, TrainSettings(epochs=15, batch_size=16, learning_rate=3e-3), on_step=lambda s, t, l: losses.append(l))
    assert stats.steps == 60 and not model.training
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    student = _model()
    soft = teacher_logits(model, feats)
    assert soft[0].shape == feats.input_ids.shape
    kd = train_qa(student, feats, TrainSettings(max_steps=5, batch_size=16, bf16=True), soft_targets=soft)
    assert kd.steps == 5 and np.isfinite(kd.final_loss)
