"""Model families and their search spaces, by the ``model_type`` of a Hugging Face config.

``FAMILIES`` maps a family name to the module that defines its ``FAMILY`` (a ``ModelFamily``),
imported only when asked for: looking a family up loads no torch. Adding a family is one module
and one line here, and passing ``tests/search_spaces/test_family_conformance.py``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from core.registry import load_entry
from search_spaces.base import JobSpace, ModelFamily, SearchSpace, model_type_of

FAMILIES: dict[str, str] = {
    "bert": "search_spaces.bert.family",
    "roberta": "search_spaces.encoder.roberta",
    "xlm-roberta": "search_spaces.encoder.xlm_roberta",
    "distilbert": "search_spaces.encoder.distilbert",
    "electra": "search_spaces.encoder.electra",
    "deberta-v2": "search_spaces.encoder.deberta_v2",
}


class UnsupportedModelType(ValueError):
    """A base model whose ``model_type`` no registered family covers."""


@lru_cache(maxsize=None)
def _load(name: str) -> ModelFamily:
    return load_entry(FAMILIES, name, attr="FAMILY", kind=ModelFamily, what="model family")


def supported_model_types() -> list[str]:
    return sorted(t for name in FAMILIES for t in _load(name).model_types)


def family_of(model_type: str | None) -> ModelFamily:
    """The family serving ``model_type``; ``UnsupportedModelType`` names it and lists the supported ones."""
    for name in FAMILIES:
        family = _load(name)
        if model_type in family.model_types:
            return family
    raise UnsupportedModelType(
        f"model_type {model_type!r} is not supported (supported: {', '.join(supported_model_types())})"
    )


def family_for(base_config: Any) -> ModelFamily:
    """The family of a base model's config (a ``read_config`` namespace, a dict or a transformers config)."""
    return family_of(model_type_of(base_config))


def space_for(spec: Any, base_config: Any) -> JobSpace:
    """The job's search space over ``base_config``, built by the base model's family."""
    return family_for(base_config).space(spec, base_config)


def full_subnet(base_config: Any) -> Any:
    """The base model itself as a subnet of its family's space."""
    return family_for(base_config).full_subnet(base_config)


__all__ = ["FAMILIES", "JobSpace", "ModelFamily", "SearchSpace", "UnsupportedModelType", "family_for", "family_of", "full_subnet", "space_for", "supported_model_types"]
