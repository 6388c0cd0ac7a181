"""A trial's measurement on one target as deployed: the fixed-length figures plus the deployment sweep.

Why one ``Measurement``: the objectives, the predictor and the front read ``p90_ms`` and
``throughput_sps``; as deployed, those are the chosen deployment's figures (LoadGen's where it ran),
and the fixed-length ones (full padding, what earlier jobs and MLPerf's closed division compare) stay
in ``fingerprint["fixed_length"]``; the whole sweep, the choice and its reason in
``fingerprint["deployment"]`` (what ``deployment.json`` in the zip carries).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.types import Measurement

FIXED_KEYS = ("seq_len", "latency_batch", "p50_ms", "p90_ms", "p99_ms", "latency_iterations", "throughput_batch", "throughput_sps")


def fixed_rows(m: Measurement) -> dict[str, Any]:
    """``m`` (measure_ir at full padding) as a row of the sweep: the fixed policy's candidate."""
    return {
        "single_stream": {"p50_ms": m.p50_ms, "p90_ms": m.p90_ms, "p99_ms": m.p99_ms, "queries": m.latency_iterations},
        "offline": [{"samples_per_second": m.throughput_sps, "batch": m.throughput_batch, "streams": m.fingerprint.get("streams"),
                     "nireq": m.fingerprint.get("nireq"), "passes": None, "padded_rows_share": 0.0}],  # fmt: skip
        "measured_by": "measure_ir (synthetic inputs at full padding, repeats)",
    }


def deployed_measurement(fixed: Measurement, sweep: dict[str, Any] | None) -> Measurement:
    """``fixed`` with the chosen deployment's figures in its place and both kept in its fingerprint;
    ``fixed`` unchanged where there was no sweep (a runtime without one)."""
    fingerprint = {**fixed.fingerprint, "fixed_length": {k: getattr(fixed, k) for k in FIXED_KEYS}}
    if sweep is None:
        return replace(fixed, fingerprint={**fingerprint, "deployment": None})
    ss, off = sweep["single_stream"], sweep["offline"]
    p50, p90, p99, sps = ss["p50_ms"], ss["p90_ms"], ss["p99_ms"], off["samples_per_second"]
    figures_by = "hwnas"
    loadgen = sweep.get("loadgen")
    if loadgen and loadgen["single_stream"].get("p90_ms") and loadgen["offline"].get("samples_per_second"):
        lg_ss, lg_off = loadgen["single_stream"], loadgen["offline"]
        p50, p90, p99, sps = lg_ss["p50_ms"], lg_ss["p90_ms"], lg_ss["p99_ms"], lg_off["samples_per_second"]
        figures_by = f"loadgen ({loadgen['label']})"
    fingerprint["deployment"] = {**sweep, "figures_by": figures_by}
    return replace(
        fixed,
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99 if p99 is not None else p90),
        latency_iterations=int(ss.get("queries") or fixed.latency_iterations),
        throughput_batch=int(off["batch"]),
        throughput_sps=float(sps),
        fingerprint=fingerprint,
    )


def deployment_file(m: Measurement, precision: str) -> dict[str, Any]:
    """What ``deployment.json`` says for one target: how to compile and feed the IR to get ``m``'s figures."""
    d = (m.fingerprint or {}).get("deployment")
    fp = m.fingerprint or {}
    rest = (d or {}).get("inference_precision") or "f32"  # what the sweep chose (f32 unless bf16 won and held its F1)
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": rest}
    if fp.get("threads_cap"):
        config["INFERENCE_NUM_THREADS"] = fp["threads_cap"]
    if d is None:
        policy = {"name": "fixed", "max_length": m.seq_len}
        offline = {"batch": m.throughput_batch, "streams": fp.get("streams"), "nireq": fp.get("nireq")}
        reason = "measured at a fixed padded length only"
        single_policy = policy
    else:
        policy, single_policy = d["offline"]["length_policy"], d["single_stream"]["length_policy"]
        offline = {k: d["offline"].get(k) for k in ("batch", "streams", "nireq")}
        reason = d["reason"]
    runtime = fp.get("runtime") or "openvino"
    if runtime != "openvino":  # DeepSparse: the ONNX beside the IR, one fixed padded length
        return {
            "target": m.target, "precision": precision, "runtime": runtime, "runtime_label": fp.get("runtime_label"), "model": "model.onnx",
            "openvino_config": None, "offline": {"length_policy": {"name": "fixed", "max_length": m.seq_len}, "batch": m.throughput_batch,
                                                 "samples_per_second": m.throughput_sps},
            "single_stream": {"length_policy": {"name": "fixed", "max_length": m.seq_len}, "batch": 1, "p50_ms": m.p50_ms, "p90_ms": m.p90_ms},
            "figures_by": runtime, "query_set": None, "fixed_length": None,
            "reason": f"measured by {fp.get('runtime_label') or runtime} at a fixed padded length ({m.seq_len})",
        }  # fmt: skip
    return {
        "target": m.target,
        "precision": precision,
        "runtime": "openvino",
        "openvino_config": {
            "offline": {"PERFORMANCE_HINT": "THROUGHPUT", **config, **({"NUM_STREAMS": offline["streams"]} if offline.get("streams") else {})},
            "single_stream": {"PERFORMANCE_HINT": "LATENCY", **config},
        },
        "offline": {"length_policy": policy, **offline, "samples_per_second": m.throughput_sps},
        "single_stream": {"length_policy": single_policy, "batch": 1, "p50_ms": m.p50_ms, "p90_ms": m.p90_ms},
        "inference_precision": rest,
        "f1": (d or {}).get("f1_as_deployed"),  # None: the trial's F1 (f32 gives the same answers under every policy)
        "figures_by": None if d is None else d.get("figures_by"),
        "query_set": None if d is None else d.get("query_set"),
        "fixed_length": fp.get("fixed_length"),
        "reason": reason,
        "host": {k: fp.get(k) for k in ("cpu_model_name", "microarchitecture", "native", "isa_cap", "logical_cpus")},
    }
