"""A question-answering encoder of any hwnas family whose layers each keep their own heads and FFN width.

transformers 5 has no ``prune_heads``, and the configs of RoBERTa, XLM-RoBERTa, ELECTRA and
DistilBERT derive the head size from ``hidden / heads`` and have one FFN width for all layers, so
a subnet with per-layer widths (or fewer heads of the base's head size) cannot be the family's own
``*ForQuestionAnswering`` with its own config. This file is the model class for those subnets:
``HwnasSlicedForQuestionAnswering`` builds the family's own QA model from the base's config
(``base_model_type``, ``base_config``), shrinks each layer's Linear modules to ``layer_heads`` x
``hwnas_head_size`` and ``layer_ffn``, and loads the weights; its forward is the family's own.
Where the modules are is read from the config's ``hwnas_anatomy`` (``search_spaces.encoder.anatomy``),
so this file knows no family. hwnas copies it into every such model directory and names it in
``config.json``'s ``auto_map``, so

    AutoModelForQuestionAnswering.from_pretrained(dir, trust_remote_code=True)

loads the model with transformers alone (this file imports only torch and transformers). The
weights are saved under ``model.`` + the family's own names (``model.roberta.encoder.layer.0...``).

The slicing helpers (``sliced_linear``, ``keep_layers``, ``shrink_layer``) are also what hwnas's
extraction runs on a teacher or supernet, so a saved subnet is the model that was measured.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForQuestionAnswering, PretrainedConfig, PreTrainedModel

MODEL_TYPE = "hwnas_sliced"


def get_module(root: nn.Module, path: str) -> nn.Module:
    for part in path.split("."):
        root = getattr(root, part)
    return root


def set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(get_module(root, parent) if parent else root, name, module)


def has_module(root: nn.Module, path: str) -> bool:
    try:
        get_module(root, path)
    except AttributeError:
        return False
    return True


def sliced_linear(lin: nn.Linear, *, rows: int | None = None, cols: int | None = None, copy: bool = True) -> nn.Linear:
    """A new Linear with the first ``rows`` outputs and the first ``cols`` inputs of ``lin`` (its weights when ``copy``)."""
    out_f = lin.out_features if rows is None else rows
    in_f = lin.in_features if cols is None else cols
    if (out_f, in_f) == (lin.out_features, lin.in_features):
        return lin
    if out_f > lin.out_features or in_f > lin.in_features:
        raise ValueError(f"cannot slice a Linear({lin.in_features}, {lin.out_features}) to ({in_f}, {out_f})")
    new = nn.Linear(in_f, out_f, bias=lin.bias is not None, device=lin.weight.device, dtype=lin.weight.dtype)
    if copy:
        with torch.no_grad():
            new.weight.copy_(lin.weight[:out_f, :in_f])
            if lin.bias is not None:
                new.bias.copy_(lin.bias[:out_f])
    return new


def keep_layers(model: nn.Module, anatomy: Mapping[str, Any], layers: Sequence[int]) -> nn.ModuleList:
    """Replace the encoder's layer list with the kept layers (the same modules, in order)."""
    path = f"{anatomy['backbone']}.{anatomy['layers']}"
    full = get_module(model, path)
    kept = nn.ModuleList(full[i] for i in layers)
    set_module(model, path, kept)
    return kept


def shrink_layer(layer: nn.Module, anatomy: Mapping[str, Any], heads: int, head_size: int, ffn: int, *, copy: bool = True) -> None:
    """Keep the first ``heads`` heads and ``ffn`` FFN neurons of one layer, in place."""
    inner = heads * head_size
    for path in (*anatomy["head_projections"], *anatomy.get("optional_head_projections", ())):
        if has_module(layer, path):  # optional ones exist only in some configs (DeBERTa-v2 without share_att_key)
            set_module(layer, path, sliced_linear(get_module(layer, path), rows=inner, copy=copy))
    set_module(layer, anatomy["attn_out"], sliced_linear(get_module(layer, anatomy["attn_out"]), cols=inner, copy=copy))
    set_module(layer, anatomy["ffn_in"], sliced_linear(get_module(layer, anatomy["ffn_in"]), rows=ffn, copy=copy))
    set_module(layer, anatomy["ffn_out"], sliced_linear(get_module(layer, anatomy["ffn_out"]), cols=ffn, copy=copy))
    attention = get_module(layer, anatomy["attention"])
    setattr(attention, anatomy["heads_attr"], heads)
    if anatomy.get("all_head_size_attr"):
        setattr(attention, anatomy["all_head_size_attr"], inner)


def takes_token_type_ids(model: nn.Module) -> bool:
    return "token_type_ids" in inspect.signature(type(model).forward).parameters


class HwnasSlicedConfig(PretrainedConfig):
    """``base_model_type`` / ``base_config``: the family's own config (as a dict) the model is built from;
    ``layer_heads`` / ``layer_ffn``: heads and FFN width of each layer; ``hwnas_head_size``: the base's
    head size; ``hwnas_anatomy``: where the sliced modules are. The usual size fields mirror them."""

    model_type = MODEL_TYPE
    DERIVED = ("num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_size", "vocab_size",
               "max_position_embeddings", "type_vocab_size")  # fmt: skip

    def __init__(
        self,
        base_model_type: str = "roberta",
        base_config: Mapping[str, Any] | None = None,
        layer_heads: Sequence[int] = (1,),
        layer_ffn: Sequence[int] = (1,),
        hwnas_head_size: int = 64,
        hwnas_anatomy: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if len(layer_heads) != len(layer_ffn):
            raise ValueError("layer_heads and layer_ffn need one entry per layer")
        for key in self.DERIVED:
            kwargs.pop(key, None)
        self.base_model_type = base_model_type
        self.base_config = dict(base_config or {})
        self.layer_heads = [int(h) for h in layer_heads]
        self.layer_ffn = [int(f) for f in layer_ffn]
        self.hwnas_head_size = int(hwnas_head_size)
        self.hwnas_anatomy = dict(hwnas_anatomy or {})
        self.num_hidden_layers = len(self.layer_heads)
        self.num_attention_heads = max(self.layer_heads)
        self.intermediate_size = max(self.layer_ffn)
        base = self.base_config
        self.hidden_size = int(base.get("hidden_size", base.get("dim", 0)) or 0)
        self.vocab_size = base.get("vocab_size")
        self.max_position_embeddings = base.get("max_position_embeddings")
        self.type_vocab_size = base.get("type_vocab_size")
        kwargs.setdefault("pad_token_id", base.get("pad_token_id"))
        super().__init__(**kwargs)

    def family_config(self) -> PretrainedConfig:
        """The family's own config the layers are cut from (every layer at the base's sizes)."""
        fields = {k: v for k, v in self.base_config.items() if k != "model_type"}
        return AutoConfig.for_model(self.base_model_type, **fields)


class HwnasSlicedForQuestionAnswering(PreTrainedModel):
    config_class = HwnasSlicedConfig
    base_model_prefix = "hwnas_sliced"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False

    def __init__(self, config: HwnasSlicedConfig) -> None:
        super().__init__(config)
        self.model = AutoModelForQuestionAnswering.from_config(config.family_config())
        anatomy = config.hwnas_anatomy
        layers = get_module(self.model, f"{anatomy['backbone']}.{anatomy['layers']}")
        if len(layers) != len(config.layer_heads):
            raise ValueError(f"base_config builds {len(layers)} layers, layer_heads names {len(config.layer_heads)}")
        for layer, heads, ffn in zip(layers, config.layer_heads, config.layer_ffn):
            shrink_layer(layer, anatomy, heads, config.hwnas_head_size, ffn, copy=False)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        pass  # every module belongs to ``self.model``, which initialises its own (and is loaded after)

    @property
    def input_names(self) -> tuple[str, ...]:
        """What the family's forward takes (DistilBERT, for one, has no token types)."""
        return ("input_ids", "attention_mask", "token_type_ids") if takes_token_type_ids(self.model) else ("input_ids", "attention_mask")

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        if token_type_ids is not None and takes_token_type_ids(self.model):
            kwargs["token_type_ids"] = token_type_ids
        return self.model(
            input_ids=input_ids, attention_mask=attention_mask, start_positions=start_positions, end_positions=end_positions, **kwargs
        )
