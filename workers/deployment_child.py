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
    rows = sweep(cache, lengths, policies, [int(b) for b in spec["batches"]], args, [int(n) for n in spec.get("streams") or ()])
    if spec.get("fixed"):  # the fixed-length figures measure_ir took (synthetic inputs, full padding): a candidate too
        rows.append({"policy": LengthPolicy.make("fixed", int(spec["max_length"])).to_dict(), "padding_share": round(
            LengthPolicy.make("fixed", int(spec["max_length"])).padding_share(lengths), 4), **spec["fixed"]})  # fmt: skip
    chosen = choose(rows, spec.get("objective", "throughput"))
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
