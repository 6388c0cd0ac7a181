"""Where a sparsity dimension can pay (``nas.sparsity``): it needs a target whose runtime runs sparse weights
with sparse kernels (OpenVINO: a profile's sparse_weights_rate, on a host with AMX); elsewhere it is dropped
and the job says why, unless it is kept for size."""

from __future__ import annotations

from typing import Any

from nas.sparsity import decide_sparsity
from nas.spec import JobSpec

ZEN4 = {"microarchitecture": "zen4", "flags": ["avx2", "avx512f", "avx512_vnni", "avx512_bf16"]}
SPR = {"microarchitecture": "sapphirerapids", "flags": ["avx2", "avx512f", "avx512_vnni", "amx_tile", "amx_int8", "amx_bf16"]}


def _spec(targets: list[str], **sparsity: Any) -> JobSpec:
    return JobSpec.model_validate(
        {"base_model": "minilm", "task": {"train_file": "t.json", "eval_file": "e.json"}, "budget": {"trials": 1},
         "targets": targets, "sparsity": sparsity}  # fmt: skip
    )


def test_no_sparsity_asked_for_is_dense_without_a_word() -> None:
    d = decide_sparsity(_spec(["native"]), ZEN4)
    assert d.choices == (0.0,) and not d.dropped


def test_dropped_where_no_target_runs_sparse_kernels_and_the_reason_names_each_target() -> None:
    d = decide_sparsity(_spec(["icelake", "sapphirerapids"], choices=[0, 0.5, 0.9]), ZEN4)
    assert d.dropped and d.choices == (0.0,) and d.requested == (0.0, 0.5, 0.9) and d.pays_on == ()
    assert "icelake: its profile sets no sparse_weights_rate" in d.reason
    assert "sapphirerapids: sparse kernels need AMX" in d.reason and "zen4" in d.reason and "amx_tile" in d.reason
    assert "sparsity.for_size" in d.reason


def test_kept_for_size_when_asked() -> None:
    d = decide_sparsity(_spec(["cascadelake"], choices=[0, 0.8], for_size=True), ZEN4)
    assert d.choices == (0.0, 0.8) and not d.dropped and "for size" in d.reason


def test_searched_on_an_amx_host_for_the_sapphire_rapids_profile() -> None:
    d = decide_sparsity(_spec(["sapphirerapids", "icelake"], choices=[0, 0.9]), SPR)
    assert d.choices == (0.0, 0.9) and d.pays_on == ("sapphirerapids",)
    assert "only shrinks the download" in d.reason and "icelake" in d.reason


def test_the_decision_round_trips_through_its_stored_form() -> None:
    d = decide_sparsity(_spec(["icelake"], choices=[0, 0.5]), ZEN4)
    stored = d.to_dict()
    assert stored["choices"] == [0.0] and stored["requested"] == [0.0, 0.5] and stored["reason"] == d.reason
