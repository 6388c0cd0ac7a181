"""Left-out search-space dimensions, filled from the base model's config (``nas.spec_defaults``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from nas.config import Settings
from nas.spec import JobSpec
from nas.spec_defaults import fill_search_space, with_search_space_defaults
from nas.validation import SpecError
from search_spaces import space_for
from search_spaces.bert.family import FAMILY as BERT, divisors, ffn_widths

MINILM = SimpleNamespace(model_type="bert", num_hidden_layers=6, num_attention_heads=12, hidden_size=384, intermediate_size=1536)
FULL = {"layers": [2, 3, 4, 5, 6], "heads": [1, 2, 3, 4, 6, 12], "ffn": [384, 768, 1152, 1536]}


def _spec(**fields: Any) -> JobSpec:
    return JobSpec.model_validate(
        {"base_model": "minilm", "task": {"train_file": "t.json", "eval_file": "e.json"}, "budget": {"trials": 1}, **fields}
    )


def _dims(spec: JobSpec) -> dict[str, Any]:
    return {k: getattr(spec.search_space, k) for k in FULL}


def test_a_spec_may_leave_the_space_out_and_is_not_grid_checked_until_filled() -> None:
    spec = _spec(sampler="grid", search_space={"per_layer": True})  # huge once filled, unknown before
    assert not spec.search_space.filled and spec.search_space.size() is None
    assert _dims(_spec()) == {"layers": None, "heads": None, "ffn": None}


def test_fills_every_left_out_dimension_from_the_base() -> None:
    filled = fill_search_space(_spec(), MINILM)
    assert _dims(filled) == FULL and filled.search_space.filled and filled.search_space.size() == 5 * 6 * 4
    assert space_for(filled.search_space, MINILM).size() == 120  # the defaults pass the family's checks


def test_keeps_what_was_given() -> None:
    given = {"layers": [3, 6], "ffn": {"min": 512, "max": 1536, "step": 512}, "per_layer": True, "layer_selection": "first"}
    filled = fill_search_space(_spec(search_space=given), MINILM)
    assert _dims(filled) == {"layers": [3, 6], "heads": FULL["heads"], "ffn": [512, 1024, 1536]}
    assert (filled.search_space.per_layer, filled.search_space.layer_selection) == (True, "first")
    complete = _spec(search_space={"layers": [2], "heads": [12], "ffn": [1536]})
    assert fill_search_space(complete, MINILM) is complete  # nothing to fill: the spec itself


def test_the_filled_spec_is_validated_again() -> None:
    with pytest.raises(ValidationError, match="sampler 'grid' enumerates the space"):
        fill_search_space(_spec(sampler="grid", search_space={"per_layer": True}), MINILM)
    assert fill_search_space(_spec(sampler="grid"), MINILM).search_space.size() == 120  # small enough


def test_bert_defaults_at_the_edges() -> None:
    assert divisors(12) == [1, 2, 3, 4, 6, 12] and divisors(7) == [1, 7]
    assert ffn_widths(384, 1536) == [384, 768, 1152, 1536]
    assert ffn_widths(384, 1000) == [384, 768, 1000]  # the full width even when it is no multiple
    assert ffn_widths(512, 256) == [256]
    one = SimpleNamespace(**{**vars(MINILM), "num_hidden_layers": 1})
    assert BERT.default_choices(one)["layers"] == [1]
    assert BERT.default_choices(vars(MINILM)) == FULL  # a dict config too


def test_base_model_errors_name_base_model(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(SpecError) as err:
        with_search_space_defaults(_spec(base_model=str(tmp_path / "nowhere")), settings)
    assert err.value.field == "base_model" and "neither a registered model" in err.value.message
    (tmp_path / "gpt2").mkdir()
    (tmp_path / "gpt2" / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(SpecError, match="base_model: .*'gpt2' is not supported"):
        with_search_space_defaults(_spec(base_model=str(tmp_path / "gpt2")), settings)
    complete = _spec(base_model=str(tmp_path / "nowhere"), search_space={"layers": [2], "heads": [12], "ffn": [1536]})
    assert with_search_space_defaults(complete, settings) is complete  # a complete space opens no base model


def test_a_grid_the_defaults_make_too_large_names_search_space(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        with_search_space_defaults(_spec(sampler="grid", search_space={"per_layer": True}), Settings(data_dir=tmp_path))
    assert err.value.field == "search_space" and err.value.message.startswith("sampler 'grid' enumerates the space")
