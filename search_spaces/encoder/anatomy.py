"""Where the elastic parts of an encoder live, per family: what ``EncoderFamily`` slices, masks and permutes.

Every family here is a stack of post-LN transformer layers whose attention splits Q/K/V into heads
with a ``view(..., -1, head_size)`` (so fewer output rows mean fewer heads) and whose FFN is two
Linear modules. An ``Anatomy`` names, for one family of transformers 5.23:

- the backbone attribute of its ``*ForQuestionAnswering`` and the layer list under it;
- per layer, the module paths of the Q/K/V Linear modules (``head_projections``: output rows are
  heads x head size), the attention-output Linear (input columns are heads x head size), the
  FFN-in Linear (output rows are neurons) and the FFN-out Linear (input columns are neurons);
- ``optional_head_projections``: per-head Linear modules only some configs have (DeBERTa-v2's
  ``pos_key_proj`` / ``pos_query_proj`` when ``share_att_key`` is false; with ``share_att_key`` the
  relative-position projections *are* ``key_proj`` / ``query_proj``, so slicing those slices both);
- the attention module whose head-count attributes must follow when heads are sliced;
- the config keys of the dimensions (DistilBERT: ``n_layers``, ``n_heads``, ``hidden_dim``, ``dim``), and
  ``head_size_key``: the config key that states a head size on its own, where the family reads one
  (DeBERTa-v2: ``attention_head_size``; read for the head size only -- fewer heads still do not fit
  DeBERTa-v2's own config, whose attention-output Linear takes ``hidden_size`` inputs).

This module imports nothing heavy (the coordinator reads the config keys without torch); ``to_dict``
is what a saved ``hwnas_sliced`` model carries in its config, so that its modeling file
(``modeling_hwnas_sliced.py``) needs no table of families of its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

BERT_KEYS = ("num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_size")


@dataclass(frozen=True)
class ConfigKeys:
    """The family's config field names of the four dimensions (BERT's by default)."""

    layers: str = "num_hidden_layers"
    heads: str = "num_attention_heads"
    ffn: str = "intermediate_size"
    hidden: str = "hidden_size"

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(family's key, BERT's key) for each dimension."""
        return tuple(zip((self.layers, self.heads, self.ffn, self.hidden), BERT_KEYS))


@dataclass(frozen=True)
class Anatomy:
    name: str
    model_types: tuple[str, ...]
    qa_class: str  # the family's own transformers class, e.g. "RobertaForQuestionAnswering"
    backbone: str  # attribute of the QA model holding the encoder model
    layers: str  # path (under the backbone) of the nn.ModuleList of layers
    head_projections: tuple[str, ...]  # per layer: Q, K, V Linear modules (rows = heads x head size)
    attn_out: str  # per layer: attention-output Linear (columns = heads x head size)
    ffn_in: str  # per layer: FFN-in Linear (rows = neurons)
    ffn_out: str  # per layer: FFN-out Linear (columns = neurons)
    attention: str  # per layer: the module whose head-count attributes follow the sliced heads
    heads_attr: str = "num_attention_heads"
    head_size_attr: str = "attention_head_size"
    all_head_size_attr: str | None = "all_head_size"
    optional_head_projections: tuple[str, ...] = ()
    keys: ConfigKeys = ConfigKeys()
    head_size_key: str | None = None  # config key read as the head size, if the family's config has one

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def dims(self, config: Any) -> dict[str, int]:
        """``layers``, ``heads``, ``ffn``, ``hidden`` and ``head_size`` of a base config (a transformers config, a
        dict or a namespace), read under the family's own names, BERT's as a fallback (``supernet.json``'s
        base dimensions are recorded under BERT's)."""
        out: dict[str, int] = {}
        for (own, bert), name in zip(self.keys.pairs(), ("layers", "heads", "ffn", "hidden")):
            value = _get(config, own)
            if value is None:
                value = _get(config, bert)
            if value is None:
                raise ValueError(f"{self.name} config has no {own!r}")
            out[name] = int(value)
        stated = None
        for key in (self.head_size_key, "attention_head_size", "hwnas_head_size"):
            stated = _get(config, key) if key else None
            if stated:
                break
        out["head_size"] = int(stated or out["hidden"] // out["heads"])
        return out


def _get(config: Any, key: str) -> Any:
    return config.get(key) if isinstance(config, dict) else getattr(config, key, None)


_BERT_LIKE = dict(
    layers="encoder.layer",
    head_projections=("attention.self.query", "attention.self.key", "attention.self.value"),
    attn_out="attention.output.dense",
    ffn_in="intermediate.dense",
    ffn_out="output.dense",
    attention="attention.self",
)

ROBERTA = Anatomy(name="roberta", model_types=("roberta",), qa_class="RobertaForQuestionAnswering", backbone="roberta", **_BERT_LIKE)
XLM_ROBERTA = Anatomy(
    name="xlm-roberta", model_types=("xlm-roberta",), qa_class="XLMRobertaForQuestionAnswering", backbone="roberta", **_BERT_LIKE
)
ELECTRA = Anatomy(name="electra", model_types=("electra",), qa_class="ElectraForQuestionAnswering", backbone="electra", **_BERT_LIKE)
DISTILBERT = Anatomy(
    name="distilbert",
    model_types=("distilbert",),
    qa_class="DistilBertForQuestionAnswering",
    backbone="distilbert",
    layers="transformer.layer",
    head_projections=("attention.q_lin", "attention.k_lin", "attention.v_lin"),
    attn_out="attention.out_lin",
    ffn_in="ffn.lin1",
    ffn_out="ffn.lin2",
    attention="attention",
    heads_attr="n_heads",
    all_head_size_attr=None,  # its ``dim`` is the model width (Q/K/V inputs), not the heads' width: left alone
    keys=ConfigKeys(layers="n_layers", heads="n_heads", ffn="hidden_dim", hidden="dim"),
)
DEBERTA_V2 = Anatomy(
    name="deberta-v2",
    model_types=("deberta-v2",),  # DeBERTa-v3 checkpoints are deberta-v2 models
    qa_class="DebertaV2ForQuestionAnswering",
    backbone="deberta",
    layers="encoder.layer",
    head_projections=("attention.self.query_proj", "attention.self.key_proj", "attention.self.value_proj"),
    optional_head_projections=("attention.self.pos_key_proj", "attention.self.pos_query_proj"),
    attn_out="attention.output.dense",
    ffn_in="intermediate.dense",
    ffn_out="output.dense",
    attention="attention.self",
    head_size_key="attention_head_size",
)

ANATOMIES: dict[str, Anatomy] = {a.name: a for a in (ROBERTA, XLM_ROBERTA, DISTILBERT, ELECTRA, DEBERTA_V2)}
