"""Which Pareto-front members the refine stage distils standalone.

The user's answer is the fastest subnet at or above the F1 floor. Refining a member that is already
feasible only adds F1 at the same speed; a faster member just under the floor may cross it, which
moves the answer. So the stage spends its budget on the front members faster than the fastest
feasible one (HAT and AutoNAC likewise train the subnets the search found before they are compared
at full accuracy). Refinement gains are large, and larger the further under the floor a member
starts (+9.0 to +17.0 F1 for MiniLM supernet subnets 3.0 to 16.8 under it, 400 steps, on held-out
train articles: BENCHMARKS.md, refine section), so the default,
``fastest_reachable``, tries the fastest of them within ``max_gap`` F1 of the floor first;
``near_floor`` tries the one nearest the floor first, which is likelier to cross but moves the
answer least.
"""

from __future__ import annotations

from typing import Container, Literal, Sequence

Policy = Literal["fastest_reachable", "near_floor", "most_accurate"]
POLICIES: tuple[str, ...] = ("fastest_reachable", "near_floor", "most_accurate")


def refine_choice(
    front: Sequence[tuple[int, float, float]],
    feasible: Container[int],
    top_k: int,
    policy: Policy = "fastest_reachable",
    *,
    floor: float | None = None,
    max_gap: float = 15.0,
) -> list[int]:
    """Trial numbers to refine, best first, at most ``top_k``.

    ``front``: (number, F1, speed) of the non-dominated trials, speed oriented so that larger is faster
    (samples/s, or the negated p90). ``feasible``: the numbers that meet every constraint. ``floor``:
    the job's F1 floor in points (None: no F1 constraint).
    ``most_accurate``: the most accurate feasible members (all members when none is feasible).
    ``near_floor``: the members faster than the fastest feasible one, highest F1 first; with no feasible
    member, the most accurate members (the closest to the floor).
    ``fastest_reachable``: of those same members, the ones at most ``max_gap`` F1 points under the floor,
    fastest first: the largest speed-up that refinement can plausibly bring across the floor; the
    rest follow in ``near_floor`` order (so the budget is never left unspent while candidates remain).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown refine policy {policy!r}: one of {', '.join(POLICIES)}")
    if top_k <= 0 or not front:
        return []
    by_f1 = sorted(front, key=lambda p: (-p[1], -p[2], p[0]))
    ok = [p for p in by_f1 if p[0] in feasible]
    if policy == "most_accurate":
        return [p[0] for p in (ok or by_f1)[:top_k]]
    pool = [p for p in by_f1 if p[2] > max(q[2] for q in ok)] if ok else by_f1
    if policy == "fastest_reachable" and floor is not None:
        reachable = sorted((p for p in pool if p[1] >= floor - max_gap), key=lambda p: (-p[2], -p[1], p[0]))
        pool = reachable + [p for p in pool if p not in reachable]
    return [p[0] for p in pool[:top_k]]
