"""Which precision a job's subnets are built and measured in: the spec's, or (``precision: auto``) the one
its own teacher runs faster in on the job's targets, read from the FP32 and INT8 baselines.

Why measured and not assumed: INT8 pays off on CPUs with int8 dot-product instructions (VNNI,
AMX); on an AVX2-only CPU an NNCF INT8 model can run slower than its FP32 original, and delivering
INT8 there delivers the slower model. The baselines are the same IR in both precisions on the same
node, so their ratio is the fairest reading of the host there is before the search starts.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

PRECISIONS = ("int8", "fp32")
REQUESTS = (*PRECISIONS, "auto")


def _figure(m: Any, objective: str) -> float:
    return float(m.throughput_sps if objective == "throughput" else m.p90_ms)


def _faster(int8: float, fp32: float, objective: str) -> str:
    """The winner of one target (a tie goes to INT8: the smaller model at the same speed)."""
    if objective == "throughput":
        return "int8" if int8 >= fp32 else "fp32"
    return "int8" if int8 <= fp32 else "fp32"


def choose_precision(requested: str, objective: str, baselines: Mapping[str, Iterable[Any]], targets: Iterable[str]) -> dict[str, Any]:
    """The job's deployment precision and why, as stored in ``Job.deployment``.

    ``baselines``: measurements per baseline precision (``fp32``/``int8``), each with ``target``,
    ``p90_ms`` and ``throughput_sps``. ``auto`` takes the precision that is faster (by the job's
    objective) on more of the job's targets, INT8 on a tie; a target without both figures does not vote.
    """
    if requested not in REQUESTS:
        raise ValueError(f"precision must be one of {', '.join(REQUESTS)}, got {requested!r}")
    by_target: dict[str, dict[str, Any]] = {}
    for precision in PRECISIONS:
        for m in baselines.get(precision, ()):
            by_target.setdefault(m.target, {})[precision] = _figure(m, objective)
    unit = "samples/s Offline" if objective == "throughput" else "ms p90 SingleStream"
    votes: dict[str, dict[str, Any]] = {}
    for target in targets:
        figures = by_target.get(target, {})
        if set(figures) >= set(PRECISIONS):
            ratio = figures["int8"] / figures["fp32"] if figures["fp32"] else float("nan")
            votes[target] = {**figures, "faster": _faster(figures["int8"], figures["fp32"], objective), "int8_over_fp32": round(ratio, 3)}
    if requested != "auto":
        return {"precision": requested, "chosen_by": "spec", "objective": objective, "unit": unit, "targets": votes,
                "reason": f"{requested.upper()} as the job spec asks (precision: {requested})"}  # fmt: skip
    if not votes:
        return {"precision": "int8", "chosen_by": "default", "objective": objective, "unit": unit, "targets": votes,
                "reason": "INT8: no FP32 and INT8 teacher figures to compare on the job's targets"}  # fmt: skip
    fp32_wins = sum(v["faster"] == "fp32" for v in votes.values())
    precision = "fp32" if fp32_wins > len(votes) - fp32_wins else "int8"
    parts = [
        f"{t}: INT8 teacher {v['int8']:.4g} vs FP32 {v['fp32']:.4g} {unit} ({'INT8' if v['faster'] == 'int8' else 'FP32'} faster)"
        for t, v in votes.items()
    ]
    if precision == "fp32":
        head = "INT8 slower than FP32 on this job's CPU: FP32 chosen"
    else:
        head = "INT8 faster than FP32: INT8 chosen"
    split = len({v["faster"] for v in votes.values()}) > 1
    tail = "; the targets disagree, the majority decides (one precision per job)" if split else ""
    return {"precision": precision, "chosen_by": "measured", "objective": objective, "unit": unit, "targets": votes,
            "reason": f"{head} ({'; '.join(parts)}){tail}"}  # fmt: skip
