"""Weight-sharing BERT supernet: every subnet's forward runs on slices of one set of weights.

The supernet *is* a full-size ``BertForQuestionAnswering`` (importance-reordered so that the
first heads and FFN neurons of every layer are the most important ones); ``sliced_weights``
views the first ``heads`` heads, ``ffn`` neurons and ``hidden`` channels of each kept layer,
and ``forward`` runs them with the same functions the extracted standalone model runs
(``modeling_hwnas_bert.embed`` / ``encoder_layer``). Slices are views, so gradients of every
subnet's loss land in the shared tensors: that is what sandwich training needs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.activations import ACT2FN

from core.types import SubnetConfig
from search_spaces.bert.modeling_hwnas_bert import additive_mask, embed, encoder_layer


def head_size(config: Any) -> int:
    return int(getattr(config, "attention_head_size", 0) or config.hidden_size // config.num_attention_heads)


def check_subnet(config: Any, subnet: SubnetConfig) -> None:
    """``ValueError`` naming what the base model cannot host."""
    if subnet.layers[-1] >= config.num_hidden_layers:
        raise ValueError(f"subnet keeps layer {subnet.layers[-1]} but the model has {config.num_hidden_layers}")
    hidden = subnet.hidden or config.hidden_size
    if hidden > config.hidden_size:
        raise ValueError(f"hidden size {hidden} exceeds the model's {config.hidden_size}")
    for i, (h, f) in enumerate(zip(subnet.heads, subnet.ffn)):
        if h > config.num_attention_heads:
            raise ValueError(f"layer {subnet.layers[i]}: {h} heads requested, model has {config.num_attention_heads}")
        if f > config.intermediate_size:
            raise ValueError(f"layer {subnet.layers[i]}: FFN {f} requested, model has {config.intermediate_size}")


def embedding_weights(model: nn.Module, hidden: int) -> dict[str, torch.Tensor]:
    e = model.bert.embeddings
    return {
        "word": e.word_embeddings.weight[:, :hidden],
        "position": e.position_embeddings.weight[:, :hidden],
        "token_type": e.token_type_embeddings.weight[:, :hidden],
        "ln_weight": e.LayerNorm.weight[:hidden],
        "ln_bias": e.LayerNorm.bias[:hidden],
    }


def layer_weights(model: nn.Module, index: int, heads: int, ffn: int, hidden: int) -> dict[str, torch.Tensor]:
    """Views of layer ``index``'s first ``heads`` heads, ``ffn`` neurons and ``hidden`` channels."""
    layer = model.bert.encoder.layer[index]
    inner = heads * head_size(model.config)
    att, out = layer.attention, layer.output
    w = {}
    for name, lin in (("query", att.self.query), ("key", att.self.key), ("value", att.self.value)):
        w[f"{name}.weight"], w[f"{name}.bias"] = lin.weight[:inner, :hidden], lin.bias[:inner]
    w["attn_out.weight"], w["attn_out.bias"] = att.output.dense.weight[:hidden, :inner], att.output.dense.bias[:hidden]
    w["attn_ln.weight"], w["attn_ln.bias"] = att.output.LayerNorm.weight[:hidden], att.output.LayerNorm.bias[:hidden]
    w["inter.weight"], w["inter.bias"] = layer.intermediate.dense.weight[:ffn, :hidden], layer.intermediate.dense.bias[:ffn]
    w["out.weight"], w["out.bias"] = out.dense.weight[:hidden, :ffn], out.dense.bias[:hidden]
    w["out_ln.weight"], w["out_ln.bias"] = out.LayerNorm.weight[:hidden], out.LayerNorm.bias[:hidden]
    return w


def qa_weights(model: nn.Module, hidden: int) -> tuple[torch.Tensor, torch.Tensor]:
    return model.qa_outputs.weight[:, :hidden], model.qa_outputs.bias


def sliced_forward(
    model: nn.Module,
    subnet: SubnetConfig,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(start_logits, end_logits) of ``subnet`` computed on ``model``'s shared weights (dropout when training)."""
    cfg = model.config
    hidden = subnet.hidden or cfg.hidden_size
    training = model.training
    x = embed(
        input_ids,
        token_type_ids,
        **embedding_weights(model, hidden),
        eps=cfg.layer_norm_eps,
        dropout=cfg.hidden_dropout_prob,
        training=training,
    )
    mask = additive_mask(attention_mask, x.dtype)
    act = ACT2FN[cfg.hidden_act]
    for index, heads, ffn in zip(subnet.layers, subnet.heads, subnet.ffn):
        x = encoder_layer(
            x,
            mask,
            layer_weights(model, index, heads, ffn, hidden),
            head_size=head_size(cfg),
            act=act,
            eps=cfg.layer_norm_eps,
            hidden_dropout=cfg.hidden_dropout_prob,
            attention_dropout=cfg.attention_probs_dropout_prob,
            training=training,
        )
    weight, bias = qa_weights(model, hidden)
    logits = torch.nn.functional.linear(x, weight, bias)
    start, end = logits.split(1, dim=-1)
    return start.squeeze(-1), end.squeeze(-1)


class SlicedSubnet(nn.Module):
    """A subnet of the supernet as a module with the usual QA call signature (for evaluation)."""

    def __init__(self, supernet: nn.Module, subnet: SubnetConfig) -> None:
        super().__init__()
        check_subnet(supernet.config, subnet)
        self.supernet, self.subnet = supernet, subnet

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, **_: Any):  # type: ignore[no-untyped-def]
        from transformers.modeling_outputs import QuestionAnsweringModelOutput

        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        start, end = sliced_forward(self.supernet, self.subnet, input_ids, attention_mask, token_type_ids)
        return QuestionAnsweringModelOutput(start_logits=start, end_logits=end)
