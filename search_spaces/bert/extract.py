"""Slice a BERT QA model into a standalone smaller one: kept layers, first heads, first FFN neurons.

transformers 5 has no ``prune_heads`` and ``BertConfig`` derives the head size from
``hidden_size / num_attention_heads``, so fewer heads cannot be expressed by a config.
We therefore copy the model and shrink the Linear modules in place: the attention
reshapes with ``-1`` heads, so the sliced model runs (and traces to OpenVINO) unchanged.
Which heads and neurons come first is decided by importance reordering, upstream.
"""

from __future__ import annotations

import copy
import os

import torch
from torch import nn

from core.types import SubnetConfig


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


# --- standalone models that save and load (the supernet path) ---------------------------------

MODELING_FILE = "modeling_hwnas_bert.py"
AUTO_MAP = {
    "AutoConfig": "modeling_hwnas_bert.HwnasBertConfig",
    "AutoModelForQuestionAnswering": "modeling_hwnas_bert.HwnasBertForQuestionAnswering",
}


def is_plain_bert(config: object, subnet: SubnetConfig) -> bool:
    """A plain ``BertConfig`` can say it: one FFN width, every head kept, the base hidden size."""
    hidden = subnet.hidden or config.hidden_size  # type: ignore[attr-defined]
    return (
        subnet.uniform
        and subnet.heads[0] == config.num_attention_heads  # type: ignore[attr-defined]
        and hidden == config.hidden_size  # type: ignore[attr-defined]
    )


def extract_standalone(model: nn.Module, subnet: SubnetConfig) -> nn.Module:
    """A new model holding only ``subnet``'s weights of ``model`` (a ``BertForQuestionAnswering`` or supernet).

    A plain ``BertForQuestionAnswering`` with a smaller ``BertConfig`` where one can describe the subnet
    (``is_plain_bert``), else a ``HwnasBertForQuestionAnswering`` (per-layer heads and FFN widths, any
    hidden size). Either computes what ``supernet.sliced_forward(model, subnet, ...)`` computes and
    round-trips through ``save_standalone`` / ``AutoModelForQuestionAnswering.from_pretrained``.
    """
    from transformers import BertConfig, BertForQuestionAnswering

    from search_spaces.bert.modeling_hwnas_bert import HwnasBertConfig, HwnasBertForQuestionAnswering
    from search_spaces.bert.supernet import check_subnet, embedding_weights, head_size, layer_weights, qa_weights

    cfg = model.config
    check_subnet(cfg, subnet)
    hidden = subnet.hidden or cfg.hidden_size
    meta = {"hwnas_subnet": subnet.to_dict(), "hwnas_head_size": head_size(cfg)}
    common = {
        k: getattr(cfg, k)
        for k in (
            "vocab_size", "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
            "max_position_embeddings", "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id",
        )
    }
    emb = embedding_weights(model, hidden)
    qa_w, qa_b = qa_weights(model, hidden)
    with torch.no_grad():
        if is_plain_bert(cfg, subnet):
            new_cfg = BertConfig(
                **common, hidden_size=hidden, num_hidden_layers=subnet.num_layers,
                num_attention_heads=subnet.heads[0], intermediate_size=subnet.ffn[0], **meta,
            )
            small = BertForQuestionAnswering(new_cfg)
            e = small.bert.embeddings
            e.word_embeddings.weight.copy_(emb["word"])
            e.position_embeddings.weight.copy_(emb["position"])
            e.token_type_embeddings.weight.copy_(emb["token_type"])
            e.LayerNorm.weight.copy_(emb["ln_weight"])
            e.LayerNorm.bias.copy_(emb["ln_bias"])
            for layer, index, heads, ffn in zip(small.bert.encoder.layer, subnet.layers, subnet.heads, subnet.ffn):
                w = layer_weights(model, index, heads, ffn, hidden)
                att = layer.attention
                targets = {
                    "query": att.self.query, "key": att.self.key, "value": att.self.value,
                    "attn_out": att.output.dense, "attn_ln": att.output.LayerNorm,
                    "inter": layer.intermediate.dense, "out": layer.output.dense, "out_ln": layer.output.LayerNorm,
                }
                for name, module in targets.items():
                    module.weight.copy_(w[f"{name}.weight"])
                    module.bias.copy_(w[f"{name}.bias"])
        else:
            new_cfg = HwnasBertConfig(
                **common, hidden_size=hidden, layer_heads=list(subnet.heads), layer_ffn=list(subnet.ffn),
                attention_head_size=head_size(cfg), **meta,
            )
            new_cfg.auto_map = dict(AUTO_MAP)
            new_cfg.architectures = ["HwnasBertForQuestionAnswering"]
            small = HwnasBertForQuestionAnswering(new_cfg)
            small.word_embeddings.weight.copy_(emb["word"])
            small.position_embeddings.weight.copy_(emb["position"])
            small.token_type_embeddings.weight.copy_(emb["token_type"])
            small.embeddings_ln.weight.copy_(emb["ln_weight"])
            small.embeddings_ln.bias.copy_(emb["ln_bias"])
            for layer, index, heads, ffn in zip(small.layers, subnet.layers, subnet.heads, subnet.ffn):
                w = layer_weights(model, index, heads, ffn, hidden)
                for name, tensor in layer.weights().items():
                    tensor.copy_(w[name])
        small.qa_outputs.weight.copy_(qa_w)
        small.qa_outputs.bias.copy_(qa_b)
    return small.eval()


def save_standalone(model: nn.Module, out_dir: "str | os.PathLike[str]", tokenizer: object = None) -> None:
    """``save_pretrained``, plus the modeling file and ``auto_map`` for per-layer-width models."""
    import json
    import shutil
    from pathlib import Path

    out = Path(out_dir)
    model.save_pretrained(out)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)  # type: ignore[attr-defined]
    if getattr(model.config, "model_type", "") == "hwnas_bert":
        shutil.copyfile(Path(__file__).with_name(MODELING_FILE), out / MODELING_FILE)
        cfg_path = out / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["auto_map"] = dict(AUTO_MAP)
        cfg["architectures"] = ["HwnasBertForQuestionAnswering"]
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True))
