"""The search-space interface: a declarative set of choices that Optuna samples subnets from."""

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
