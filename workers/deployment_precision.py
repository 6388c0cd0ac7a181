"""The inference precision of a deployment: f32, or bf16 where the target has it, chosen by measurement
and kept only while its F1, scored as deployed, holds (``nas.spec.DeploymentSpec.inference_precisions``).

Why scored as deployed: bf16's rounding depends on the shape (padded length, batch), so a bf16
deployment's answers differ from the trial's f32 ones, and differ again between length policies
(f32's do not: tests/workers/test_length_policy_ir.py). Its F1 is computed here, in the measurement
child, on the very compiled models and batches the zip's ``run_deployment.py`` will run: the eval
windows sorted by padded length into batches of the Offline size, a partial batch filled with copies
of its last row. For INT8 "bf16" means the non-quantized ops; for an FP32 IR, the whole model (BF16).

The sweep runs the length policies in the first precision asked (f32 by default); the others are
measured at the chosen Offline point and SingleStream policy only (one more row).
"""

from __future__ import annotations

import argparse
import pickle
from typing import Any

import numpy as np

from core.qa.length_policy import PAD_LOGIT, LengthPolicy, plan_batches, real_lengths
from workers.deployment_timing import ModelCache, PolicyModels, choose, offline, single_stream

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def offline_models(cache: ModelCache, chosen: dict[str, Any], lengths: np.ndarray, rest: str) -> PolicyModels:
    """The compiled models of ``chosen``'s Offline deployment (policy, batch, swept streams) in ``rest``."""
    off = chosen["offline"]
    streams = int(off["streams"]) if off.get("streams_by") == "sweep" else None
    return cache.get(LengthPolicy.from_dict(off["length_policy"]), int(off["batch"]), "THROUGHPUT", lengths, streams, rest=rest)


def precision_row(cache: ModelCache, chosen: dict[str, Any], lengths: np.ndarray, args: argparse.Namespace, rest: str) -> dict[str, Any]:
    """``chosen``'s SingleStream policy and Offline point measured again in inference precision ``rest``."""
    ss_policy = LengthPolicy.from_dict(chosen["single_stream"]["length_policy"])
    off_policy = LengthPolicy.from_dict(chosen["offline"]["length_policy"])
    latency = cache.get(ss_policy, 1, "LATENCY", lengths, rest=rest)
    tput = offline_models(cache, chosen, lengths, rest)
    return {
        "policy": off_policy.to_dict(),
        "single_stream_policy": ss_policy.to_dict(),
        "padding_share": round(off_policy.padding_share(lengths), 4),
        "inference_precision": rest,
        "single_stream": single_stream(latency, lengths, args),
        "offline": [{**offline(tput, lengths, args), "streams_by": chosen["offline"].get("streams_by", "hint")}],
        "compile_s": round(latency.compile_s + tput.compile_s, 3),
    }


def deployed_logits(models: PolicyModels, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Start/end logits of every window run as ``run_deployment.py`` runs it (same batches, same fill).

    Each batch is handed over as its own ``ov.Tensor`` (set on the request, as the example and the sweep do),
    not as numpy arrays that OpenVINO copies into the request's own input tensor after resizing it to the
    batch's length: a bf16 sweep's child died of SIGSEGV in that copy on an AMX host (2026-12-07). Whether
    the copy or the bf16 kernels before it corrupted the memory is not known; bf16 stays opt-in."""
    import openvino as ov

    n, width = arrays["input_ids"].shape
    starts, ends = np.full((n, width), PAD_LOGIT, np.float32), np.full((n, width), PAD_LOGIT, np.float32)
    requests: dict[int, Any] = {}
    for planned in plan_batches(real_lengths(arrays["attention_mask"]), models.policy, models.batch):
        compiled = models.get(planned.length)
        key = -1 if not models.policy.static else planned.length
        if key not in requests:
            requests[key] = compiled.create_infer_request()
        rows = planned.rows
        take = np.concatenate([rows, np.repeat(rows[-1:], models.batch - len(rows))])
        names = {p.get_any_name() for p in compiled.inputs}
        out = requests[key].infer({k: ov.Tensor(np.ascontiguousarray(arrays[k][take, : planned.length])) for k in INPUTS if k in names})
        starts[rows, : planned.length] = out[compiled.output(0)][: len(rows)]
        ends[rows, : planned.length] = out[compiled.output(1)][: len(rows)]
    return starts, ends


def score_as_deployed(models: PolicyModels, scoring: dict[str, Any]) -> dict[str, Any]:
    """F1/EM of the Offline deployment ``models`` on the trial's eval windows (``scoring["windows"]``: the
    pickled examples and features the trial was scored on), with the trial's null threshold (SQuAD v2.0)."""
    from workers.evaluate import score_logits

    with open(scoring["windows"], "rb") as f:
        examples, features = pickle.load(f)
    arrays = {k: getattr(features, k) for k in INPUTS}
    starts, ends = deployed_logits(models, arrays)
    scores = score_logits(examples, features, starts, ends, task=scoring["task"], null_threshold=scoring.get("threshold"))
    return {"f1": scores["f1"], "exact_match": scores.get("exact_match", scores.get("exact")), "questions": int(scores["count"])}


def _speed(row_or_choice: dict[str, Any], objective: str) -> float:
    """The objective's figure, larger is better (samples/s, or 1/p90)."""
    if "samples_per_second" in row_or_choice.get("offline", {}):
        off, ss = row_or_choice["offline"]["samples_per_second"], row_or_choice["single_stream"]["p90_ms"]
    else:
        off = max(o["samples_per_second"] for o in row_or_choice["offline"])
        ss = row_or_choice["single_stream"]["p90_ms"]
    return float(off) if objective == "throughput" else 1.0 / float(ss)


def decide(
    rows: list[dict[str, Any]], rests: list[str], objective: str, fixed: dict[str, Any] | None, *,
    cache: ModelCache, lengths: np.ndarray, scoring: dict[str, Any] | None,
) -> dict[str, Any]:  # fmt: skip
    """The deployment among ``rows`` in the precisions ``rests``: the objective's fastest precision, then the
    best policy and batch within it; a bf16 choice carries ``f1_as_deployed`` and falls back to f32 when that
    F1 is more than ``scoring["max_f1_drop"]`` under the trial's (f32) F1."""
    candidates = [r for r in rows if r.get("inference_precision", "f32") in rests]
    by_rest = {rest: choose([r for r in candidates if r.get("inference_precision", "f32") == rest], objective, fixed)
               for rest in rests if any(r.get("inference_precision", "f32") == rest for r in candidates)}  # fmt: skip
    rest = max(by_rest, key=lambda k: _speed(by_rest[k], objective))
    chosen = {**by_rest[rest], "inference_precision": rest, "f1_as_deployed": None}
    others = {k: v for k, v in by_rest.items() if k != rest}
    for other, alt in others.items():
        ratio = _speed(chosen, objective) / _speed(alt, objective)
        chosen["reason"] += f"; {rest} {ratio:.2f}x over {other} ({objective})"
    if rest == "f32":
        return chosen
    if scoring is None:
        raise ValueError("a bf16 deployment must be scored as deployed: no eval windows were given (scoring)")
    score = score_as_deployed(offline_models(cache, chosen, lengths, rest), scoring)
    reference, allowed = scoring.get("reference_f1"), float(scoring.get("max_f1_drop", 0.5))
    chosen["f1_as_deployed"] = {**score, "inference_precision": rest}
    if reference is not None and "f32" in by_rest and score["f1"] < float(reference) - allowed:
        kept = {**by_rest["f32"], "inference_precision": "f32", "f1_as_deployed": None, "rejected": chosen["f1_as_deployed"]}
        kept["reason"] += (f"; f32 kept: {rest} was {_speed(chosen, objective) / _speed(kept, objective):.2f}x faster but its F1 as "
                           f"deployed, {score['f1']:.2f}, is {float(reference) - score['f1']:.2f} under f32's {float(reference):.2f} "
                           f"(allowed {allowed:g})")  # fmt: skip
        return kept
    against = f" vs f32's {float(reference):.2f}" if reference is not None else ""
    chosen["reason"] += f"; F1 as deployed in {rest}: {score['f1']:.2f}{against} on {score['questions']} questions"
    return chosen
