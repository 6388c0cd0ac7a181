"""The job's precision: the spec's, or measured from its own teacher in FP32 and INT8 (``precision: auto``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nas.deployment import choose_precision


def m(target: str, p90: float, sps: float) -> SimpleNamespace:
    return SimpleNamespace(target=target, p90_ms=p90, throughput_sps=sps)


# a zen3-like host: INT8 slower (p90 41.2 vs 30.9 ms, 30.8 vs 36.9 samples/s, as measured on one)
SLOW_INT8 = {"fp32": [m("native", 30.9, 36.9)], "int8": [m("native", 41.2, 30.8)]}
FAST_INT8 = {"fp32": [m("native", 30.9, 36.9)], "int8": [m("native", 12.0, 95.0)]}


def test_auto_takes_fp32_where_int8_is_slower_and_says_why() -> None:
    d = choose_precision("auto", "latency", SLOW_INT8, ["native"])
    assert d["precision"] == "fp32" and d["chosen_by"] == "measured"
    assert "INT8 slower than FP32" in d["reason"] and "41.2" in d["reason"] and "30.9" in d["reason"]
    assert d["targets"]["native"]["int8_over_fp32"] == pytest.approx(41.2 / 30.9, abs=1e-3)


def test_auto_takes_int8_where_it_wins() -> None:
    assert choose_precision("auto", "latency", FAST_INT8, ["native"])["precision"] == "int8"
    assert choose_precision("auto", "throughput", FAST_INT8, ["native"])["precision"] == "int8"


def test_the_objective_decides_which_figure_counts() -> None:
    # INT8 wins on p90 but loses on throughput: each objective reads its own figure
    mixed = {"fp32": [m("native", 30.0, 100.0)], "int8": [m("native", 25.0, 80.0)]}
    assert choose_precision("auto", "latency", mixed, ["native"])["precision"] == "int8"
    assert choose_precision("auto", "throughput", mixed, ["native"])["precision"] == "fp32"


def test_targets_vote_and_a_tie_goes_to_int8() -> None:
    two = {"fp32": [m("a", 10, 10), m("b", 10, 10)], "int8": [m("a", 20, 5), m("b", 5, 20)]}
    d = choose_precision("auto", "latency", two, ["a", "b"])
    assert d["precision"] == "int8" and "disagree" in d["reason"]
    three = {"fp32": [*two["fp32"], m("c", 10, 10)], "int8": [*two["int8"], m("c", 20, 5)]}
    assert choose_precision("auto", "latency", three, ["a", "b", "c"])["precision"] == "fp32"


def test_the_spec_wins_when_it_names_a_precision() -> None:
    d = choose_precision("int8", "latency", SLOW_INT8, ["native"])
    assert d["precision"] == "int8" and d["chosen_by"] == "spec"
    assert d["targets"]["native"]["faster"] == "fp32"  # the figures are still on record
    assert choose_precision("fp32", "latency", FAST_INT8, ["native"])["precision"] == "fp32"


def test_without_figures_auto_falls_back_to_int8_and_a_bad_request_is_named() -> None:
    d = choose_precision("auto", "latency", {"fp32": [m("native", 1, 1)]}, ["native"])
    assert d["precision"] == "int8" and d["chosen_by"] == "default"
    with pytest.raises(ValueError, match="bf17"):
        choose_precision("bf17", "latency", SLOW_INT8, ["native"])
