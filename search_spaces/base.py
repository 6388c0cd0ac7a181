"""The pluggable pieces of a model family: its search space, and what workers do with its models.

A family (BERT today; RoBERTa, XLM-R, DistilBERT, ELECTRA, DeBERTa-v2 next) is one module that
defines a ``ModelFamily`` and one line in ``search_spaces.FAMILIES``. Everything the coordinator
and the workers do to a model of that family goes through this interface, and
``tests/search_spaces/test_family_conformance.py`` runs the same checks on every registered family.
"""

from __future__ import annotations

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


class ModelFamily(ABC):
    """One family of encoders (``model_types`` of their Hugging Face configs) and its elastic dimensions.

    The model arguments are PyTorch ``*ForQuestionAnswering`` modules; implementations import torch
    inside their methods, so that the coordinator can look a family up without loading torch.
    """

    name: str
    model_types: tuple[str, ...]

    @abstractmethod
    def space(self, spec: Any, base_config: Any) -> Any:
        """The job's search space (a ``SearchSpace``) over a base model: ``spec`` is the job's
        ``search_space`` (a pydantic model or its dict), ``base_config`` the base's config."""

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
