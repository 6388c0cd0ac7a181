"""The measurement child's deployment mode (``python -m workers.benchmark IR --deployment @spec.json``):
the sweep (``workers.deployment_timing``), the choice, and LoadGen's figures of it (``workers.deployment_loadgen``)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from core.qa.length_policy import LengthPolicy
from workers.deployment_loadgen import loadgen_figures
from workers.deployment_precision import decide, precision_row
from workers.deployment_timing import ModelCache, choose, length_summary, sweep
from workers.openvino_timing import target_from_args, thread_cap


def run_deployment(args: argparse.Namespace) -> dict[str, Any]:
    """The sweep of ``args.deployment`` (JSON: lengths, max_length, policies, buckets, batches, objective,
    loadgen) for one IR in this process (its ISA cap must already be set): rows, choice, fingerprint."""
    import openvino as ov

    text = args.deployment
    if text.startswith("@"):  # what measure_deployment passes: the spec in a file
        with open(text[1:]) as f:
            text = f.read()
    spec = json.loads(text)
    target = target_from_args(args)
    lengths = np.asarray(spec["lengths"], dtype=np.int64)
    policies = [LengthPolicy.make(name, int(spec["max_length"]), spec.get("buckets")) for name in spec["policies"]]
    core = ov.Core()
    began = time.perf_counter()
    cache = ModelCache(core, args.xml, target, args.precision)
    rests = list(spec.get("rests") or ["f32"])  # inference precisions, the first one swept (workers.deployment_precision)
    objective = spec.get("objective", "throughput")
    rows = sweep(cache, lengths, policies, [int(b) for b in spec["batches"]], args, [int(n) for n in spec.get("streams") or ()], rest=rests[0])
    fixed = None
    if spec.get("fixed"):  # the fixed-length figures measure_ir took (synthetic inputs, full padding, f32): a candidate too
        fixed_policy = LengthPolicy.make("fixed", int(spec["max_length"]))
        fixed = {"policy": fixed_policy.to_dict(), "padding_share": round(fixed_policy.padding_share(lengths), 4),
                 "inference_precision": "f32", **spec["fixed"]}  # fmt: skip
        rows.append(fixed)
    chosen = choose([r for r in rows if r["inference_precision"] in rests], objective, fixed)
    for rest in rests[1:]:  # the other precisions at the chosen point only
        rows.append(precision_row(cache, chosen, lengths, args, rest))
    chosen = decide(rows, rests, objective, fixed, cache=cache, lengths=lengths, scoring=spec.get("scoring"))
    result: dict[str, Any] = {
        "precision": args.precision,
        "target": target.name,
        "query_set": length_summary(lengths),
        "sweep": rows,
        **chosen,
        "threads_cap": thread_cap(target),
        "harness": "hwnas",
    }
    if spec.get("loadgen"):
            result["loadgen"] = loadgen_figures(cache, lengths, chosen, spec, args)
    result["sweep_s"] = round(time.perf_counter() - began, 3)
    return result
