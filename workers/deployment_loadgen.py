"""The chosen deployment measured by MLPerf LoadGen (``workers.loadgen_harness``) in the measurement child.

Why beside our own harness: LoadGen issues and times the queries, so its SingleStream p90 and Offline
samples/s are the figures other MLPerf harnesses quote; ours pick the deployment (cheaper per point).
The SUT is the same compiled models the sweep timed, over the same query set (real window lengths):
SingleStream runs each issued sample alone at its padded length, Offline sorts the issued samples into
one-length batches and keeps every optimal infer request busy. Runs are as short as the trial's
measurement budget, so they are never MLPerf results (``LoadGenResult.label`` says so).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from core.qa.length_policy import LengthPolicy, plan_batches
from workers.deployment_timing import ModelCache, length_tensors

SINGLE_STREAM_MIN_QUERIES = 64  # LoadGen's early stopping needs at least 64 queries
MIN_DURATION_S = 0.25  # per scenario; a trial's measure.seconds / 2 where longer


def loadgen_figures(cache: ModelCache, lengths: np.ndarray, chosen: dict[str, Any], spec: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """SingleStream and Offline LoadGen results of the chosen deployment (``deployment_timing.choose``), on
    the models the sweep compiled (a fixed-length choice measured by ``measure_ir`` is compiled here)."""
    import openvino as ov

    from workers.loadgen_harness import run_loadgen

    log_root = Path(spec.get("log_dir") or tempfile.mkdtemp(prefix="hwnas-loadgen-"))
    ss_policy = LengthPolicy.from_dict(chosen["single_stream"]["length_policy"])
    off_policy = LengthPolicy.from_dict(chosen["offline"]["length_policy"])
    batch = int(chosen["offline"]["batch"])
    duration = max(MIN_DURATION_S, float(args.min_seconds))

    ss_padded = ss_policy.padded_lengths(lengths)
    rest = chosen.get("inference_precision", "f32")
    ss_models = cache.get(ss_policy, 1, "LATENCY", lengths, rest=rest)
    requests = {}
    for n in sorted(set(ss_padded.tolist())):
        requests[n] = ss_models.get(n).create_infer_request()
        for name, tensor in length_tensors(ss_models.get(n), n, 1).items():
            requests[n].set_tensor(name, tensor)
        requests[n].infer()

    single = run_loadgen(
        "SingleStream",
        sample_count=len(lengths),
        infer_one=lambda i: requests[int(ss_padded[i])].infer(),
        infer_many=lambda ids: None,
        log_dir=log_root / "SingleStream",
        min_duration_s=duration,
        min_query_count=SINGLE_STREAM_MIN_QUERIES,
        single_stream_expected_latency_ms=max(0.01, float(chosen["single_stream"]["p50_ms"])),
        seed=0,
    )

    off_padded = off_policy.padded_lengths(lengths)
    swept = chosen["offline"].get("streams_by") == "sweep"
    off_models = cache.get(off_policy, batch, "THROUGHPUT", lengths, int(chosen["offline"]["streams"]) if swept else None, rest=rest)
    tensors = {n: length_tensors(off_models.get(n), n, batch) for n in sorted(set(off_padded.tolist()))}
    nireq = int(off_models.any().get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    queues = {n: ov.AsyncInferQueue(off_models.get(n), nireq) for n in tensors}

    def infer_many(ids: list[int]) -> None:
        # LoadGen issues more samples than the query set holds (duration x expected QPS), so samples repeat; sorted
        # all at once, repeats of one length would run back to back (a dynamic-shape model then never changes
        # shape). Each block of as many samples as the set holds is sorted on its own: passes, as the sweep times.
        for begin in range(0, len(ids), len(lengths)):
            block = np.asarray(ids[begin : begin + len(lengths)])
            for planned in plan_batches(lengths[block], off_policy, batch):
                queues[planned.length].start_async(tensors[planned.length])
        for queue in queues.values():
            queue.wait_all()

    for n in tensors:  # warm-up: each shape once
        queues[n].start_async(tensors[n])
    for queue in queues.values():
        queue.wait_all()
    expected = float(chosen["offline"]["samples_per_second"])
    off = run_loadgen(
        "Offline",
        sample_count=len(lengths),
        infer_one=lambda i: None,
        infer_many=infer_many,
        log_dir=log_root / "Offline",
        min_duration_s=duration,
        min_query_count=len(lengths),
        offline_expected_qps=expected,
        seed=0,
    )
    return {"single_stream": single.to_dict(), "offline": off.to_dict(), "label": single.label if single.label == off.label else off.label}
