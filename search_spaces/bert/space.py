"""BERT search space with one width per dimension for all kept layers (per-layer widths come later)."""

from __future__ import annotations

from typing import Any

import optuna

from nas.types import SubnetConfig
from search_spaces.base import SearchSpace


def kept_layers(base_layers: int, keep: int) -> tuple[int, ...]:
    """Spread ``keep`` layers evenly over the base encoder, first and last included (DynaBERT-style depth)."""
    if not 1 <= keep <= base_layers:
        raise ValueError(f"cannot keep {keep} of {base_layers} layers")
    if keep == 1:
        return (0,)
    step = (base_layers - 1) / (keep - 1)
    return tuple(sorted({round(i * step) for i in range(keep)}))


class UniformBertSpace(SearchSpace):
    def __init__(self, *, layers: list[int], heads: list[int], ffn: list[int], base_layers: int) -> None:
        self.layers, self.heads, self.ffn = sorted(layers), sorted(heads), sorted(ffn)
        self.base_layers = base_layers

    @classmethod
    def from_spec(cls, spec: Any, base_config: Any) -> "UniformBertSpace":
        space = cls(layers=spec.layers, heads=spec.heads, ffn=spec.ffn, base_layers=base_config.num_hidden_layers)
        space.check_base(base_config)
        return space

    def sample(self, trial: optuna.Trial) -> SubnetConfig:
        n = trial.suggest_categorical("layers", self.layers)
        h = trial.suggest_categorical("heads", self.heads)
        f = trial.suggest_categorical("ffn", self.ffn)
        return self.subnet(n, h, f)

    def subnet(self, layers: int, heads: int, ffn: int) -> SubnetConfig:
        return SubnetConfig(kept_layers(self.base_layers, layers), (heads,) * layers, (ffn,) * layers)

    def largest(self) -> SubnetConfig:
        return self.subnet(self.layers[-1], self.heads[-1], self.ffn[-1])

    def check_base(self, base_config: Any) -> None:
        if self.layers[-1] > base_config.num_hidden_layers:
            raise ValueError(
                f"search_space.layers: {self.layers[-1]} exceeds the base model's {base_config.num_hidden_layers} layers"
            )
        if self.heads[-1] > base_config.num_attention_heads:
            raise ValueError(
                f"search_space.heads: {self.heads[-1]} exceeds the base model's {base_config.num_attention_heads} heads"
            )
        if self.ffn[-1] > base_config.intermediate_size:
            raise ValueError(
                f"search_space.ffn: {self.ffn[-1]} exceeds the base model's FFN width {base_config.intermediate_size}"
            )

    def size(self) -> int:
        return len(self.layers) * len(self.heads) * len(self.ffn)
