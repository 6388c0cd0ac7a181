"""Latency and throughput measured by MLPerf LoadGen (``mlcommons-loadgen``), not by our own timers.

LoadGen decides when queries are issued and how they are timed, so its figures are comparable with
other LoadGen harnesses; we only hand it callbacks that run samples already held in memory.
A LoadGen run is *not* an MLPerf result unless it meets MLPerf's own minimums (600 s, and 1024
SingleStream queries or 24576 Offline samples); short runs are labelled so and never claimed valid.

LoadGen facts this module depends on (read from 6.0.17's logs and ``loadgen/results.cc``):

* ``StartTest`` releases the GIL and blocks; in SingleStream and Offline it calls ``issue_queries``
  on the thread that called it, one sample per call (SingleStream) or every sample in one call
  (Offline). Each issued sample must be completed (``QuerySamplesComplete``) or the test hangs, so a
  failing callback still completes its samples and the error is raised after the test.
* LoadGen pre-generates its schedule: SingleStream gets ``2 * min_duration / expected latency``
  queries, Offline ``max(min_query_count, 1.1 * min_duration * expected QPS)`` samples in one query.
  If the SUT is much faster than expected the run ends early, "Min duration satisfied : NO", INVALID.
* SingleStream needs at least 64 queries for early stopping (90th percentile, 99 % confidence);
  fewer is INVALID however long the run.
* LoadGen keeps process-wide state (its logger), so runs are serialised by a module lock.
"""

from __future__ import annotations

import json
import operator
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCENARIOS = ("SingleStream", "Offline")

# MLPerf Inference's own minimums for a valid performance run (per scenario).
MLPERF_MIN_DURATION_S = 600.0
MLPERF_MIN_COUNT = {"SingleStream": 1024, "Offline": 24576}  # queries; Offline: samples

LABEL_VALID = "LoadGen, valid MLPerf run"
LABEL_NOT_VALID = "LoadGen, not a valid MLPerf run"

SUMMARY_FILE = "mlperf_log_summary.txt"
DETAIL_FILE = "mlperf_log_detail.txt"

_RUN_LOCK = threading.Lock()  # LoadGen's logger is a process-wide singleton: one test at a time


@dataclass(frozen=True)
class LoadGenResult:
    """What one LoadGen run measured, parsed from the logs it wrote (kept at ``summary_path``).

    ``query_count`` is queries for SingleStream and *samples* for Offline (LoadGen's Offline run is
    one query carrying every sample, so its query count would always be 1). ``duration_s`` is the
    span LoadGen checks against ``min_duration``: start to the last query's issue (SingleStream),
    start to the last sample's completion (Offline).
    """

    scenario: str
    result_valid: bool
    mlperf_valid: bool
    label: str
    samples_per_second: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    query_count: int | None
    duration_s: float | None
    min_duration_s: float
    settings: dict
    summary_path: str

    def to_dict(self) -> dict:
        """A JSON-ready dict (for model cards and job results)."""
        return asdict(self)


def run_loadgen(
    scenario: str,
    *,
    sample_count: int,
    infer_one: Callable[[int], None],
    infer_many: Callable[[list[int]], None],
    log_dir: str | Path,
    min_duration_s: float = 2.0,
    min_query_count: int = 32,
    offline_expected_qps: float = 100.0,
    single_stream_expected_latency_ms: float = 10.0,
    performance_sample_count: int | None = None,
    seed: int | None = None,
) -> LoadGenResult:
    """Run one LoadGen PerformanceOnly test and return its parsed summary.

    ``infer_one(index)`` (SingleStream) runs one QSL sample synchronously; ``infer_many(indices)``
    (Offline) runs all of them, in any order, and returns when done. Only the callback of the chosen
    scenario is called. In Offline ``min_query_count`` is the minimum number of samples.
    ``offline_expected_qps`` / ``single_stream_expected_latency_ms`` size LoadGen's pre-generated
    schedule: set them near the real speed (too optimistic is harmless, too pessimistic is INVALID).
    An exception raised by a callback is re-raised once LoadGen has finished.
    """
    _validate(scenario, sample_count, min_duration_s, min_query_count, offline_expected_qps,
              single_stream_expected_latency_ms, performance_sample_count)
    sample_count, min_query_count = int(sample_count), int(min_query_count)
    perf_count = sample_count if performance_sample_count is None else int(performance_sample_count)
    out = Path(log_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "scenario": scenario,
        "mode": "PerformanceOnly",
        "min_duration_s": float(min_duration_s),
        "min_query_count": int(min_query_count),
        "sample_count": int(sample_count),
        "performance_sample_count": int(perf_count),
        "seed": seed,
    }
    if scenario == "Offline":
        settings["target_qps"] = float(offline_expected_qps)
    else:  # LoadGen's SingleStream target QPS is 1 / expected latency
        settings["single_stream_expected_latency_ms"] = float(single_stream_expected_latency_ms)
        settings["target_qps"] = 1000.0 / float(single_stream_expected_latency_ms)

    with _RUN_LOCK:
        error = _run(scenario, out, sample_count, perf_count, infer_one, infer_many, min_duration_s,
                     min_query_count, offline_expected_qps, single_stream_expected_latency_ms, seed)
    if error is not None:
        raise error
    return parse_logs(out, scenario=scenario, min_duration_s=min_duration_s, settings=settings)


def _validate(scenario: str, sample_count: int, min_duration_s: float, min_query_count: int,
              offline_expected_qps: float, single_stream_expected_latency_ms: float,
              performance_sample_count: int | None) -> None:
    """Reject settings LoadGen would silently replace or hang on, naming the bad argument."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}, got {scenario!r}")
    if not _is_int(sample_count) or sample_count < 1:
        raise ValueError(f"sample_count must be an int >= 1, got {sample_count!r}")
    if not min_duration_s > 0:
        raise ValueError(f"min_duration_s must be > 0, got {min_duration_s!r}")
    if not _is_int(min_query_count) or min_query_count < 1:
        raise ValueError(f"min_query_count must be an int >= 1, got {min_query_count!r}")
    if not offline_expected_qps > 0:
        raise ValueError(f"offline_expected_qps must be > 0, got {offline_expected_qps!r}")
    if not single_stream_expected_latency_ms > 0:
        raise ValueError(
            f"single_stream_expected_latency_ms must be > 0, got {single_stream_expected_latency_ms!r}")
    if performance_sample_count is not None and not 1 <= performance_sample_count <= sample_count:
        raise ValueError(f"performance_sample_count must be in [1, sample_count={sample_count}], "
                         f"got {performance_sample_count!r}")


def _is_int(value: object) -> bool:
    """An integer of any kind (numpy's too), not a bool or float."""
    if isinstance(value, bool):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def _run(scenario: str, out: Path, sample_count: int, perf_count: int,
         infer_one: Callable[[int], None], infer_many: Callable[[list[int]], None],
         min_duration_s: float, min_query_count: int, offline_expected_qps: float,
         single_stream_expected_latency_ms: float, seed: int | None) -> BaseException | None:
    """Build settings, QSL and SUT, run the test, tear down; return the first callback error."""
    import mlperf_loadgen as lg

    ts = lg.TestSettings()
    ts.scenario = getattr(lg.TestScenario, scenario)
    ts.mode = lg.TestMode.PerformanceOnly
    ts.min_duration_ms = max(1, round(min_duration_s * 1000))
    ts.min_query_count = min_query_count
    if scenario == "Offline":
        ts.offline_expected_qps = float(offline_expected_qps)
    else:
        ts.single_stream_expected_latency_ns = max(1, round(single_stream_expected_latency_ms * 1e6))
    if seed is not None:
        ts.qsl_rng_seed = ts.sample_index_rng_seed = ts.schedule_rng_seed = int(seed)

    errors: list[BaseException] = []

    def issue_queries(query_samples: list[Any]) -> None:
        # Must complete every sample even when inference fails, or StartTest never returns.
        try:
            if not errors:
                if scenario == "Offline":
                    infer_many([s.index for s in query_samples])
                else:
                    for s in query_samples:
                        infer_one(s.index)
        except Exception as exc:  # noqa: BLE001 (re-raised after the test)
            errors.append(exc)
        lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, 0, 0) for s in query_samples])

    def flush_queries() -> None:
        """Nothing buffered: every query is completed inside issue_queries."""

    def load_samples(indices: list[int]) -> None:
        """No-op: the caller already holds every sample in memory."""

    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(out)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.log_output.copy_detail_to_stdout = False
    log_settings.enable_trace = False
    # LoadGen applies an "audit.config" it finds (by default in the cwd) over our settings; point it
    # at a file that does not exist so a stray one cannot change the run.
    audit = out / ".no-audit.config"
    audit.unlink(missing_ok=True)

    for name in (SUMMARY_FILE, DETAIL_FILE):  # never parse a previous run's logs
        (out / name).unlink(missing_ok=True)
    sut = lg.ConstructSUT(issue_queries, flush_queries)
    qsl = lg.ConstructQSL(sample_count, perf_count, load_samples, load_samples)
    try:
        lg.StartTestWithLogSettings(sut, qsl, ts, log_settings, str(audit))
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    return errors[0] if errors else None


_SUMMARY_PATTERNS = {
    "scenario": r"^Scenario\s*:\s*(\S+)",
    "result": r"^Result is\s*:\s*(VALID|INVALID)",
    "samples_per_second": r"^Samples per second\s*:\s*([0-9.eE+-]+)",
    "p50_ns": r"^50\.00 percentile latency \(ns\)\s*:\s*(\d+)",
    "p90_ns": r"^90\.00 percentile latency \(ns\)\s*:\s*(\d+)",
    "p90_target_ns": r"^90(?:\.0+)?th percentile latency \(ns\)\s*:\s*(\d+)",
    "p99_ns": r"^99\.00 percentile latency \(ns\)\s*:\s*(\d+)",
    "max_latency_ns": r"^Max latency \(ns\)\s*:\s*(\d+)",
    "qps_with_overhead": r"^QPS w/ loadgen overhead\s*:\s*([0-9.eE+-]+)",
    "samples_per_query": r"^samples_per_query\s*:\s*(\d+)",
    "min_duration_ms": r"^min_duration \(ms\)\s*:\s*(\d+)",
}


def _summary_fields(text: str) -> dict[str, str]:
    """The summary lines we use, by name (absent lines are left out)."""
    found = {}
    for name, pattern in _SUMMARY_PATTERNS.items():
        m = re.search(pattern, text, re.MULTILINE)
        if m:
            found[name] = m.group(1)
    return found


def _detail_values(path: Path) -> dict[str, Any]:
    """``key -> value`` of the ``:::MLLOG {json}`` lines of mlperf_log_detail.txt (last one wins)."""
    values: dict[str, Any] = {}
    if not path.exists():
        return values
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(":::MLLOG "):
            try:
                entry = json.loads(line[len(":::MLLOG "):])
            except json.JSONDecodeError:
                continue
            values[entry.get("key")] = entry.get("value")
    return values


def parse_logs(log_dir: str | Path, *, scenario: str, min_duration_s: float,
               settings: dict | None = None) -> LoadGenResult:
    """A ``LoadGenResult`` from the summary (and detail) log LoadGen wrote in ``log_dir``."""
    out = Path(log_dir)
    summary_path = out / SUMMARY_FILE
    if not summary_path.exists():
        raise RuntimeError(f"LoadGen wrote no {SUMMARY_FILE} in {out}")
    fields = _summary_fields(summary_path.read_text(errors="replace"))
    detail = _detail_values(out / DETAIL_FILE)
    if fields.get("scenario") not in (None, scenario):
        raise RuntimeError(f"{summary_path} is for scenario {fields['scenario']!r}, not {scenario!r}")

    def num(name: str) -> float | None:
        return float(fields[name]) if name in fields else None

    result_valid = fields.get("result") == "VALID"
    queries = detail.get("result_query_count")
    samples_per_second = p50 = p90 = p99 = None
    count: int | None = None
    duration: float | None = None
    if scenario == "Offline":
        samples_per_second = num("samples_per_second")
        per_query = detail.get("generated_samples_per_query") or num("samples_per_query")
        if queries is not None and per_query is not None:
            count = int(queries) * int(per_query)
        max_ns = num("max_latency_ns")
        duration = max_ns / 1e9 if max_ns is not None else None  # LoadGen's Offline duration
    else:
        p50_ns, p99_ns = num("p50_ns"), num("p99_ns")
        p90_ns = num("p90_ns") if "p90_ns" in fields else num("p90_target_ns")
        p50, p90, p99 = (v / 1e6 if v is not None else None for v in (p50_ns, p90_ns, p99_ns))
        count = int(queries) if queries is not None else None
        qps = num("qps_with_overhead")  # LoadGen computes it as (queries - 1) / last issue time
        if count is not None and count > 1 and qps:
            duration = (count - 1) / qps

    effective_min_ms = detail.get("effective_min_duration_ms") or num("min_duration_ms")
    effective_min_s = float(effective_min_ms) / 1000 if effective_min_ms is not None else min_duration_s
    mlperf_valid = (result_valid
                    and min(effective_min_s, min_duration_s) >= MLPERF_MIN_DURATION_S
                    and duration is not None and duration >= MLPERF_MIN_DURATION_S
                    and count is not None and count >= MLPERF_MIN_COUNT[scenario])
    return LoadGenResult(
        scenario=scenario,
        result_valid=result_valid,
        mlperf_valid=mlperf_valid,
        label=LABEL_VALID if mlperf_valid else LABEL_NOT_VALID,
        samples_per_second=samples_per_second,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        query_count=count,
        duration_s=duration,
        min_duration_s=float(min_duration_s),
        settings=dict(settings or {"scenario": scenario, "min_duration_s": float(min_duration_s)}),
        summary_path=str(summary_path),
    )
