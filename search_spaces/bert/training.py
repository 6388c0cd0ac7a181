"""Extractive-QA fine-tuning and logit distillation for BERT-family models (PyTorch, CPU or GPU).

One loop serves both the teacher (plain cross-entropy on start/end positions) and
sliced subnets (cross-entropy mixed with KL to the teacher's start/end logits).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.data.features import TrainFeatures


@dataclass(frozen=True)
class TrainSettings:
    epochs: float = 1.0
    max_steps: int | None = None
    learning_rate: float = 1e-4
    batch_size: int = 16
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 0
    distill_temperature: float = 2.0
    distill_alpha: float = 0.5  # weight of the KL term when a teacher is given
    bf16: bool = False  # autocast matmuls to bf16 (fp32 master weights): ~2x faster on CPUs with AVX512-BF16/AMX


@dataclass(frozen=True)
class TrainStats:
    steps: int
    examples_seen: int
    final_loss: float
    seconds: float


def total_steps(num_features: int, settings: TrainSettings) -> int:
    """``max_steps`` wins over ``epochs`` when set (the Hugging Face Trainer's convention)."""
    if settings.max_steps:
        return settings.max_steps
    return max(1, math.ceil(math.ceil(num_features / settings.batch_size) * settings.epochs))


def _qa_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return (F.cross_entropy(start_logits, batch["start_positions"]) + F.cross_entropy(end_logits, batch["end_positions"])) / 2


def _kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    return F.kl_div(
        F.log_softmax(student / temperature, dim=-1), F.softmax(teacher / temperature, dim=-1), reduction="batchmean"
    ) * temperature**2


def train_qa(
    model: nn.Module,
    features: TrainFeatures,
    settings: TrainSettings,
    *,
    soft_targets: tuple[np.ndarray, np.ndarray] | None = None,
    device: str = "cpu",
    on_step: Callable[[int, int, float], None] | None = None,
) -> TrainStats:
    """Fine-tune ``model`` in place with AdamW, linear warm-up then linear decay, gradient clipping.

    ``soft_targets`` are the teacher's (start, end) logits for every feature, computed once
    (``teacher_logits``): distillation then costs no teacher forward pass per step.
    """
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    steps = total_steps(len(features), settings)
    model.to(device).train()
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": settings.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=settings.learning_rate)
    warmup = int(steps * settings.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup))
    )
    arrays = {
        "input_ids": features.input_ids,
        "attention_mask": features.attention_mask,
        "token_type_ids": features.token_type_ids,
        "start_positions": features.start_positions,
        "end_positions": features.end_positions,
    }
    if soft_targets is not None:
        arrays["teacher_start"], arrays["teacher_end"] = soft_targets
    began = time.perf_counter()
    step, seen, loss_value = 0, 0, float("nan")
    while step < steps:
        order = rng.permutation(len(features))
        for lo in range(0, len(order), settings.batch_size):
            if step >= steps:
                break
            idx = order[lo : lo + settings.batch_size]
            batch = {k: torch.from_numpy(v[idx]).to(device) for k, v in arrays.items()}
            inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
            with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=settings.bf16):
                out = model(**inputs)
                start_logits, end_logits = out.start_logits.float(), out.end_logits.float()
            loss = _qa_loss(start_logits, end_logits, batch)
            if soft_targets is not None:
                kd = (
                    _kd_loss(start_logits, batch["teacher_start"], settings.distill_temperature)
                    + _kd_loss(end_logits, batch["teacher_end"], settings.distill_temperature)
                ) / 2
                loss = (1 - settings.distill_alpha) * loss + settings.distill_alpha * kd
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            step += 1
            seen += len(idx)
            loss_value = float(loss.detach())
            if on_step is not None:
                on_step(step, steps, loss_value)
    model.eval()
    return TrainStats(steps=step, examples_seen=seen, final_loss=loss_value, seconds=time.perf_counter() - began)


def teacher_logits(teacher: nn.Module, features: TrainFeatures, *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's start/end logits on every training window (eval mode: deterministic, FP32)."""
    teacher.eval()
    starts, ends = [], []
    with torch.no_grad():
        for lo in range(0, len(features), batch_size):
            sl = slice(lo, lo + batch_size)
            out = teacher(
                input_ids=torch.from_numpy(features.input_ids[sl]),
                attention_mask=torch.from_numpy(features.attention_mask[sl]),
                token_type_ids=torch.from_numpy(features.token_type_ids[sl]),
            )
            starts.append(out.start_logits.float().numpy())
            ends.append(out.end_logits.float().numpy())
    return np.concatenate(starts), np.concatenate(ends)
