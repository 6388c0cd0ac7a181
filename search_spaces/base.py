"""The pluggable pieces of a model family: its search space, and what workers do with its models.

A family (BERT today; RoBERTa, XLM-R, DistilBERT, ELECTRA, DeBERTa-v2 next) is one module that
defines a ``ModelFamily`` and one line in ``search_spaces.FAMILIES``. Everything the coordinator
and the workers do to a model of that family goes through this interface, and
``tests/search_spaces/test_family_conformance.py`` runs the same checks on every registered family.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
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


class ModelFamily(ABC):
    """One family of encoders (``model_types`` of their Hugging Face configs) and its elastic dimensions.

    The model arguments are PyTorch ``*ForQuestionAnswering`` modules; implementations import torch
    inside their methods, so that the coordinator can look a family up without loading torch.
    """

    name: str
    model_types: tuple[str, ...]

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
