"""How a deployed QA model pads its windows: one fixed length, length buckets, or each window's own length.

Why: eval windows are right-padded to ``max_seq_length`` (``core.qa.features``), but most are much
shorter (XQuAD-en with MiniLM's tokenizer: p50 164 of 384 tokens), so at a fixed 384 more than half
of the compute is padding. Intel's MLPerf BERT Offline code sorts samples by length for the same
reason. A policy only changes how much padding a window carries: the windows, and the tokens the
model attends to, are the same, so start/end logits of real tokens and hence F1 are the same too
(``run_with_policy`` scatters them back into the ``[N, max_seq_length]`` layout post-processing reads).

- ``fixed``: every window at ``max_length`` (what MLPerf's closed division measures);
- ``buckets``: the smallest bucket that holds the window (e.g. 128/192/256/384), one static shape each;
- ``dynamic``: the window's own length rounded up to ``multiple`` tokens, on a model with a dynamic
  sequence dimension (OpenVINO compiles a kernel per shape it meets).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

POLICIES = ("fixed", "buckets", "dynamic")
BUCKET_FRACTIONS = (1 / 3, 1 / 2, 2 / 3)  # of max_length, rounded up to BUCKET_STEP: 384 -> 128/192/256/384
BUCKET_STEP = 32
DYNAMIC_MULTIPLE = 16
PAD_LOGIT = -np.inf  # what a padded position's logit reads after scattering: never a candidate

Logits = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class LengthPolicy:
    """One sequence-length policy for windows of at most ``max_length`` tokens."""

    name: str
    max_length: int
    buckets: tuple[int, ...] = ()  # the static lengths compiled (fixed: (max_length,)); () for dynamic
    multiple: int = DYNAMIC_MULTIPLE

    @classmethod
    def make(cls, name: str, max_length: int, buckets: Sequence[int] | None = None) -> "LengthPolicy":
        """Validated policy: bucket lengths above ``max_length`` are dropped and ``max_length`` is always
        the last bucket, so every window fits one."""
        if name not in POLICIES:
            raise ValueError(f"length policy must be one of {', '.join(POLICIES)}, got {name!r}")
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length}")
        if name == "fixed":
            return cls(name, max_length, (max_length,))
        if name == "dynamic":
            return cls(name, max_length, ())
        chosen = default_buckets(max_length) if buckets is None else tuple(int(b) for b in buckets)
        if any(b < 1 for b in chosen):
            raise ValueError(f"bucket lengths must be positive, got {list(chosen)}")
        return cls(name, max_length, tuple(sorted({b for b in chosen if b < max_length} | {max_length})))

    @property
    def static(self) -> bool:
        """True where each padded length is one of a few shapes compiled ahead (fixed, buckets)."""
        return self.name != "dynamic"

    def padded_length(self, real: int) -> int:
        """The length a window of ``real`` tokens runs at."""
        if not 1 <= real <= self.max_length:
            raise ValueError(f"a window has {real} tokens; this policy holds 1 to {self.max_length}")
        if not self.static:
            return min(self.max_length, -(-real // self.multiple) * self.multiple)
        return next(b for b in self.buckets if b >= real)

    def padded_lengths(self, lengths: np.ndarray) -> np.ndarray:
        return np.array([self.padded_length(int(n)) for n in lengths], dtype=np.int64)

    def padding_share(self, lengths: np.ndarray) -> float:
        """Share of the computed tokens that are padding (0 = none)."""
        padded = self.padded_lengths(lengths)
        return float(1.0 - lengths.sum() / padded.sum()) if len(lengths) else 0.0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "max_length": self.max_length}
        if self.name == "buckets":
            d["buckets"] = list(self.buckets)
        if self.name == "dynamic":
            d["multiple"] = self.multiple
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LengthPolicy":
        policy = cls.make(d["name"], int(d["max_length"]), d.get("buckets"))
        return policy if "multiple" not in d else cls(policy.name, policy.max_length, policy.buckets, int(d["multiple"]))


def default_buckets(max_length: int) -> tuple[int, ...]:
    """A third, a half and two thirds of ``max_length`` (rounded up to 32 tokens) and itself: 128/192/256/384
    for 384 (the split Intel-style bucketing uses), 96/128/192/256 for 256, 64/96/128 for 128."""
    return tuple(sorted({min(max_length, -(-int(max_length * f) // BUCKET_STEP) * BUCKET_STEP) for f in BUCKET_FRACTIONS} | {max_length}))


def real_lengths(attention_mask: np.ndarray) -> np.ndarray:
    """Tokens of each right-padded window (its mask must be ones, then zeros); ``ValueError`` otherwise:
    a policy that trims padding must never cut a real token."""
    mask = np.asarray(attention_mask)
    lengths = mask.sum(axis=1).astype(np.int64)
    prefix = np.arange(mask.shape[1])[None, :] < lengths[:, None]
    bad = np.flatnonzero((mask.astype(bool) != prefix).any(axis=1) | (lengths < 1))
    if bad.size:
        raise ValueError(f"window {int(bad[0])} is not right-padded (its attention mask is not ones then zeros)")
    return lengths


@dataclass(frozen=True)
class PlannedBatch:
    """Rows of the feature arrays that run together, all padded to ``length``."""

    length: int
    rows: np.ndarray


def plan_batches(lengths: np.ndarray, policy: LengthPolicy, batch_size: int) -> list[PlannedBatch]:
    """Windows sorted by padded length (stable) and cut into batches of ``batch_size``, the Offline order:
    a static policy never mixes padded lengths in a batch (one compiled shape each); ``dynamic`` cuts the
    sorted order into consecutive batches, each padded to its longest window (Intel's MLPerf BERT way)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    padded = policy.padded_lengths(np.asarray(lengths))
    order = np.argsort(padded, kind="stable")
    batches: list[PlannedBatch] = []
    if not policy.static:  # consecutive windows of the sorted order, each batch at its longest one's length
        for i in range(0, len(order), batch_size):
            rows = order[i : i + batch_size]
            batches.append(PlannedBatch(int(padded[rows].max()), rows))
        return batches
    for length in np.unique(padded):
        rows = order[padded[order] == length]
        batches.extend(PlannedBatch(int(length), rows[i : i + batch_size]) for i in range(0, len(rows), batch_size))
    return batches


def batch_inputs(arrays: dict[str, np.ndarray], batch: PlannedBatch) -> dict[str, np.ndarray]:
    """The batch's rows of each ``[N, max_length]`` array, cut to its padded length (contiguous)."""
    return {name: np.ascontiguousarray(a[batch.rows, : batch.length]) for name, a in arrays.items()}


def iter_policy_batches(
    arrays: dict[str, np.ndarray], policy: LengthPolicy, batch_size: int
) -> Iterator[tuple[PlannedBatch, dict[str, np.ndarray]]]:
    lengths = real_lengths(arrays["attention_mask"])
    for batch in plan_batches(lengths, policy, batch_size):
        yield batch, batch_inputs(arrays, batch)


def run_with_policy(
    run: Callable[[dict[str, np.ndarray]], Logits],
    arrays: dict[str, np.ndarray],
    policy: LengthPolicy,
    batch_size: int,
) -> Logits:
    """Start and end logits ``[N, max_length]`` of every window, each run at its policy length; the
    positions beyond a batch's length read ``PAD_LOGIT`` (post-processing ignores padding)."""
    n, width = arrays["input_ids"].shape
    if width != policy.max_length:
        raise ValueError(f"windows are {width} tokens wide; the policy is for {policy.max_length}")
    starts = np.full((n, width), PAD_LOGIT, dtype=np.float32)
    ends = np.full((n, width), PAD_LOGIT, dtype=np.float32)
    for batch, inputs in iter_policy_batches(arrays, policy, batch_size):
        s, e = run(inputs)
        starts[batch.rows, : batch.length] = s
        ends[batch.rows, : batch.length] = e
    return starts, ends
