"""Which Pareto-front members the refine stage distils standalone.

The user's answer is the fastest subnet at or above the F1 floor. Refining a member that is already
feasible only adds F1 at the same speed; a faster member just under the floor may cross it, which
moves the answer. So by default (``near_floor``) the stage spends its budget on the front members
faster than the fastest feasible one, closest to the floor first (HAT and AutoNAC likewise train the
subnets the search found before they are compared at full accuracy).
"""

from __future__ import annotations

from typing import Container, Literal, Sequence

Policy = Literal["near_floor", "most_accurate"]


def refine_choice(
    front: Sequence[tuple[int, float, float]], feasible: Container[int], top_k: int, policy: Policy = "near_floor"
) -> list[int]:
    """Trial numbers to refine, best first, at most ``top_k``.

    ``front``: (number, F1, speed) of the non-dominated trials, speed oriented so that larger is faster
    (samples/s, or the negated p90). ``feasible``: the numbers that meet every constraint.
    ``most_accurate``: the most accurate feasible members (all members when none is feasible).
    ``near_floor``: the members faster than the fastest feasible one, highest F1 first; with no feasible
    member, the most accurate members (the closest to the floor).
    """
    if top_k <= 0 or not front:
        return []
    by_f1 = sorted(front, key=lambda p: (-p[1], -p[2], p[0]))
    ok = [p for p in by_f1 if p[0] in feasible]
    if policy == "most_accurate":
        pool = ok or by_f1
    elif policy == "near_floor":
        if not ok:
            pool = by_f1
        else:
            fastest_ok = max(p[2] for p in ok)
            pool = [p for p in by_f1 if p[2] > fastest_ok]
    else:
        raise ValueError(f"unknown refine policy {policy!r}: near_floor or most_accurate")
    return [p[0] for p in pool[:top_k]]
