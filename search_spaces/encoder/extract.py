"""Cut a standalone subnet out of a QA encoder of any ``Anatomy``: kept layers, first heads, first FFN neurons.

The model is copied and its Linear modules shrunk in place (``modeling_hwnas_sliced.shrink_layer``);
these families' attention reshapes with ``-1`` heads, so the sliced model runs, and traces, unchanged.
The result stays in its family where the family's config can say the subnet (``fits_own_config``):
one FFN width for every layer and every head kept -- then it *is* the family's ``*ForQuestionAnswering``
with its own config class, loadable without remote code. Otherwise it is an
``HwnasSlicedForQuestionAnswering`` (``modeling_hwnas_sliced.py``, copied beside the config by
``save_standalone``), which holds the same sliced family model. Which heads and neurons come first
is decided upstream, by importance reordering.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.types import SubnetConfig
from search_spaces.encoder import modeling_hwnas_sliced as sliced_file
from search_spaces.encoder.anatomy import Anatomy

MODELING_FILE = "modeling_hwnas_sliced.py"
AUTO_MAP = {
    "AutoConfig": "modeling_hwnas_sliced.HwnasSlicedConfig",
    "AutoModelForQuestionAnswering": "modeling_hwnas_sliced.HwnasSlicedForQuestionAnswering",
}
_DROPPED_KEYS = ("architectures", "auto_map", "transformers_version", "_name_or_path", "hwnas_subnet", "hwnas_head_size")


def dims(anatomy: Anatomy, config: Any) -> dict[str, int]:
    """layers, heads, ffn, hidden and head_size of a base config, read under the family's own names."""
    return anatomy.dims(config)


def check_subnet(anatomy: Anatomy, config: Any, subnet: SubnetConfig) -> dict[str, int]:
    """``ValueError`` naming what the base cannot host; returns the base's dimensions."""
    d = dims(anatomy, config)
    if subnet.hidden is not None and subnet.hidden != d["hidden"]:
        raise ValueError(
            f"{anatomy.name}: subnet hidden size {subnet.hidden} differs from the model's {d['hidden']}; "
            "the hidden size is searched for bert only"
        )
    if subnet.layers[-1] >= d["layers"]:
        raise ValueError(f"subnet keeps layer {subnet.layers[-1]} but the model has {d['layers']}")
    for i, h, f in zip(subnet.layers, subnet.heads, subnet.ffn):
        if h > d["heads"]:
            raise ValueError(f"layer {i}: {h} heads requested, model has {d['heads']}")
        if f > d["ffn"]:
            raise ValueError(f"layer {i}: FFN {f} requested, model has {d['ffn']}")
    return d


def fits_own_config(anatomy: Anatomy, config: Any, subnet: SubnetConfig) -> bool:
    """Can the family's own config class describe ``subnet``? One FFN width for all layers and every head kept.

    Fewer heads never fit: RoBERTa, XLM-R, ELECTRA and DistilBERT derive the head size from
    ``hidden / heads``; DeBERTa-v2 reads ``attention_head_size`` from its config, but its attention-output
    Linear is ``Linear(hidden_size, hidden_size)`` (``DebertaV2SelfOutput``), so heads x head size must
    still be the hidden size there."""
    return subnet.uniform and subnet.heads[0] == dims(anatomy, config)["heads"]


def _check_model(anatomy: Anatomy, model: nn.Module) -> None:
    if not hasattr(model, anatomy.backbone):
        raise TypeError(f"{type(model).__name__} is not a {anatomy.name} QA model (no .{anatomy.backbone})")


def extract_subnet(anatomy: Anatomy, model: nn.Module, subnet: SubnetConfig) -> nn.Module:
    """A new model (``model`` is left untouched) holding only ``subnet``'s weights of ``model``.

    ``model`` is the family's full-size ``*ForQuestionAnswering`` (a teacher, or a trained,
    importance-ordered supernet: the first heads and neurons are the ones kept).
    """
    _check_model(anatomy, model)
    cfg = model.config
    d = check_subnet(anatomy, cfg, subnet)
    small = copy.deepcopy(model)
    spec = anatomy.to_dict()
    for idx, (layer, heads, ffn) in enumerate(zip(sliced_file.keep_layers(small, spec, subnet.layers), subnet.heads, subnet.ffn)):
        sliced_file.shrink_layer(layer, spec, heads, d["head_size"], ffn)
        attention = sliced_file.get_module(layer, anatomy.attention)
        if hasattr(attention, "layer_idx"):
            attention.layer_idx = idx
    meta = {"hwnas_subnet": subnet.to_dict(), "hwnas_head_size": d["head_size"]}
    if fits_own_config(anatomy, cfg, subnet):
        new = small.config
        setattr(new, anatomy.keys.layers, subnet.num_layers)
        setattr(new, anatomy.keys.ffn, subnet.ffn[0])
        for key, value in meta.items():
            setattr(new, key, value)
        return small.eval()
    return _wrap(anatomy, small, subnet, d, meta).eval()


def _wrap(anatomy: Anatomy, small: nn.Module, subnet: SubnetConfig, d: dict[str, int], meta: dict[str, Any]) -> nn.Module:
    """The sliced family model ``small`` as an ``HwnasSlicedForQuestionAnswering`` (which saves and loads)."""
    setattr(small.config, anatomy.keys.layers, subnet.num_layers)
    setattr(small.config, anatomy.keys.ffn, max(subnet.ffn))  # what is built before the layers shrink
    base = {k: v for k, v in small.config.to_dict().items() if k not in _DROPPED_KEYS}
    config = sliced_file.HwnasSlicedConfig(
        base_model_type=small.config.model_type,
        base_config=base,
        layer_heads=list(subnet.heads),
        layer_ffn=list(subnet.ffn),
        hwnas_head_size=d["head_size"],
        hwnas_anatomy=anatomy.to_dict(),
        hwnas_subnet=meta["hwnas_subnet"],
    )
    config.auto_map = dict(AUTO_MAP)
    config.architectures = ["HwnasSlicedForQuestionAnswering"]
    with torch.device("meta"):  # the class's own family model is only a placeholder here: nothing allocated
        wrapped = sliced_file.HwnasSlicedForQuestionAnswering(config)
    wrapped.model = small  # the same modules a load builds (``HwnasSlicedForQuestionAnswering.__init__``)
    return wrapped


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def modeling_files(config: Any) -> list[Path]:
    """The modeling file a saved config of ``model_type`` ``hwnas_sliced`` names in its ``auto_map``."""
    model_type = config.get("model_type") if isinstance(config, dict) else getattr(config, "model_type", None)
    return [Path(sliced_file.__file__)] if model_type == sliced_file.MODEL_TYPE else []


def save_standalone(model: nn.Module, out_dir: "str | os.PathLike[str]", tokenizer: Any = None) -> Path:
    """``save_pretrained`` (and the tokenizer), plus the modeling file and ``auto_map`` for ``hwnas_sliced`` models."""
    out = Path(out_dir)
    model.save_pretrained(out)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    files = modeling_files(model.config)
    for f in files:
        shutil.copyfile(f, out / MODELING_FILE)
    if files:
        cfg_path = out / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["auto_map"] = dict(AUTO_MAP)
        cfg["architectures"] = ["HwnasSlicedForQuestionAnswering"]
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True))
    return out
