"""Importance reordering of attention heads and FFN neurons (as DynaBERT does before width training).

Importance is the first-order Taylor estimate of the loss change when a unit is removed,
``|sum(w * dL/dw)|`` summed over every weight that belongs to the unit (a head's query, key and
value rows and its attention-output columns; an FFN neuron's intermediate row and output column),
accumulated over calibration batches with the QA loss (or KL to teacher logits when given).
Each layer's heads and neurons are then permuted in place, most important first, so that
slicing "the first k" keeps the most important k. A permutation of heads or neurons does not
change what the model computes (a test checks the outputs).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.model_inputs import model_input_names
from search_spaces.bert.supernet import head_size


def importance_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The loss whose gradients rank the units: KL to the teacher's logits when the batch has them, else
    the QA loss; the model gets only the inputs it takes (every family's importance uses this one)."""
    out = model(**{k: batch[k] for k in model_input_names(model) if k in batch})
    if "teacher_start" in batch:
        return (
            F.kl_div(F.log_softmax(out.start_logits, -1), F.softmax(batch["teacher_start"], -1), reduction="batchmean")
            + F.kl_div(F.log_softmax(out.end_logits, -1), F.softmax(batch["teacher_end"], -1), reduction="batchmean")
        ) / 2
    return (F.cross_entropy(out.start_logits, batch["start_positions"]) + F.cross_entropy(out.end_logits, batch["end_positions"])) / 2


def compute_importance(
    model: nn.Module, batches: Iterable[dict[str, np.ndarray | torch.Tensor]]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per layer: head importance [heads] and FFN neuron importance [ffn] (higher is more important)."""
    cfg = model.config
    hs = head_size(cfg)
    heads_n = cfg.num_attention_heads
    model.eval()  # no dropout: the estimate is of the deterministic model
    model.zero_grad(set_to_none=True)
    head_scores = [torch.zeros(heads_n) for _ in model.bert.encoder.layer]
    ffn_scores = [torch.zeros(layer.intermediate.dense.out_features) for layer in model.bert.encoder.layer]
    for raw in batches:
        batch = {k: torch.as_tensor(v) for k, v in raw.items()}
        model.zero_grad(set_to_none=True)
        importance_loss(model, batch).backward()
        for i, layer in enumerate(model.bert.encoder.layer):
            att = layer.attention
            score = torch.zeros(heads_n)
            for lin in (att.self.query, att.self.key, att.self.value):
                wg = (lin.weight * lin.weight.grad).sum(1) + lin.bias * lin.bias.grad
                score += wg.detach().view(heads_n, hs).sum(1)
            o = att.output.dense
            score += (o.weight * o.weight.grad).sum(0).detach().view(heads_n, hs).sum(1)
            head_scores[i] += score.abs()
            inter, out = layer.intermediate.dense, layer.output.dense
            neuron = (inter.weight * inter.weight.grad).sum(1) + inter.bias * inter.bias.grad
            neuron += (out.weight * out.weight.grad).sum(0)
            ffn_scores[i] += neuron.detach().abs()
    model.zero_grad(set_to_none=True)
    return head_scores, ffn_scores


def _permute_rows(lin: nn.Linear, order: torch.Tensor) -> None:
    lin.weight.copy_(lin.weight[order])
    if lin.bias is not None:
        lin.bias.copy_(lin.bias[order])


def _permute_cols(lin: nn.Linear, order: torch.Tensor) -> None:
    lin.weight.copy_(lin.weight[:, order])


@torch.no_grad()
def apply_order(model: nn.Module, head_orders: list[torch.Tensor], ffn_orders: list[torch.Tensor]) -> None:
    """Permute each layer's heads (blocks of head_size rows of Q/K/V, columns of the attention output)
    and FFN neurons (intermediate rows, output columns) into the given orders, in place."""
    hs = head_size(model.config)
    for layer, h_order, f_order in zip(model.bert.encoder.layer, head_orders, ffn_orders):
        att = layer.attention
        rows = (h_order[:, None] * hs + torch.arange(hs)[None, :]).reshape(-1)
        for lin in (att.self.query, att.self.key, att.self.value):
            _permute_rows(lin, rows)
        _permute_cols(att.output.dense, rows)
        _permute_rows(layer.intermediate.dense, f_order)
        _permute_cols(layer.output.dense, f_order)


def reorder_by_importance(
    model: nn.Module, batches: Iterable[dict[str, np.ndarray | torch.Tensor]]
) -> dict[str, list[list[int]]]:
    """Rank heads and neurons on ``batches`` and permute ``model`` in place; return the orders applied."""
    head_scores, ffn_scores = compute_importance(model, batches)
    head_orders = [torch.argsort(s, descending=True, stable=True) for s in head_scores]
    ffn_orders = [torch.argsort(s, descending=True, stable=True) for s in ffn_scores]
    apply_order(model, head_orders, ffn_orders)
    return {"heads": [o.tolist() for o in head_orders], "ffn": [o.tolist() for o in ffn_orders]}
