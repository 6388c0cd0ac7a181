"""The QA fine-tuning/distillation loop learns on a toy task and keeps its schedule."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from core.qa.features import TrainFeatures
from search_spaces.bert.training import (
    CheckpointMismatchError,
    TrainSettings,
    load_checkpoint,
    teacher_logits,
    total_steps,
    train_qa,
)


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


def _model(dropout: float = 0.1) -> transformers.BertForQuestionAnswering:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=32, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
    )
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


class _Interrupt(Exception):
    pass


def _interrupt_at(k: int):  # type: ignore[no-untyped-def]
    def on_step(step: int, total: int, loss: float) -> None:
        if step == k:
            raise _Interrupt  # as if the process were killed right after step k
    return on_step


def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("interrupt_at", [3, 4, 10])  # mid-epoch, at an epoch boundary, in the second epoch
def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path: Path, interrupt_at: int) -> None:
    """A dropout-using model (RNG state matters), 4 batches an epoch, 12 steps; checkpoint every step."""
    feats = _features(n=60)
    settings = TrainSettings(epochs=3, batch_size=16, learning_rate=3e-3, warmup_ratio=0.2)
    reference = _model(dropout=0.1)
    ref_stats = train_qa(reference, feats, settings)
    assert ref_stats.steps == 12

    ckpt = tmp_path / "ckpt"
    first = _model(dropout=0.1)
    with pytest.raises(_Interrupt):
        train_qa(first, feats, settings, checkpoint_dir=ckpt, checkpoint_every=1, on_step=_interrupt_at(interrupt_at))
    assert (ckpt / "checkpoint.pt").is_file() and not (ckpt / "checkpoint.pt.partial").exists()

    resumed = _model(dropout=0.1)  # a fresh process: the model starts from the base weights again
    seen: list[int] = []
    stats = train_qa(resumed, feats, settings, checkpoint_dir=ckpt, checkpoint_every=1, on_step=lambda s, t, l: seen.append(s))
    assert stats.resumed_from_step == interrupt_at and stats.steps == 12 and seen[0] == interrupt_at + 1
    assert stats.examples_seen == ref_stats.examples_seen
    for name, value in _params(reference).items():
        torch.testing.assert_close(_params(resumed)[name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_checkpoint_every_k_steps_and_of_another_run_is_refused(tmp_path: Path) -> None:
    feats = _features(n=64)
    settings = TrainSettings(max_steps=10, batch_size=16)
    ckpt = tmp_path / "ckpt"
    with pytest.raises(_Interrupt):
        train_qa(_model(), feats, settings, checkpoint_dir=ckpt, checkpoint_every=4, on_step=_interrupt_at(6))
    assert load_checkpoint(ckpt)["step"] == 4  # the last multiple of 4 before the interrupt
    with pytest.raises(CheckpointMismatchError, match="learning_rate"):
        train_qa(_model(), feats, replace(settings, learning_rate=1e-3), checkpoint_dir=ckpt)
    resumed = train_qa(_model(), feats, replace(settings, bf16=True), checkpoint_dir=ckpt, checkpoint_every=4)
    assert resumed.resumed_from_step == 4 and resumed.steps == 10  # bf16 on/off may change between runs
    with pytest.raises(ValueError):
        train_qa(_model(), feats, settings, checkpoint_dir=tmp_path / "other", checkpoint_every=0)
