"""Importance reordering of heads and FFN neurons for any ``Anatomy`` (BERT's ``importance`` method, generalised).

Importance is the first-order Taylor estimate ``|sum(w * dL/dw)|`` over every weight of a unit: a
head's rows of every per-head projection (Q, K, V, and DeBERTa-v2's ``pos_key_proj`` /
``pos_query_proj`` where its config has them) and its attention-output columns; an FFN neuron's
FFN-in row and FFN-out column. It is accumulated over calibration batches with the QA loss (or KL
to teacher logits when the batches carry ``teacher_start`` / ``teacher_end``). Each layer's heads and
neurons are then permuted in place, most important first; a permutation does not change what the
model computes (with DeBERTa-v2's ``share_att_key`` the relative-position terms use the same
``query_proj`` / ``key_proj`` rows, so they are permuted with them).

Batches are passed to the model with only the inputs it takes (``core.model_inputs.model_input_names``:
no ``token_type_ids`` for DistilBERT, RoBERTa, XLM-R, DeBERTa-v3); a batch without them is fine.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.bert.importance import importance_loss
from search_spaces.encoder.anatomy import Anatomy
from search_spaces.encoder.extract import dims
from search_spaces.encoder.modeling_hwnas_sliced import get_module, has_module


def _layers(anatomy: Anatomy, model: nn.Module) -> nn.ModuleList:
    return get_module(model, f"{anatomy.backbone}.{anatomy.layers}")


def _head_linears(anatomy: Anatomy, layer: nn.Module) -> list[nn.Linear]:
    paths = (*anatomy.head_projections, *anatomy.optional_head_projections)
    return [get_module(layer, p) for p in paths if has_module(layer, p)]


def compute_importance(
    anatomy: Anatomy, model: nn.Module, batches: Iterable[dict[str, np.ndarray | torch.Tensor]]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per layer: head importance [heads] and FFN neuron importance [ffn] (higher is more important)."""
    d = dims(anatomy, model.config)
    heads_n, hs = d["heads"], d["head_size"]
    layers = _layers(anatomy, model)
    was_training = model.training
    model.eval()  # no dropout: the estimate is of the deterministic model
    head_scores = [torch.zeros(heads_n) for _ in layers]
    ffn_scores = [torch.zeros(get_module(layer, anatomy.ffn_in).out_features) for layer in layers]
    device = next(model.parameters()).device
    try:
        for raw in batches:
            batch = {k: torch.as_tensor(v, device=device) for k, v in raw.items()}
            model.zero_grad(set_to_none=True)
            importance_loss(model, batch).backward()
            for i, layer in enumerate(layers):
                score = torch.zeros(heads_n)
                for lin in _head_linears(anatomy, layer):
                    wg = (lin.weight * lin.weight.grad).sum(1)
                    if lin.bias is not None:
                        wg = wg + lin.bias * lin.bias.grad
                    score += wg.detach().cpu().view(heads_n, hs).sum(1)
                o = get_module(layer, anatomy.attn_out)
                score += (o.weight * o.weight.grad).sum(0).detach().cpu().view(heads_n, hs).sum(1)
                head_scores[i] += score.abs()
                inter, out = get_module(layer, anatomy.ffn_in), get_module(layer, anatomy.ffn_out)
                neuron = (inter.weight * inter.weight.grad).sum(1) + inter.bias * inter.bias.grad
                neuron = neuron + (out.weight * out.weight.grad).sum(0)
                ffn_scores[i] += neuron.detach().cpu().abs()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return head_scores, ffn_scores


def _permute_rows(lin: nn.Linear, order: torch.Tensor) -> None:
    order = order.to(lin.weight.device)
    lin.weight.copy_(lin.weight[order])
    if lin.bias is not None:
        lin.bias.copy_(lin.bias[order])


def _permute_cols(lin: nn.Linear, order: torch.Tensor) -> None:
    lin.weight.copy_(lin.weight[:, order.to(lin.weight.device)])


@torch.no_grad()
def apply_order(anatomy: Anatomy, model: nn.Module, head_orders: list[torch.Tensor], ffn_orders: list[torch.Tensor]) -> None:
    """Permute each layer's heads (blocks of head-size rows of every per-head projection, columns of the
    attention output) and FFN neurons (FFN-in rows, FFN-out columns) into the given orders, in place."""
    hs = dims(anatomy, model.config)["head_size"]
    for layer, h_order, f_order in zip(_layers(anatomy, model), head_orders, ffn_orders):
        rows = (h_order[:, None] * hs + torch.arange(hs)[None, :]).reshape(-1)
        for lin in _head_linears(anatomy, layer):
            _permute_rows(lin, rows)
        _permute_cols(get_module(layer, anatomy.attn_out), rows)
        _permute_rows(get_module(layer, anatomy.ffn_in), f_order)
        _permute_cols(get_module(layer, anatomy.ffn_out), f_order)


def reorder_by_importance(
    anatomy: Anatomy, model: nn.Module, batches: Iterable[dict[str, Any]]
) -> dict[str, list[list[int]]]:
    """Rank heads and neurons on ``batches`` and permute ``model`` in place; return the orders applied."""
    head_scores, ffn_scores = compute_importance(anatomy, model, batches)
    head_orders = [torch.argsort(s, descending=True, stable=True) for s in head_scores]
    ffn_orders = [torch.argsort(s, descending=True, stable=True) for s in ffn_scores]
    apply_order(anatomy, model, head_orders, ffn_orders)
    return {"heads": [o.tolist() for o in head_orders], "ffn": [o.tolist() for o in ffn_orders]}
