"""Extractive-QA fine-tuning and logit distillation for BERT-family models (PyTorch, CPU or GPU).

One loop serves both the teacher (plain cross-entropy on start/end positions) and
sliced subnets (cross-entropy mixed with KL to the teacher's start/end logits).
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.model_inputs import model_input_names
from core.qa.features import TrainFeatures
from search_spaces.training_settings import TrainSettings

log = logging.getLogger(__name__)
CHECKPOINT_FILE = "checkpoint.pt"


class CheckpointMismatchError(ValueError):
    """A checkpoint left by a run with other settings, data or model."""


@dataclass(frozen=True)
class TrainStats:
    steps: int
    examples_seen: int
    final_loss: float
    seconds: float  # training time of this call plus that of the runs it resumed
    resumed_from_step: int = 0  # 0: started from scratch


@dataclass(frozen=True)
class Sandwich:
    """Supernet training by the sandwich rule: every step trains the largest, the smallest and
    ``random_subnets`` random subnets of ``space`` (a ``BertSpace``) on the same batch, each by its
    slice of the shared weights (its family's ``sliced``), and sums their gradients."""

    space: Any
    random_subnets: int = 2

    def subnets(self, rng: random.Random) -> list[Any]:
        return [self.space.largest(), self.space.smallest(), *(self.space.random_subnet(rng) for _ in range(self.random_subnets))]

    def identity(self) -> dict[str, Any]:
        return {"space": self.space.to_dict(), "random_subnets": self.random_subnets}


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


def _checkpoint_identity(model: nn.Module, features: TrainFeatures, settings: TrainSettings, soft: bool) -> dict[str, Any]:
    """What must match for a checkpoint to continue this run (else resuming would train something else)."""
    return {
        # bf16 is left out: a run started on a bf16 CPU may continue on a GPU (FP32) and vice versa.
        **{k: v for k, v in asdict(settings).items() if k != "bf16"},
        "features": len(features),
        "seq_len": int(features.input_ids.shape[1]) if len(features) else 0,
        "labels": int(np.asarray(features.start_positions, dtype=np.int64).sum() % 1_000_003),
        "parameters": sum(p.numel() for p in model.parameters()),
        "distillation": soft,
    }


def save_checkpoint(directory: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/checkpoint.pt`` atomically (temporary file, fsync, rename)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / CHECKPOINT_FILE
    tmp = directory / (CHECKPOINT_FILE + ".partial")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return target


def load_checkpoint(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    # Our own file: tensors, plain containers and numpy's bit-generator state (ints, strings).
    return torch.load(path, map_location="cpu", weights_only=False)


def train_qa(
    model: nn.Module,
    features: TrainFeatures,
    settings: TrainSettings,
    *,
    soft_targets: tuple[np.ndarray, np.ndarray] | None = None,
    device: str = "cpu",
    on_step: Callable[[int, int, float], None] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    sandwich: Sandwich | None = None,
) -> TrainStats:
    """Fine-tune ``model`` in place with AdamW, linear warm-up then linear decay, gradient clipping.

    ``soft_targets`` are the teacher's (start, end) logits for every feature, computed once
    (``teacher_logits``): distillation then costs no teacher forward pass per step.

    With ``checkpoint_dir``, every ``checkpoint_every`` steps the model and optimizer and
    scheduler states, the step, the epoch-order RNG state (as it was before the current
    epoch's shuffle) and torch's RNG state (dropout) are written there atomically; a call
    that finds a checkpoint continues from it and, on the same device, ends with the same
    parameters as an uninterrupted run. A checkpoint made with other settings, data or
    model is refused (``CheckpointMismatchError``) rather than silently mixed in.

    With ``sandwich``, ``model`` is a supernet (a full-size BERT QA model) and each step sums the
    losses of the sandwich's subnets (CE on the labels mixed with KL to ``soft_targets``: in-place
    distillation from the teacher's start/end logits, which are computed once); the subnet
    sampler's RNG state is checkpointed too, so a resumed run draws the same subnets.
    """
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    steps = total_steps(len(features), settings)
    model.to(device).train()
    no_decay = ("bias", "LayerNorm.weight", "_ln.weight")  # _ln: the per-layer-width hwnas class
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": settings.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=settings.learning_rate)
    warmup = int(steps * settings.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup))
    )
    input_names = model_input_names(model)  # DistilBERT's forward rejects token_type_ids; RoBERTa's need none
    arrays = {
        **{name: getattr(features, name) for name in input_names},
        "start_positions": features.start_positions,
        "end_positions": features.end_positions,
    }
    if soft_targets is not None:
        arrays["teacher_start"], arrays["teacher_end"] = soft_targets
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
    every = checkpoint_every or max(1, steps // 10)
    identity = _checkpoint_identity(model, features, settings, soft_targets is not None)
    subnet_rng = random.Random(settings.seed)
    if sandwich is not None:
        identity["sandwich"] = sandwich.identity()
    step, seen, loss_value, earlier_seconds = 0, 0, float("nan"), 0.0
    resume_at = 0  # batch index within the current epoch to continue from
    epoch_rng_state = rng.bit_generator.state
    state = load_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
    if state is not None:
        if state["identity"] != identity:
            diff = sorted(k for k in identity.keys() | state["identity"].keys() if state["identity"].get(k) != identity.get(k))
            raise CheckpointMismatchError(
                f"{Path(checkpoint_dir) / CHECKPOINT_FILE} belongs to another run (different {', '.join(diff)}); "  # type: ignore[arg-type]
                "delete it or train with the same settings and data"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, seen, loss_value, earlier_seconds = state["step"], state["seen"], state["loss"], state["seconds"]
        epoch_rng_state, resume_at = state["epoch_rng_state"], state["batch_in_epoch"]
        torch.set_rng_state(state["torch_rng"])
        if state.get("subnet_rng") is not None:
            subnet_rng.setstate(state["subnet_rng"])
        if device.startswith("cuda") and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"])
        log.info("resuming training at step %d of %d from %s", step, steps, checkpoint_dir)
    resumed_from = step
    began = time.perf_counter()

    def checkpoint(batch_in_epoch: int) -> None:
        save_checkpoint(
            checkpoint_dir,  # type: ignore[arg-type]
            {
                "identity": identity,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
                "seen": seen,
                "loss": loss_value,
                "seconds": earlier_seconds + time.perf_counter() - began,
                "epoch_rng_state": epoch_rng_state,
                "batch_in_epoch": batch_in_epoch,
                "torch_rng": torch.get_rng_state(),
                "subnet_rng": subnet_rng.getstate(),
                "cuda_rng": torch.cuda.get_rng_state() if device.startswith("cuda") else None,
            },
        )

    while step < steps:
        rng.bit_generator.state = epoch_rng_state
        order = rng.permutation(len(features))
        starts = range(0, len(order), settings.batch_size)
        for batch_in_epoch, lo in enumerate(starts):
            if batch_in_epoch < resume_at:
                continue
            if step >= steps:
                break
            idx = order[lo : lo + settings.batch_size]
            batch = {k: torch.from_numpy(v[idx]).to(device) for k, v in arrays.items()}
            inputs = {k: batch[k] for k in input_names}
            optimizer.zero_grad(set_to_none=True)
            subnets = [None] if sandwich is None else sandwich.subnets(subnet_rng)
            total = 0.0
            for subnet in subnets:
                with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=settings.bf16):
                    if subnet is None:
                        out = model(**inputs)
                        start_logits, end_logits = out.start_logits.float(), out.end_logits.float()
                    else:
                        from search_spaces import family_for  # the supernet's family slices it (BERT: views)

                        out = family_for(model.config).sliced(model, subnet)(**inputs)
                        start_logits, end_logits = out.start_logits.float(), out.end_logits.float()
                loss = _qa_loss(start_logits, end_logits, batch)
                if soft_targets is not None:
                    kd = (
                        _kd_loss(start_logits, batch["teacher_start"], settings.distill_temperature)
                        + _kd_loss(end_logits, batch["teacher_end"], settings.distill_temperature)
                    ) / 2
                    loss = (1 - settings.distill_alpha) * loss + settings.distill_alpha * kd
                (loss / len(subnets)).backward()
                total += float(loss.detach()) / len(subnets)
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            step += 1
            seen += len(idx)
            loss_value = total
            if checkpoint_dir is not None and step % every == 0 and step < steps:
                if batch_in_epoch + 1 < len(starts):
                    checkpoint(batch_in_epoch + 1)
                else:  # the epoch is done: the next one starts from the RNG state after this shuffle
                    epoch_rng_state, resume_at = rng.bit_generator.state, 0
                    checkpoint(0)
            if on_step is not None:
                on_step(step, steps, loss_value)
        epoch_rng_state, resume_at = rng.bit_generator.state, 0
    model.eval()
    return TrainStats(
        steps=step,
        examples_seen=seen,
        final_loss=loss_value,
        seconds=earlier_seconds + time.perf_counter() - began,
        resumed_from_step=resumed_from,
    )


def teacher_logits(teacher: nn.Module, features: TrainFeatures, *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's start/end logits on every training window (eval mode: deterministic, FP32)."""
    teacher.eval()
    names = model_input_names(teacher)
    starts, ends = [], []
    with torch.no_grad():
        for lo in range(0, len(features), batch_size):
            sl = slice(lo, lo + batch_size)
            out = teacher(**{name: torch.from_numpy(getattr(features, name)[sl]) for name in names})
            starts.append(out.start_logits.float().numpy())
            ends.append(out.end_logits.float().numpy())
    return np.concatenate(starts), np.concatenate(ends)
