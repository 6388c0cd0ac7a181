"""The deployment sweep, run inside the measurement child: one IR on one target under each length policy and
Offline batch size, over a query set with the eval file's real window lengths; the fastest one is the deployment.

Why in the child: the ISA cap and thread cap of the target apply (``workers.measurement_process``), and
the figures come from the same kind of process as ``workers.openvino_timing``'s fixed-shape ones.

Per policy (``core.qa.length_policy``): SingleStream is one query at a time, each at its padded length,
in a seeded random order (p50/p90/p99 over queries); Offline sorts the query set by padded length and
keeps every optimal infer request busy with batches of one length (a last partial batch is padded with
copies, counted once), samples/s over whole passes. Static policies compile one model per padded length
the query set uses; ``dynamic`` compiles one model with a dynamic sequence dimension.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from core.qa.length_policy import LengthPolicy, plan_batches
from targets import HardwareTarget
from workers.openvino_timing import compile_config, synthetic_inputs

if TYPE_CHECKING:
    import openvino as ov

Objective = str  # "throughput" (Offline samples/s) or "latency" (SingleStream p90)


def query_lengths(lengths: Sequence[int], count: int, seed: int = 0) -> np.ndarray:
    """A seeded sample of ``count`` window lengths (all of them when there are fewer): the query set."""
    all_lengths = np.asarray(lengths, dtype=np.int64)
    if all_lengths.size == 0:
        raise ValueError("the query set is empty: the eval file gave no windows")
    if all_lengths.size <= count:
        return all_lengths
    return np.random.default_rng(seed).choice(all_lengths, size=count, replace=False)


def length_summary(lengths: np.ndarray) -> dict[str, Any]:
    p50, p90 = (float(v) for v in np.percentile(lengths, [50, 90]))
    return {"samples": int(lengths.size), "mean": round(float(lengths.mean()), 1), "p50": p50, "p90": p90, "max": int(lengths.max())}


class PolicyModels:
    """The compiled models of one policy and hint: one per padded length (static) or one (dynamic)."""

    def __init__(self, core: "ov.Core", xml: str, policy: LengthPolicy, batch: int, config: dict[str, Any], lengths: Sequence[int]):
        self.models: dict[int, Any] = {}
        t0 = time.perf_counter()
        if policy.static:
            for length in sorted(set(int(n) for n in lengths)):
                model = core.read_model(xml)
                model.reshape({port.get_any_name(): [batch, length] for port in model.inputs})
                self.models[length] = core.compile_model(model, "CPU", config)
        else:
            model = core.read_model(xml)
            model.reshape({port.get_any_name(): [batch, -1] for port in model.inputs})
            self.shared = core.compile_model(model, "CPU", config)
        self.compile_s = time.perf_counter() - t0
        self.policy, self.batch = policy, batch

    def get(self, length: int) -> Any:
        return self.models[length] if self.policy.static else self.shared

    def any(self) -> Any:
        return next(iter(self.models.values())) if self.policy.static else self.shared


class ModelCache:
    """Compiled models by (policy, batch, hint, inference precision), shared by the sweep, the F1 scoring of a
    bf16 choice and LoadGen's runs of the choice: compiling is a large part of a small model's sweep."""

    def __init__(self, core: "ov.Core", xml: str, target: HardwareTarget, precision: str):
        self.core, self.xml, self.target, self.precision = core, xml, target, precision
        self.models: dict[tuple[str, int, str, str], PolicyModels] = {}  # (policy, batch, hint[/streams], rest)

    def get(
        self, policy: LengthPolicy, batch: int, hint: str, lengths: np.ndarray, streams: int | None = None, rest: str = "f32"
    ) -> PolicyModels:
        """``rest``: OpenVINO's inference precision for what is not INT8 (``openvino_timing.compile_config``)."""
        key = (repr(policy), batch, hint if streams is None else f"{hint}/{streams}", rest)
        if key not in self.models:
            config = compile_config(hint, self.target, self.precision, streams=hint == "THROUGHPUT", rest=rest)
            if streams is not None:  # a point of the streams sweep instead of the hint's (or the profile's) choice
                config["NUM_STREAMS"] = streams
            shapes = sorted(set(policy.padded_lengths(lengths).tolist())) if policy.static else []
            self.models[key] = PolicyModels(self.core, self.xml, policy, batch, config, shapes)
        return self.models[key]


def length_tensors(model: "ov.Model | Any", length: int, rows: int) -> dict[str, Any]:
    """QA-like inputs of ``rows`` rows at ``length`` tokens for ``model``; what the tokens are does not
    change the compute, so one read-only set serves every batch of that length."""
    import openvino as ov

    return {name: ov.Tensor(np.ascontiguousarray(a)) for name, a in synthetic_inputs(model, rows, length).items()}


def single_stream(models: PolicyModels, lengths: np.ndarray, args: argparse.Namespace, seed: int = 0) -> dict[str, Any]:
    """Per-query latency: each query alone at its padded length, queries in a seeded random order."""
    padded = models.policy.padded_lengths(lengths)
    requests = {n: models.get(n).create_infer_request() for n in sorted(set(padded.tolist()))}
    for length, request in requests.items():
        for name, tensor in length_tensors(models.get(length), length, 1).items():
            request.set_tensor(name, tensor)
        for _ in range(max(1, args.warmup // 2)):
            request.infer()
    order = np.random.default_rng(seed).permutation(len(padded))
    times: list[float] = []
    start = time.perf_counter()
    i = 0
    while len(times) < args.min_iterations or time.perf_counter() - start < args.min_seconds:
        request = requests[int(padded[order[i % len(order)]])]
        t0 = time.perf_counter()
        request.infer()
        times.append((time.perf_counter() - t0) * 1000.0)
        i += 1
    p50, p90, p99 = (float(v) for v in np.percentile(times, [50, 90, 99]))
    return {"p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "queries": len(times)}


def offline(models: PolicyModels, lengths: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """Samples/s over whole passes of the query set sorted into batches of one padded length each."""
    import openvino as ov

    plan = plan_batches(lengths, models.policy, models.batch)
    tensors = {n: length_tensors(models.get(n), n, models.batch) for n in sorted({b.length for b in plan})}
    nireq = int(models.any().get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    queues = {n: ov.AsyncInferQueue(models.get(n), nireq) for n in tensors}

    def one_pass() -> None:
        for b in plan:  # shortest first; a full queue blocks start_async until a request is free
            queues[b.length].start_async(tensors[b.length])
        for queue in queues.values():
            queue.wait_all()

    for length in {b.length: None for b in plan}:  # warm-up: each shape once (a dynamic model compiles its kernels per shape)
        queues[length].start_async(tensors[length])
    for queue in queues.values():
        queue.wait_all()
    passes, start = 0, time.perf_counter()
    while passes < 1 or time.perf_counter() - start < args.min_seconds:
        one_pass()
        passes += 1
    elapsed = max(time.perf_counter() - start, 1e-9)
    computed = models.batch * len(plan)
    return {
        "samples_per_second": passes * len(lengths) / elapsed,
        "passes": passes,
        "batch": models.batch,
        "nireq": nireq,
        "streams": int(models.any().get_property("NUM_STREAMS")),
        "padded_rows_share": round(1.0 - len(lengths) / computed, 4),
    }


def sweep(
    cache: ModelCache,
    lengths: np.ndarray,
    policies: Sequence[LengthPolicy],
    batches: Sequence[int],
    args: argparse.Namespace,
    streams: Sequence[int] = (),
    rest: str = "f32",
) -> list[dict[str, Any]]:
    """One row per policy: its SingleStream figures and Offline figures at ``batches[0]``; the policy with
    the most Offline samples/s there is measured at the other batch sizes too, and its best batch at each
    of ``streams`` (NUM_STREAMS instead of the hint's choice): a sweep around the hints at a fraction of
    the cost of every combination. Every row runs in inference precision ``rest``."""
    rows = []

    def add_offline(row: dict[str, Any], policy: LengthPolicy, batch: int, n_streams: int | None = None) -> None:
        before = len(cache.models)
        tput = cache.get(policy, batch, "THROUGHPUT", lengths, n_streams, rest=rest)
        row["compile_s"] = round(row["compile_s"] + (tput.compile_s if len(cache.models) > before else 0.0), 3)
        row["offline"].append({**offline(tput, lengths, args), "streams_by": "hint" if n_streams is None else "sweep"})

    for policy in policies:
        latency = cache.get(policy, 1, "LATENCY", lengths, rest=rest)
        row: dict[str, Any] = {"policy": policy.to_dict(), "padding_share": round(policy.padding_share(lengths), 4), "inference_precision": rest}
        row["single_stream"] = single_stream(latency, lengths, args)
        row["offline"], row["compile_s"] = [], round(latency.compile_s, 3)
        add_offline(row, policy, int(batches[0]))
        rows.append((policy, row))
    best_policy, best_row = max(rows, key=lambda r: r[1]["offline"][0]["samples_per_second"])
    for batch in batches[1:]:
        add_offline(best_row, best_policy, int(batch))
    best_batch = max(best_row["offline"], key=lambda o: o["samples_per_second"])
    for n in streams:
        if n != best_batch["streams"]:
            add_offline(best_row, best_policy, int(best_batch["batch"]), int(n))
    return [row for _, row in rows]


def _describe(row: dict[str, Any], offline_row: dict[str, Any] | None = None) -> str:
    p = row["policy"] if offline_row is not None else row.get("single_stream_policy", row["policy"])
    what = {"fixed": f"fixed {p['max_length']}", "dynamic": "dynamic shapes"}.get(p["name"]) or "buckets " + "/".join(map(str, p["buckets"]))
    return what + (f" at batch {offline_row['batch']}" if offline_row else "")


def choose(rows: list[dict[str, Any]], objective: Objective, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The deployment: the Offline (policy, batch) with the most samples/s and the SingleStream policy with
    the lowest p90, and why, against the fixed policy's figures (``fixed``, else the fixed row among ``rows``)."""
    if not rows:
        raise ValueError("no deployment was measured")
    best_off = max(((r, o) for r in rows for o in r["offline"]), key=lambda ro: ro[1]["samples_per_second"])
    best_ss = min(rows, key=lambda r: r["single_stream"]["p90_ms"])
    fixed = fixed or next((r for r in rows if r["policy"]["name"] == "fixed"), None)
    chosen_row = best_off[0] if objective == "throughput" else best_ss  # (a row measured in another precision at the
    # chosen point, workers.deployment_precision, may carry its SingleStream policy apart: single_stream_policy)
    reasons = [
        f"Offline: {_describe(*best_off)} {best_off[1]['samples_per_second']:.4g} samples/s",
        f"SingleStream: {_describe(best_ss)} p90 {best_ss['single_stream']['p90_ms']:.4g} ms",
    ]
    if fixed is not None:
        fixed_off = max(fixed["offline"], key=lambda o: o["samples_per_second"])
        reasons[0] += f" vs {_describe(fixed, fixed_off)} {fixed_off['samples_per_second']:.4g} ({best_off[1]['samples_per_second'] / fixed_off['samples_per_second']:.2f}x)"
        reasons[1] += f" vs {_describe(fixed)} {fixed['single_stream']['p90_ms']:.4g} ms"
    return {
        "length_policy": chosen_row["policy"],
        "inference_precision": chosen_row.get("inference_precision", "f32"),
        "offline": {"length_policy": best_off[0]["policy"], **best_off[1]},
        "single_stream": {"length_policy": best_ss.get("single_stream_policy", best_ss["policy"]), **best_ss["single_stream"]},
        "objective": objective,
        "reason": "; ".join(reasons),
    }

