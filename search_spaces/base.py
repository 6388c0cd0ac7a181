"""The pluggable pieces of a model family: its search space, and what workers do with its models.

A family is one module that defines a ``ModelFamily`` and one line in ``search_spaces.FAMILIES``:
BERT has its own implementation (``search_spaces.bert``: the hidden size is elastic too); RoBERTa,
XLM-R, DistilBERT, ELECTRA and DeBERTa-v2 share one (``search_spaces.encoder``), driven by each
one's anatomy. Everything the coordinator and the workers do to a model of that family goes
through this interface, and
``tests/search_spaces/test_family_conformance.py`` runs the same checks on every registered family.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import optuna

from core.types import SubnetConfig


class SearchSpace(ABC):
    """Narrow on purpose: sample a subnet, check the space against a base model, describe it."""

    @abstractmethod
    def sample(self, trial: optuna.Trial) -> SubnetConfig:
        """Draw one subnet through ``trial.suggest_*`` so the sampler sees every decision."""

    @abstractmethod
    def check_base(self, base_config: Any) -> None:
        """Raise ``ValueError`` naming the offending dimension if the base model cannot host the space."""

    @abstractmethod
    def size(self) -> int:
        """Number of distinct subnets."""


class JobSpace(SearchSpace):
    """A search space as the job's stages use it: the search (anchors, replaying params), supernet
    training (largest, smallest, random subnets) and the caches (``to_dict`` is hashed into keys)."""

    @abstractmethod
    def largest(self) -> SubnetConfig: ...

    @abstractmethod
    def smallest(self) -> SubnetConfig: ...

    @abstractmethod
    def random_subnet(self, rng: random.Random) -> SubnetConfig:
        """A uniformly drawn subnet (the sandwich rule's random members)."""

    @abstractmethod
    def anchors(self, count: int) -> list[SubnetConfig]:
        """The fixed first trials of a search: subnets spread over the space."""

    @abstractmethod
    def params_of(self, subnet: SubnetConfig) -> dict[str, Any]:
        """The Optuna parameters that ``sample`` draws for ``subnet`` (to enqueue it)."""

    @abstractmethod
    def contains(self, subnet: SubnetConfig) -> bool: ...

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Everything that defines the space, JSON-serialisable (hashed into the supernet's cache key)."""


def model_type_of(config: Any) -> str | None:
    """The ``model_type`` of a config: a ``read_config`` namespace, a dict or a transformers config."""
    return config.get("model_type") if isinstance(config, dict) else getattr(config, "model_type", None)


class ModelFamily(ABC):
    """One family of encoders (``model_types`` of their Hugging Face configs) and its elastic dimensions.

    The model arguments are PyTorch ``*ForQuestionAnswering`` modules; implementations import torch
    inside their methods, so that the coordinator can look a family up without loading torch.
    """

    name: str
    model_types: tuple[str, ...]
    # BERT's config field name -> this family's (DistilBERT: n_layers, n_heads, hidden_dim, dim)
    config_keys: dict[str, str] = {k: k for k in ("num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_size")}

    @abstractmethod
    def space(self, spec: Any, base_config: Any) -> JobSpace:
        """The job's search space over a base model: ``spec`` is the job's
        ``search_space`` (a pydantic model or its dict), ``base_config`` the base's config.
        A left-out (None) ``layers``, ``heads`` or ``ffn`` takes its ``default_choices``."""

    @abstractmethod
    def default_choices(self, base_config: Any) -> dict[str, list[int]]:
        """Choices of ``layers``, ``heads`` and ``ffn`` for a job that leaves them out: read from the
        base's config (whose field names are the family's), always accepted by ``space``, and
        containing the full model, so that a spec needs no knowledge of the base's sizes."""

    @abstractmethod
    def full_subnet(self, base_config: Any) -> SubnetConfig:
        """The base model itself as a subnet: every layer, head and FFN neuron."""

    @abstractmethod
    def extract_subnet(self, model: Any, subnet: SubnetConfig) -> Any:
        """A standalone model holding the subnet's slices of a full model's weights (a teacher)."""

    @abstractmethod
    def extract_standalone(self, supernet: Any, subnet: SubnetConfig) -> Any:
        """A standalone model cut from a trained (importance-ordered) supernet."""

    @abstractmethod
    def sliced(self, supernet: Any, subnet: SubnetConfig) -> Any:
        """A view of the supernet that runs only the subnet's slices (shares its weights: supernet training)."""

    @abstractmethod
    def reorder_by_importance(self, model: Any, batches: list[dict[str, Any]]) -> dict[str, Any]:
        """Permute heads and FFN neurons in place, most important first; returns the orders applied."""

    @abstractmethod
    def count_parameters(self, model: Any) -> int:
        """Parameters of a model of this family (embeddings included), as the model card reports them."""

    # -- saving and exporting (concrete: a family overrides them where its models need it) -----------

    def modeling_files(self, config: Any) -> list[Path]:
        """Files to copy beside a saved ``config`` (a transformers config or its dict) that names them in its
        ``auto_map`` (a model class of hwnas's own, for subnets the family's config cannot describe); none by default."""
        return []

    def save_standalone(self, model: Any, out_dir: Any, tokenizer: Any = None) -> Path:
        """Save a standalone subnet (``extract_*``'s result) so that ``AutoModelForQuestionAnswering.from_pretrained``
        loads it: ``save_pretrained``, the tokenizer, and ``modeling_files`` beside the config."""
        import shutil

        out = Path(out_dir)
        model.save_pretrained(out)
        if tokenizer is not None:
            tokenizer.save_pretrained(out)
        for f in self.modeling_files(model.config):
            shutil.copyfile(f, out / Path(f).name)
        return out
