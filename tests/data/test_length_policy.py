"""Sequence-length policies (``core.qa.length_policy``): padded lengths, the Offline batch plan, and the
scatter back into the stored window layout (pure numpy; the OpenVINO proof of identical F1 is in
tests/workers/test_length_policy_ir.py)."""

from __future__ import annotations

import numpy as np
import pytest

from core.qa.length_policy import LengthPolicy, plan_batches, real_lengths, run_with_policy


def _mask(lengths: list[int], width: int) -> np.ndarray:
    return (np.arange(width)[None, :] < np.array(lengths)[:, None]).astype(np.int64)


def test_padded_lengths_per_policy() -> None:
    fixed = LengthPolicy.make("fixed", 384)
    buckets = LengthPolicy.make("buckets", 384)
    dynamic = LengthPolicy.make("dynamic", 384)
    assert [fixed.padded_length(n) for n in (1, 164, 384)] == [384, 384, 384]
    assert [buckets.padded_length(n) for n in (1, 128, 129, 193, 257, 384)] == [128, 128, 192, 256, 384, 384]
    assert [dynamic.padded_length(n) for n in (1, 16, 17, 383, 384)] == [16, 16, 32, 384, 384]


def test_buckets_are_cut_to_max_length_and_always_hold_it() -> None:
    assert LengthPolicy.make("buckets", 384).buckets == (128, 192, 256, 384)
    assert LengthPolicy.make("buckets", 256).buckets == (96, 128, 192, 256)
    assert LengthPolicy.make("buckets", 128).buckets == (64, 96, 128)
    assert LengthPolicy.make("buckets", 256, [128, 192, 256, 384]).buckets == (128, 192, 256)
    assert LengthPolicy.make("buckets", 200, [64, 300]).buckets == (64, 200)
    assert LengthPolicy.from_dict(LengthPolicy.make("buckets", 256).to_dict()) == LengthPolicy.make("buckets", 256)


@pytest.mark.parametrize(
    "name, max_length, buckets, message",
    [("padded", 384, None, "length policy must be one of"), ("buckets", 0, None, "max_length"), ("buckets", 64, [0], "positive")],
)
def test_bad_policies_are_named(name: str, max_length: int, buckets: list[int] | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LengthPolicy.make(name, max_length, buckets)


def test_a_window_longer_than_the_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="500 tokens"):
        LengthPolicy.make("buckets", 384).padded_length(500)


def test_real_lengths_refuse_a_mask_that_is_not_right_padded() -> None:
    assert real_lengths(_mask([3, 8, 1], 8)).tolist() == [3, 8, 1]
    holed = _mask([5], 8)
    holed[0, 2] = 0
    with pytest.raises(ValueError, match="window 0 is not right-padded"):
        real_lengths(holed)


def test_plan_sorts_by_length_never_mixes_lengths_and_covers_every_row_once() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 385, 203)
    policy = LengthPolicy.make("buckets", 384)
    plan = plan_batches(lengths, policy, batch_size=8)
    rows = np.concatenate([b.rows for b in plan])
    assert sorted(rows.tolist()) == list(range(203))
    assert [b.length for b in plan] == sorted(b.length for b in plan)
    assert all(len(b.rows) <= 8 and (policy.padded_lengths(lengths[b.rows]) == b.length).all() for b in plan)
    assert policy.padding_share(lengths) < LengthPolicy.make("fixed", 384).padding_share(lengths)


def test_dynamic_batches_are_full_and_padded_to_their_longest_window() -> None:
    lengths = np.array([300, 20, 47, 33, 129, 18, 200])
    plan = plan_batches(lengths, LengthPolicy.make("dynamic", 384), batch_size=3)
    assert [b.rows.tolist() for b in plan] == [[1, 5, 2], [3, 4, 6], [0]]  # by padded length, stable
    assert [b.length for b in plan] == [48, 208, 304]


def test_run_with_policy_gives_each_row_its_own_logits_and_pads_the_rest() -> None:
    """A runner whose logits depend on the row's tokens only: the scattered result must equal the
    padded run on real positions, whatever order and width the batches ran in."""
    rng = np.random.default_rng(1)
    width, lengths = 64, [5, 64, 17, 33, 1, 48, 16]
    mask = _mask(lengths, width)
    ids = rng.integers(5, 900, (len(lengths), width)) * mask
    arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    seen_widths: list[int] = []

    def run(batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        seen_widths.append(batch["input_ids"].shape[1])
        x = batch["input_ids"].astype(np.float32)
        return np.cumsum(x, axis=1), -x

    full = run(arrays)
    for name in ("fixed", "buckets", "dynamic"):
        policy = LengthPolicy.make(name, width, [16, 32])
        start, end = run_with_policy(run, arrays, policy, batch_size=2)
        real = mask.astype(bool)
        assert np.array_equal(start[real], full[0][real]) and np.array_equal(end[real], full[1][real])
        ran_at = np.zeros(len(lengths), dtype=np.int64)
        for b in plan_batches(np.array(lengths), policy, 2):
            ran_at[b.rows] = b.length
        beyond = np.arange(width)[None, :] >= ran_at[:, None]
        assert np.isneginf(start[beyond]).all() and np.isfinite(start[~beyond]).all()
        assert beyond.any() == (name != "fixed")
    assert min(seen_widths) == 16
    with pytest.raises(ValueError, match="64 tokens wide"):
        run_with_policy(run, arrays, LengthPolicy.make("fixed", 128), batch_size=2)
