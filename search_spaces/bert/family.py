"""BERT as a ``ModelFamily``: layers, heads, FFN neurons and hidden size are elastic.

The torch-side pieces live beside this file (``extract``, ``importance``, ``supernet``) and are
imported inside the methods, so that the coordinator can build a ``BertSpace`` without torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.types import SubnetConfig
from search_spaces.base import JobSpace, ModelFamily, model_type_of


def _cfg(config: Any, key: str) -> Any:
    return config[key] if isinstance(config, dict) else getattr(config, key)


ELASTIC = ("layers", "heads", "ffn")  # the dimensions a job spec may leave to the base's defaults
SPEC_FIELDS = (*ELASTIC, "hidden", "per_layer", "layer_selection")


def divisors(n: int) -> list[int]:
    """Head counts that split the base's heads evenly (12 -> 1, 2, 3, 4, 6, 12): the usual pruning grid."""
    return [d for d in range(1, n + 1) if n % d == 0]


def ffn_widths(hidden: int, intermediate: int) -> list[int]:
    """Multiples of the hidden width up to the intermediate size, which is always included (the full FFN)."""
    step = hidden if 0 < hidden <= intermediate else intermediate
    widths = list(range(step, intermediate + 1, step))
    return widths if widths[-1] == intermediate else [*widths, intermediate]


class BertFamily(ModelFamily):
    name = "bert"
    model_types = ("bert",)

    def space(self, spec: Any, base_config: Any) -> JobSpace:
        from search_spaces.bert.space import BertSpace

        return BertSpace.from_spec(self._with_defaults(spec, base_config), base_config)

    def default_choices(self, base_config: Any) -> dict[str, list[int]]:
        n = int(_cfg(base_config, "num_hidden_layers"))
        return {
            "layers": list(range(2, n + 1)) if n > 1 else [1],  # one kept layer is rarely worth measuring
            "heads": divisors(int(_cfg(base_config, "num_attention_heads"))),
            "ffn": ffn_widths(int(_cfg(base_config, "hidden_size")), int(_cfg(base_config, "intermediate_size"))),
        }

    def _with_defaults(self, spec: Any, base_config: Any) -> Any:
        """``spec`` with its left-out dimensions filled: a spec used before ``nas.spec_defaults`` filled it
        (validated, benchmarked) builds the same space as the filled one."""
        get = spec.get if isinstance(spec, dict) else (lambda k: getattr(spec, k, None))
        missing = [k for k in ELASTIC if get(k) is None]
        if not missing:
            return spec
        defaults = self.default_choices(base_config)
        return {**{k: get(k) for k in SPEC_FIELDS}, **{k: defaults[k] for k in missing}}

    def full_subnet(self, base_config: Any) -> SubnetConfig:
        n = int(_cfg(base_config, "num_hidden_layers"))
        heads, ffn = int(_cfg(base_config, "num_attention_heads")), int(_cfg(base_config, "intermediate_size"))
        return SubnetConfig(tuple(range(n)), (heads,) * n, (ffn,) * n)

    def extract_subnet(self, model: Any, subnet: SubnetConfig) -> Any:
        from search_spaces.bert.extract import extract_subnet

        return extract_subnet(model, subnet)

    def extract_standalone(self, supernet: Any, subnet: SubnetConfig) -> Any:
        from search_spaces.bert.extract import extract_standalone

        return extract_standalone(supernet, subnet)

    def sliced(self, supernet: Any, subnet: SubnetConfig) -> Any:
        from search_spaces.bert.supernet import SlicedSubnet

        return SlicedSubnet(supernet, subnet)

    def reorder_by_importance(self, model: Any, batches: list[dict[str, Any]]) -> dict[str, Any]:
        from search_spaces.bert.importance import reorder_by_importance

        return reorder_by_importance(model, batches)

    def count_parameters(self, model: Any) -> int:
        from search_spaces.bert.extract import count_parameters

        return count_parameters(model)

    def modeling_files(self, config: Any) -> list[Path]:
        """``modeling_hwnas_bert.py`` for an ``hwnas_bert`` config (per-layer widths, any hidden size)."""
        return [Path(__file__).with_name("modeling_hwnas_bert.py")] if model_type_of(config) == "hwnas_bert" else []

    def save_standalone(self, model: Any, out_dir: Any, tokenizer: Any = None) -> Path:
        from search_spaces.bert.extract import save_standalone

        save_standalone(model, out_dir, tokenizer)
        return Path(out_dir)


FAMILY = BertFamily()
