"""One ``ModelFamily`` for every encoder an ``Anatomy`` describes (RoBERTa, XLM-RoBERTa, DistilBERT, ELECTRA, DeBERTa-v2).

Elastic dimensions: which layers are kept (``layer_selection`` as for BERT), heads per kept layer and
FFN width per kept layer (one for all kept layers, or ``per_layer``). Not the hidden size: these
families' embeddings, relative-position tables (DeBERTa-v2) and embedding projections (ELECTRA)
are used at their full width, so a spec with ``hidden`` is refused (BERT's own implementation
searches it). The space is BERT's (``BertSpace``) over the base's dimensions read under the family's
own config names (DistilBERT: ``n_layers``, ``n_heads``, ``hidden_dim``, ``dim``).

The torch-side pieces (``extract``, ``supernet``, ``importance``) are imported inside the methods, so
that the coordinator can look a family up and build its space without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from core.types import SubnetConfig
from search_spaces.base import JobSpace, ModelFamily, model_type_of
from search_spaces.bert.family import ELASTIC, SPEC_FIELDS, divisors, ffn_widths
from search_spaces.bert.space import BaseDims, BertSpace
from search_spaces.encoder.anatomy import BERT_KEYS, Anatomy


def _get(config: Any, key: str) -> Any:
    return config.get(key) if isinstance(config, dict) else getattr(config, key, None)


def normalised_config(anatomy: Anatomy, config: Any) -> SimpleNamespace:
    """The base's config under BERT's names (what ``BertSpace`` / ``BaseDims`` read)."""
    d = anatomy.dims(config)
    return SimpleNamespace(
        model_type=_get(config, "model_type"),
        num_hidden_layers=d["layers"],
        num_attention_heads=d["heads"],
        intermediate_size=d["ffn"],
        hidden_size=d["hidden"],
        attention_head_size=d["head_size"],
        vocab_size=int(_get(config, "vocab_size") or 30522),
        max_position_embeddings=int(_get(config, "max_position_embeddings") or 512),
        type_vocab_size=int(_get(config, "type_vocab_size") or 0),
    )


@dataclass(frozen=True)
class EncoderSpace(BertSpace):
    """``BertSpace`` without a hidden-size dimension, checked against a base config under the family's names."""

    anatomy: Anatomy | None = None

    @classmethod
    def for_family(cls, anatomy: Anatomy, spec: Any, base_config: Any) -> "EncoderSpace":
        get = spec.get if isinstance(spec, dict) else (lambda k: getattr(spec, k, None))
        if get("hidden") is not None:
            raise ValueError(
                f"search_space.hidden: the hidden size is searched for bert only; {anatomy.name} models keep "
                "their hidden size (leave hidden out)"
            )
        space = cls.from_spec(spec, normalised_config(anatomy, base_config))
        object.__setattr__(space, "anatomy", anatomy)  # after the checks: they read only ``base``
        return space  # type: ignore[return-value]

    def check_base(self, base_config: Any) -> None:
        if not isinstance(base_config, BaseDims) and self.anatomy is not None:
            base_config = BaseDims.of(normalised_config(self.anatomy, base_config))
        super().check_base(base_config)


class EncoderFamily(ModelFamily):
    """A family of encoders whose anatomy ``anatomy`` describes; see the module docstring."""

    def __init__(self, anatomy: Anatomy) -> None:
        self.anatomy = anatomy
        self.name = anatomy.name
        self.model_types = anatomy.model_types
        self.config_keys = dict(zip(BERT_KEYS, (anatomy.keys.layers, anatomy.keys.heads, anatomy.keys.ffn, anatomy.keys.hidden)))

    def __repr__(self) -> str:
        return f"EncoderFamily({self.name!r})"

    def space(self, spec: Any, base_config: Any) -> JobSpace:
        return EncoderSpace.for_family(self.anatomy, self._with_defaults(spec, base_config), base_config)

    def default_choices(self, base_config: Any) -> dict[str, list[int]]:
        d = self.anatomy.dims(base_config)
        n = d["layers"]
        return {
            "layers": list(range(2, n + 1)) if n > 1 else [1],  # one kept layer is rarely worth measuring
            "heads": divisors(d["heads"]),
            "ffn": ffn_widths(d["hidden"], d["ffn"]),
        }

    def _with_defaults(self, spec: Any, base_config: Any) -> Any:
        get = spec.get if isinstance(spec, dict) else (lambda k: getattr(spec, k, None))
        missing = [k for k in ELASTIC if get(k) is None]
        if not missing:
            return spec
        defaults = self.default_choices(base_config)
        return {**{k: get(k) for k in SPEC_FIELDS}, **{k: defaults[k] for k in missing}}

    def full_subnet(self, base_config: Any) -> SubnetConfig:
        d = self.anatomy.dims(base_config)
        n = d["layers"]
        return SubnetConfig(tuple(range(n)), (d["heads"],) * n, (d["ffn"],) * n)

    def extract_subnet(self, model: Any, subnet: SubnetConfig) -> Any:
        from search_spaces.encoder.extract import extract_subnet

        return extract_subnet(self.anatomy, model, subnet)

    def extract_standalone(self, supernet: Any, subnet: SubnetConfig) -> Any:
        # The supernet is a full-size family model whose first heads and neurons are the trained slices:
        # cutting a subnet out of it is the same slicing as out of a teacher.
        from search_spaces.encoder.extract import extract_subnet

        return extract_subnet(self.anatomy, supernet, subnet)

    def sliced(self, supernet: Any, subnet: SubnetConfig) -> Any:
        from search_spaces.encoder.supernet import SlicedEncoder

        return SlicedEncoder(self.anatomy, supernet, subnet)

    def reorder_by_importance(self, model: Any, batches: list[dict[str, Any]]) -> dict[str, Any]:
        from search_spaces.encoder.importance import reorder_by_importance

        return reorder_by_importance(self.anatomy, model, batches)

    def count_parameters(self, model: Any) -> int:
        from search_spaces.encoder.extract import count_parameters

        return count_parameters(model)

    def modeling_files(self, config: Any) -> list[Path]:
        return [Path(__file__).with_name("modeling_hwnas_sliced.py")] if model_type_of(config) == "hwnas_sliced" else []

    def save_standalone(self, model: Any, out_dir: Any, tokenizer: Any = None) -> Path:
        from search_spaces.encoder.extract import save_standalone

        return save_standalone(model, out_dir, tokenizer)
