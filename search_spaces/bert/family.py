"""BERT as a ``ModelFamily``: layers, heads, FFN neurons and hidden size are elastic.

The torch-side pieces live beside this file (``extract``, ``importance``, ``supernet``) and are
imported inside the methods, so that the coordinator can build a ``BertSpace`` without torch.
"""

from __future__ import annotations

from typing import Any

from core.types import SubnetConfig
from search_spaces.base import JobSpace, ModelFamily


def _cfg(config: Any, key: str) -> Any:
    return config[key] if isinstance(config, dict) else getattr(config, key)


class BertFamily(ModelFamily):
    name = "bert"
    model_types = ("bert",)

    def space(self, spec: Any, base_config: Any) -> JobSpace:
        from search_spaces.bert.space import BertSpace

        return BertSpace.from_spec(spec, base_config)

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


FAMILY = BertFamily()
