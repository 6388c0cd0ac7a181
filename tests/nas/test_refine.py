"""Which front members the refine stage picks (pure function; speed: larger is faster)."""

from __future__ import annotations

import pytest

from nas.refine import refine_choice

# (number, F1, samples/s) of a front: faster members are less accurate
FRONT = [(0, 62.0, 160.0), (3, 58.8, 195.0), (25, 53.2, 225.0), (39, 46.1, 288.0), (7, 39.4, 340.0)]


def test_near_floor_picks_the_members_faster_than_the_fastest_feasible_one_closest_to_the_floor_first() -> None:
    assert refine_choice(FRONT, feasible={0, 3}, top_k=2, policy="near_floor") == [25, 39]
    assert refine_choice(FRONT, feasible={0, 3}, top_k=10, policy="near_floor", floor=56.2) == [25, 39, 7]


def test_near_floor_without_a_feasible_member_takes_the_most_accurate() -> None:
    assert refine_choice(FRONT, feasible=set(), top_k=2, policy="near_floor") == [0, 3]


def test_near_floor_has_nothing_to_do_when_the_fastest_member_is_feasible() -> None:
    for policy in ("near_floor", "fastest_reachable"):
        assert refine_choice(FRONT, feasible={0, 3, 25, 39, 7}, top_k=3, policy=policy, floor=39.0) == []


def test_most_accurate_takes_the_feasible_members_by_f1() -> None:
    assert refine_choice(FRONT, feasible={3, 25}, top_k=1, policy="most_accurate") == [3]
    assert refine_choice(FRONT, feasible=set(), top_k=2, policy="most_accurate") == [0, 3]


def test_latency_fronts_pass_the_negated_p90() -> None:
    front = [(n, f1, -1000.0 / sps) for n, f1, sps in FRONT]
    assert refine_choice(front, feasible={0, 3}, top_k=2, policy="near_floor") == [25, 39]
    assert refine_choice(front, feasible={0, 3}, top_k=2, floor=56.2) == [39, 25]


def test_fastest_reachable_tries_the_fastest_member_within_max_gap_of_the_floor_first() -> None:
    # floor 56.2: 39 (10.1 under) and 25 (3.0 under) are within 15 points, 7 (16.8 under) is not
    assert refine_choice(FRONT, feasible={0, 3}, top_k=2, floor=56.2) == [39, 25]
    assert refine_choice(FRONT, feasible={0, 3}, top_k=3, floor=56.2) == [39, 25, 7]  # then the rest, nearest first
    assert refine_choice(FRONT, feasible={0, 3}, top_k=3, floor=56.2, max_gap=20.0) == [7, 39, 25]
    assert refine_choice(FRONT, feasible={0, 3}, top_k=2, floor=56.2, max_gap=1.0) == [25, 39]  # none within: near_floor
    assert refine_choice(FRONT, feasible=set(), top_k=2, floor=80.0) == [0, 3]  # none feasible, none within 15
    assert refine_choice(FRONT, feasible=set(), top_k=2, floor=70.0) == [3, 0]  # none feasible: fastest within 15
    assert refine_choice(FRONT, feasible={0, 3}, top_k=2) == [25, 39]  # no F1 floor: near_floor


def test_nothing_to_refine_and_unknown_policies() -> None:
    assert refine_choice([], feasible=set(), top_k=3) == []
    assert refine_choice(FRONT, feasible=set(), top_k=0) == []
    with pytest.raises(ValueError, match="unknown refine policy"):
        refine_choice(FRONT, feasible=set(), top_k=1, policy="fastest")  # type: ignore[arg-type]
