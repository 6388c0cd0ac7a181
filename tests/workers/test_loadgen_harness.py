"""``workers.loadgen_harness`` against the real MLPerf LoadGen: SUTs that sleep a known time per sample.

Runs are about a second each, so LoadGen may call them VALID but they are never MLPerf results; the
"valid MLPerf run" label is checked by re-parsing a real run's logs with MLPerf-sized numbers put in.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from workers.loadgen_harness import (
    DETAIL_FILE,
    LABEL_NOT_VALID,
    LABEL_VALID,
    SUMMARY_FILE,
    LoadGenResult,
    parse_logs,
    run_loadgen,
)

SLEEP_ONE_S = 0.002  # SingleStream: 2 ms per sample
SLEEP_PER_SAMPLE_S = 0.001  # Offline: 1 ms per sample


def _never(*_args: object) -> None:
    raise AssertionError("the other scenario's callback was called")


@pytest.fixture(scope="module")
def single_stream(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadGenResult, list[int]]:
    """One 1 s SingleStream run shared by the tests that read it, and the indices it inferred."""
    seen: list[int] = []

    def infer_one(index: int) -> None:
        seen.append(index)
        time.sleep(SLEEP_ONE_S)

    result = run_loadgen("SingleStream", sample_count=16, infer_one=infer_one, infer_many=_never,
                         log_dir=tmp_path_factory.mktemp("ss"), min_duration_s=1.0,
                         min_query_count=32, single_stream_expected_latency_ms=2.0, seed=1)
    return result, seen


def test_single_stream_measures_known_latency(single_stream: tuple[LoadGenResult, list[int]]) -> None:
    result, seen = single_stream
    assert isinstance(result, LoadGenResult)
    assert result.scenario == "SingleStream"
    assert result.result_valid  # 1 s, ~450 queries: enough for LoadGen's own checks
    assert result.mlperf_valid is False and result.label == LABEL_NOT_VALID
    assert result.samples_per_second is None
    assert 1.9 <= result.p50_ms <= result.p90_ms <= result.p99_ms
    assert result.p90_ms <= 10.0
    assert result.query_count == len(seen) and result.query_count >= 64
    assert set(seen) <= set(range(16))
    assert 1.0 <= result.duration_s < 3.0
    assert result.min_duration_s == 1.0
    assert result.settings["scenario"] == "SingleStream" and result.settings["min_query_count"] == 32
    assert Path(result.summary_path).is_file()
    assert result.to_dict()["label"] == LABEL_NOT_VALID


def _as_if_long(src: Path, dest: Path, *, queries: int) -> Path:
    """The real run's logs with MLPerf-sized numbers: 600 s minimum, ``queries`` queries, ~610 s."""
    dest.mkdir()
    summary = (src / SUMMARY_FILE).read_text()
    summary = re.sub(r"^min_duration \(ms\): \d+", "min_duration (ms): 600000", summary, flags=re.M)
    summary = re.sub(r"^QPS w/ loadgen overhead\s*: .*", f"QPS w/ loadgen overhead : {(queries - 1) / 610}",
                     summary, flags=re.M)
    (dest / SUMMARY_FILE).write_text(summary)
    detail = (src / DETAIL_FILE).read_text()
    detail = re.sub(r'("key": "effective_min_duration_ms", "value": )\d+', r"\g<1>600000", detail)
    detail = re.sub(r'("key": "result_query_count", "value": )\d+', rf"\g<1>{queries}", detail)
    (dest / DETAIL_FILE).write_text(detail)
    return dest


def test_mlperf_label_needs_mlperf_minimums(single_stream: tuple[LoadGenResult, list[int]],
                                            tmp_path: Path) -> None:
    """Only a VALID run of >= 600 s and >= 1024 SingleStream queries is labelled an MLPerf run."""
    src = Path(single_stream[0].summary_path).parent
    long_run = parse_logs(_as_if_long(src, tmp_path / "ok", queries=1024), scenario="SingleStream",
                          min_duration_s=600.0)
    assert long_run.result_valid and long_run.mlperf_valid and long_run.label == LABEL_VALID
    assert long_run.query_count == 1024 and long_run.duration_s == pytest.approx(610.0)
    too_few = parse_logs(_as_if_long(src, tmp_path / "few", queries=1023), scenario="SingleStream",
                         min_duration_s=600.0)
    assert too_few.result_valid and not too_few.mlperf_valid and too_few.label == LABEL_NOT_VALID


def test_offline_measures_known_throughput(tmp_path: Path) -> None:
    calls: list[list[int]] = []

    def infer_many(indices: list[int]) -> None:
        calls.append(indices)
        time.sleep(SLEEP_PER_SAMPLE_S * len(indices))

    result = run_loadgen("Offline", sample_count=64, infer_one=_never, infer_many=infer_many,
                         log_dir=tmp_path / "off", min_duration_s=1.0, offline_expected_qps=1000.0)
    assert result.scenario == "Offline"
    assert len(calls) == 1  # Offline: every sample in one call
    assert result.query_count == len(calls[0]) == 1100  # 1.1 * 1 s * 1000 expected QPS
    assert set(calls[0]) <= set(range(64))
    assert 300 <= result.samples_per_second <= 1100
    assert result.p50_ms is None and result.p90_ms is None and result.p99_ms is None
    assert result.result_valid
    assert result.mlperf_valid is False and result.label == LABEL_NOT_VALID
    assert result.duration_s >= 1.0
    assert result.settings["target_qps"] == 1000.0
    assert Path(result.summary_path).is_file()


def test_offline_too_low_expected_qps_is_invalid(tmp_path: Path) -> None:
    """LoadGen pre-generates 1.1 * min_duration * expected QPS samples; a faster SUT ends too soon."""
    result = run_loadgen("Offline", sample_count=8, infer_one=_never, infer_many=lambda idx: None,
                         log_dir=tmp_path, min_duration_s=0.5, min_query_count=1,
                         offline_expected_qps=20.0)
    assert result.query_count == 11
    assert not result.result_valid and not result.mlperf_valid
    assert result.label == LABEL_NOT_VALID


def test_callback_error_is_raised_after_the_run(tmp_path: Path) -> None:
    def broken(index: int) -> None:
        raise KeyError(f"no sample {index}")

    with pytest.raises(KeyError, match="no sample"):
        run_loadgen("SingleStream", sample_count=4, infer_one=broken, infer_many=_never,
                    log_dir=tmp_path, min_duration_s=0.2, single_stream_expected_latency_ms=5.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scenario": "Server"}, "scenario"),
        ({"scenario": "singlestream"}, "scenario"),
        ({"sample_count": 0}, "sample_count"),
        ({"min_duration_s": 0}, "min_duration_s"),
        ({"min_duration_s": -1.0}, "min_duration_s"),
        ({"min_query_count": 0}, "min_query_count"),
        ({"offline_expected_qps": 0.0}, "offline_expected_qps"),
        ({"single_stream_expected_latency_ms": -2.0}, "single_stream_expected_latency_ms"),
        ({"performance_sample_count": 9}, "performance_sample_count"),
    ],
)
def test_bad_input_is_a_clear_value_error(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"scenario": "SingleStream", "sample_count": 8, "min_duration_s": 1.0} | kwargs
    scenario = args.pop("scenario")
    with pytest.raises(ValueError, match=message):
        run_loadgen(scenario, infer_one=_never, infer_many=_never, log_dir=tmp_path / "x", **args)
    assert not (tmp_path / "x").exists()  # rejected before LoadGen (or the log dir) is touched
