"""Which front members the refine stage picks (pure function; speed: larger is faster)."""

from __future__ import annotations

import pytest

from nas.refine import refine_choice

# (number, F1, samples/s) of a front: faster members are less accurate
FRONT = [(0, 62.0, 160.0), (3, 58.8, 195.0), (25, 53.2, 225.0), (39, 46.1, 288.0), (7, 39.4, 340.0)]


def test_near_floor_picks_the_members_faster_than_the_fastest_feasible_one_closest_to_the_floor_first() -> None:
    assert refine_choice(FRONT, feasible={0, 3}, top_k=2) == [25, 39]
    assert refine_choice(FRONT, feasible={0, 3}, top_k=10) == [25, 39, 7]


def test_near_floor_without_a_feasible_member_takes_the_most_accurate() -> None:
    assert refine_choice(FRONT, feasible=set(), top_k=2) == [0, 3]


def test_near_floor_has_nothing_to_do_when_the_fastest_member_is_feasible() -> None:
    assert refine_choice(FRONT, feasible={0, 3, 25, 39, 7}, top_k=3) == []


def test_most_accurate_takes_the_feasible_members_by_f1() -> None:
    assert refine_choice(FRONT, feasible={3, 25}, top_k=1, policy="most_accurate") == [3]
    assert refine_choice(FRONT, feasible=set(), top_k=2, policy="most_accurate") == [0, 3]


def test_latency_fronts_pass_the_negated_p90() -> None:
    front = [(n, f1, -1000.0 / sps) for n, f1, sps in FRONT]
    assert refine_choice(front, feasible={0, 3}, top_k=2) == [25, 39]


def test_nothing_to_refine_and_unknown_policies() -> None:
    assert refine_choice([], feasible=set(), top_k=3) == []
    assert refine_choice(FRONT, feasible=set(), top_k=0) == []
    with pytest.raises(ValueError, match="unknown refine policy"):
        refine_choice(FRONT, feasible=set(), top_k=1, policy="fastest")  # type: ignore[arg-type]
