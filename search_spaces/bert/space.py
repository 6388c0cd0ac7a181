"""BERT search spaces: which layers are kept, heads and FFN width per layer, hidden size.

``BertSpace`` is the declarative space (choices as lists, or ranges with a step, expanded by the
job spec), checked against the base model, sampled through Optuna (so the sampler sees every
decision) or at random (supernet training), with the parameter count and MACs of a subnet.
``UniformBertSpace`` is the original one-width-for-all-layers space; ``from_spec`` builds a
``BertSpace`` from any spec, old or new, so existing jobs and studies keep their parameters.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Any

import optuna

from core.types import SubnetConfig
from search_spaces.base import JobSpace, SearchSpace


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
    def from_spec(cls, spec: Any, base_config: Any) -> "BertSpace":  # type: ignore[override]
        """Any job spec (uniform or per-layer, lists or ranges, hidden size) as a checked ``BertSpace``.

        A uniform spec samples the same Optuna parameters (``layers``, ``heads``, ``ffn``) as before.
        """
        return BertSpace.from_spec(spec, base_config)

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


LAYER_SELECTIONS = ("spread", "first", "search")
MAX_LAYER_SETS = 5000  # "search" enumerates every set of kept layers for Optuna's categorical choice


def expand_choices(value: Any, name: str) -> list[int]:
    """A list of ints, or a range ``{"min", "max", "step"}`` (inclusive of ``min``; values up to ``max``)."""
    if isinstance(value, dict):
        unknown = set(value) - {"min", "max", "step"}
        if unknown or "min" not in value or "max" not in value:
            raise ValueError(f"{name}: a range needs min and max (and optionally step), got {sorted(value)}")
        lo, hi, step = int(value["min"]), int(value["max"]), int(value.get("step", 1))
        if step < 1:
            raise ValueError(f"{name}: step must be at least 1, got {step}")
        if lo > hi:
            raise ValueError(f"{name}: min {lo} is above max {hi}")
        value = list(range(lo, hi + 1, step))
    values = [int(v) for v in value]
    if not values:
        raise ValueError(f"{name} needs at least one choice")
    if min(values) < 1:
        raise ValueError(f"{name} choices must be positive")
    return sorted(set(values))


@dataclass(frozen=True)
class BaseDims:
    """What the base (or supernet) model has, read from its config."""

    layers: int
    heads: int
    ffn: int
    hidden: int
    head_size: int
    vocab: int = 30522
    positions: int = 512
    type_vocab: int = 2

    @classmethod
    def of(cls, config: Any) -> "BaseDims":
        hidden = int(getattr(config, "hidden_size", 0) or 0)
        heads = int(config.num_attention_heads)
        return cls(
            layers=int(config.num_hidden_layers),
            heads=heads,
            ffn=int(config.intermediate_size),
            hidden=hidden,
            head_size=int(getattr(config, "attention_head_size", 0) or (hidden // heads if hidden else 0)),
            vocab=int(getattr(config, "vocab_size", 30522)),
            positions=int(getattr(config, "max_position_embeddings", 512)),
            type_vocab=int(getattr(config, "type_vocab_size", 2)),
        )


@dataclass(frozen=True)
class BertSpace(JobSpace):
    """Declarative BERT space over a base model.

    ``layers``: how many encoder layers are kept; ``layer_selection`` says which: ``spread`` evenly
    (first and last included, DynaBERT-style), the ``first`` k, or ``search`` (the sampler picks the
    set). ``heads`` / ``ffn``: choices per kept layer, one for all kept layers unless ``per_layer``.
    ``hidden``: hidden-size choices (None: the base's). Every choice is checked against ``base``.
    """

    base: BaseDims
    layers: tuple[int, ...]
    heads: tuple[int, ...]
    ffn: tuple[int, ...]
    hidden: tuple[int, ...] | None = None
    per_layer: bool = False
    layer_selection: str = "spread"
    _layer_sets: dict[int, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("layers", "heads", "ffn") + (("hidden",) if self.hidden is not None else ()):
            object.__setattr__(self, name, tuple(expand_choices(list(getattr(self, name)), f"search_space.{name}")))
        self.check_base(self.base)
        if self.layer_selection == "search":
            for n in self.layers:
                count = math.comb(self.base.layers, n)
                if count > MAX_LAYER_SETS:
                    raise ValueError(
                        f"search_space.layer_selection: 'search' over {count} sets of {n} of {self.base.layers} "
                        f"layers is too many (at most {MAX_LAYER_SETS}); use 'spread' or 'first'"
                    )
                self._layer_sets[n] = tuple(
                    "-".join(map(str, c)) for c in itertools.combinations(range(self.base.layers), n)
                )

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_spec(cls, spec: Any, base_config: Any) -> "BertSpace":
        """From a job's ``search_space`` (a pydantic spec or a plain dict); ``ValueError`` names the field."""
        get = (lambda k, d=None: spec.get(k, d)) if isinstance(spec, dict) else (lambda k, d=None: getattr(spec, k, d))
        hidden = get("hidden")
        return cls(
            base=BaseDims.of(base_config),
            layers=tuple(expand_choices(get("layers"), "search_space.layers")),
            heads=tuple(expand_choices(get("heads"), "search_space.heads")),
            ffn=tuple(expand_choices(get("ffn"), "search_space.ffn")),
            hidden=None if hidden is None else tuple(expand_choices(hidden, "search_space.hidden")),
            per_layer=bool(get("per_layer", False)),
            layer_selection=str(get("layer_selection", "spread") or "spread"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The space as data (stable: used in supernet cache keys)."""
        return {
            "layers": list(self.layers),
            "heads": list(self.heads),
            "ffn": list(self.ffn),
            "hidden": None if self.hidden is None else list(self.hidden),
            "per_layer": self.per_layer,
            "layer_selection": self.layer_selection,
            "base": {"layers": self.base.layers, "heads": self.base.heads, "ffn": self.base.ffn,
                     "hidden": self.base.hidden, "head_size": self.base.head_size},
        }

    def check_base(self, base_config: Any) -> None:
        base = base_config if isinstance(base_config, BaseDims) else BaseDims.of(base_config)
        if self.layer_selection not in LAYER_SELECTIONS:
            raise ValueError(f"search_space.layer_selection: {self.layer_selection!r} is not one of {LAYER_SELECTIONS}")
        if self.layers[-1] > base.layers:
            raise ValueError(f"search_space.layers: {self.layers[-1]} exceeds the base model's {base.layers} layers")
        if self.heads[-1] > base.heads:
            raise ValueError(f"search_space.heads: {self.heads[-1]} exceeds the base model's {base.heads} heads")
        if self.ffn[-1] > base.ffn:
            raise ValueError(f"search_space.ffn: {self.ffn[-1]} exceeds the base model's FFN width {base.ffn}")
        if self.hidden is not None:
            if base.hidden and self.hidden[-1] > base.hidden:
                raise ValueError(f"search_space.hidden: {self.hidden[-1]} exceeds the base model's hidden size {base.hidden}")
            bad = [h for h in self.hidden if base.head_size and h % base.head_size]
            if bad:
                raise ValueError(
                    f"search_space.hidden: {bad} not a multiple of the base model's attention head size {base.head_size}"
                )

    def check_within(self, outer: "BertSpace") -> None:
        """``ValueError`` unless every subnet of this space is one of ``outer``'s (a job narrowing a supernet's space)."""
        for name in ("layers", "heads", "ffn"):
            extra = sorted(set(getattr(self, name)) - set(getattr(outer, name)))
            if extra:
                raise ValueError(f"search_space.{name}: {extra} are outside the supernet's space {list(getattr(outer, name))}")
        mine = set(self.hidden or (self.base.hidden,))
        theirs = set(outer.hidden or (outer.base.hidden,))
        if mine - theirs:
            raise ValueError(f"search_space.hidden: {sorted(mine - theirs)} are outside the supernet's space {sorted(theirs)}")
        if self.per_layer and not outer.per_layer:
            raise ValueError("search_space.per_layer: the supernet was trained with one width for all layers")
        if self.layer_selection != outer.layer_selection and outer.layer_selection != "search":
            raise ValueError(
                f"search_space.layer_selection: {self.layer_selection!r} keeps layers the supernet "
                f"({outer.layer_selection!r}) was not trained on"
            )

    # -- subnets ------------------------------------------------------------------------------

    def kept(self, n: int) -> tuple[int, ...]:
        if self.layer_selection == "first":
            return tuple(range(n))
        return kept_layers(self.base.layers, n)

    def _hidden(self, value: int | None) -> int | None:
        return None if value is None or value == self.base.hidden else value

    def sample(self, trial: optuna.Trial) -> SubnetConfig:
        n = trial.suggest_categorical("layers", list(self.layers))
        if self.layer_selection == "search":
            chosen = trial.suggest_categorical(f"kept_{n}", list(self._layer_sets[n]))
            layers = tuple(int(i) for i in chosen.split("-"))
        else:
            layers = self.kept(n)
        hidden = trial.suggest_categorical("hidden", list(self.hidden)) if self.hidden and len(self.hidden) > 1 else (
            self.hidden[0] if self.hidden else None
        )
        if self.per_layer:
            heads = tuple(trial.suggest_categorical(f"heads_{i}", list(self.heads)) for i in layers)
            ffn = tuple(trial.suggest_categorical(f"ffn_{i}", list(self.ffn)) for i in layers)
        else:
            heads = (trial.suggest_categorical("heads", list(self.heads)),) * n
            ffn = (trial.suggest_categorical("ffn", list(self.ffn)),) * n
        return SubnetConfig(layers, heads, ffn, self._hidden(hidden))

    def random_subnet(self, rng: random.Random) -> SubnetConfig:
        n = rng.choice(self.layers)
        layers = tuple(sorted(rng.sample(range(self.base.layers), n))) if self.layer_selection == "search" else self.kept(n)
        hidden = rng.choice(self.hidden) if self.hidden else None
        if self.per_layer:
            heads = tuple(rng.choice(self.heads) for _ in layers)
            ffn = tuple(rng.choice(self.ffn) for _ in layers)
        else:
            heads, ffn = (rng.choice(self.heads),) * n, (rng.choice(self.ffn),) * n
        return SubnetConfig(layers, heads, ffn, self._hidden(hidden))

    def largest(self) -> SubnetConfig:
        return self._uniform(self.layers[-1], self.heads[-1], self.ffn[-1], self.hidden[-1] if self.hidden else None)

    def anchors(self, count: int) -> list[SubnetConfig]:
        """Up to ``count`` fixed first trials: the largest subnet, then uniform shrinks of it.

        Why: a few hundred trials cannot cover a space of 10^8 per-layer subnets, and the answer a
        user wants (the fastest subnet that keeps 99% of the teacher's F1) lies near the largest;
        seeding the population with the extremes of the width/depth diagonal, as once-for-all and
        HAT start their evolution from, gives the sampler those points to mutate from."""
        if count <= 0:
            return []
        n_max, h, f = self.layers[-1], self.heads[-1], self.ffn[-1]
        hidden = self.hidden[-1] if self.hidden else None

        def below(choices: tuple[int, ...], frac: float) -> int:
            return min(choices, key=lambda c: (abs(c - choices[-1] * frac), -c))

        candidates = [self.largest()]
        shallower = list(reversed(self.layers[:-1]))
        for i, frac in enumerate((0.75, 0.5, 0.25)):
            if len(shallower) > i:
                candidates.append(self._uniform(shallower[i], h, f, hidden))
            candidates.append(self._uniform(n_max, h, below(self.ffn, frac), hidden))
            candidates.append(self._uniform(n_max, below(self.heads, frac), below(self.ffn, frac), hidden))
        out: list[SubnetConfig] = []
        for c in candidates:
            if c not in out and self.contains(c):
                out.append(c)
        return out[:count]

    def params_of(self, subnet: SubnetConfig) -> dict[str, Any]:
        """The Optuna parameters that make ``sample`` return ``subnet`` (for ``study.enqueue_trial``)."""
        if not self.contains(subnet):
            raise ValueError(f"subnet {subnet.encoding()} is not in the search space")
        n = subnet.num_layers
        params: dict[str, Any] = {"layers": n}
        if self.layer_selection == "search":
            params[f"kept_{n}"] = "-".join(map(str, subnet.layers))
        if self.hidden and len(self.hidden) > 1:
            params["hidden"] = subnet.hidden or self.base.hidden
        if self.per_layer:
            for i, heads, ffn in zip(subnet.layers, subnet.heads, subnet.ffn):
                params[f"heads_{i}"], params[f"ffn_{i}"] = heads, ffn
        else:
            params["heads"], params["ffn"] = subnet.heads[0], subnet.ffn[0]
        return params

    def smallest(self) -> SubnetConfig:
        return self._uniform(self.layers[0], self.heads[0], self.ffn[0], self.hidden[0] if self.hidden else None)

    def _uniform(self, n: int, heads: int, ffn: int, hidden: int | None) -> SubnetConfig:
        """``n`` kept layers, each with ``heads`` heads and FFN width ``ffn``."""
        return SubnetConfig(self.kept(n), (heads,) * n, (ffn,) * n, self._hidden(hidden))

    def contains(self, subnet: SubnetConfig) -> bool:
        hidden = subnet.hidden or self.base.hidden
        return (
            subnet.num_layers in self.layers
            and (self.layer_selection == "search" or subnet.layers == self.kept(subnet.num_layers))
            and all(h in self.heads for h in subnet.heads)
            and all(f in self.ffn for f in subnet.ffn)
            and (self.per_layer or subnet.uniform)
            and hidden in (self.hidden or (self.base.hidden,))
        )

    def size(self) -> int:
        total = 0
        for n in self.layers:
            sets = math.comb(self.base.layers, n) if self.layer_selection == "search" else 1
            widths = (len(self.heads) * len(self.ffn)) ** n if self.per_layer else len(self.heads) * len(self.ffn)
            total += sets * widths
        return total * (len(self.hidden) if self.hidden else 1)

    # -- cost -----------------------------------------------------------------------------------

    def parameters(self, subnet: SubnetConfig) -> int:
        return count_subnet_parameters(self.base, subnet)

    def macs(self, subnet: SubnetConfig, seq_len: int) -> int:
        return subnet_macs(self.base, subnet, seq_len)


def count_subnet_parameters(base: BaseDims, subnet: SubnetConfig) -> int:
    """Parameters of the standalone model ``extract_standalone`` makes (embeddings, encoder, QA head)."""
    h = subnet.hidden or base.hidden
    total = (base.vocab + base.positions + base.type_vocab) * h + 2 * h
    for heads, ffn in zip(subnet.heads, subnet.ffn):
        inner = heads * base.head_size
        total += 3 * (h * inner + inner) + inner * h + h + 2 * h  # Q, K, V, attention output, LayerNorm
        total += h * ffn + ffn + ffn * h + h + 2 * h  # FFN in, out, LayerNorm
    return total + 2 * h + 2


def subnet_macs(base: BaseDims, subnet: SubnetConfig, seq_len: int) -> int:
    """Multiply-accumulates of one sequence of ``seq_len`` tokens (matrix products; no softmax/LayerNorm)."""
    h, s = subnet.hidden or base.hidden, seq_len
    total = 0
    for heads, ffn in zip(subnet.heads, subnet.ffn):
        inner = heads * base.head_size
        total += 3 * s * h * inner + 2 * s * s * inner + s * inner * h + 2 * s * h * ffn
    return total + s * h * 2


