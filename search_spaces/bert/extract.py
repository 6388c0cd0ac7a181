"""Slice a BERT QA model into a standalone smaller one: kept layers, first heads, first FFN neurons.

transformers 5 has no ``prune_heads`` and ``BertConfig`` derives the head size from
``hidden_size / num_attention_heads``, so fewer heads cannot be expressed by a config.
We therefore copy the model and shrink the Linear modules in place: the attention
reshapes with ``-1`` heads, so the sliced model runs (and traces to OpenVINO) unchanged.
Which heads and neurons come first is decided by importance reordering, upstream.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from nas.types import SubnetConfig


def _slice_linear(layer: nn.Linear, *, out_keep: int | None = None, in_keep: int | None = None) -> nn.Linear:
    weight = layer.weight.detach()
    bias = layer.bias.detach() if layer.bias is not None else None
    if out_keep is not None:
        weight = weight[:out_keep]
        bias = bias[:out_keep] if bias is not None else None
    if in_keep is not None:
        weight = weight[:, :in_keep]
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new


def extract_subnet(model: nn.Module, subnet: SubnetConfig) -> nn.Module:
    """Return a new model (the input is left untouched) holding only the subnet's weights."""
    base_layers = model.config.num_hidden_layers
    if subnet.layers[-1] >= base_layers:
        raise ValueError(f"subnet keeps layer {subnet.layers[-1]} but the model has {base_layers}")
    head_size = model.config.hidden_size // model.config.num_attention_heads
    small = copy.deepcopy(model)
    encoder = small.bert.encoder
    encoder.layer = nn.ModuleList(encoder.layer[i] for i in subnet.layers)
    for idx, (layer, heads, ffn) in enumerate(zip(encoder.layer, subnet.heads, subnet.ffn)):
        if heads > model.config.num_attention_heads:
            raise ValueError(f"layer {idx}: {heads} heads requested, model has {model.config.num_attention_heads}")
        if ffn > model.config.intermediate_size:
            raise ValueError(f"layer {idx}: FFN {ffn} requested, model has {model.config.intermediate_size}")
        attn = layer.attention.self
        keep = heads * head_size
        attn.query = _slice_linear(attn.query, out_keep=keep)
        attn.key = _slice_linear(attn.key, out_keep=keep)
        attn.value = _slice_linear(attn.value, out_keep=keep)
        attn.num_attention_heads = heads
        attn.all_head_size = keep
        attn.layer_idx = idx
        layer.attention.output.dense = _slice_linear(layer.attention.output.dense, in_keep=keep)
        layer.intermediate.dense = _slice_linear(layer.intermediate.dense, out_keep=ffn)
        layer.output.dense = _slice_linear(layer.output.dense, in_keep=ffn)
    cfg = small.config
    cfg.num_hidden_layers = subnet.num_layers
    if len(set(subnet.ffn)) == 1:
        cfg.intermediate_size = subnet.ffn[0]
    cfg.hwnas_subnet = subnet.to_dict()
    cfg.hwnas_head_size = head_size
    return small.eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
