"""Data checks at submission: bad files, overlong questions and named data sets are a SpecError naming the field."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from nas.config import Settings
from nas.spec import JobSpec, QuantizationSpec
from nas.validation import SpecError, validate_job

CONTEXT = "Paris is the capital of France. The Seine flows through Paris."


def _doc(question: str = "What is the capital of France?") -> dict[str, Any]:
    return {"data": [{"title": "Paris", "paragraphs": [{"context": CONTEXT, "qas": [
        {"id": "q1", "question": question, "answers": [{"text": "Paris", "answer_start": 0}]},
        {"id": "q2", "question": "Which river?", "answers": [{"text": "The Seine", "answer_start": 32}]},
    ]}]}]}


def _spec(train: str, evalf: str, **task: Any) -> JobSpec:
    return JobSpec.model_validate({
        "base_model": "minilm",
        "task": {"train_file": train, "eval_file": evalf, "max_seq_length": 64, "doc_stride": 16, **task},
        "search_space": {"layers": [2], "heads": [12], "ffn": [1536]},
        "budget": {"trials": 1},
    })


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    good, long = tmp_path / "good.json", tmp_path / "long.json"
    good.write_text(json.dumps(_doc()))
    long.write_text(json.dumps(_doc("how " * 60 + "?")))
    return str(good), str(long)


def test_good_files_pass(tmp_path: Path, files: tuple[str, str]) -> None:
    assert validate_job(_spec(files[0], files[0]), Settings(data_dir=tmp_path)) is False


@pytest.mark.parametrize("field", ["task.train_file", "task.eval_file"])
def test_overlong_question_is_refused_naming_field_file_and_record(
    tmp_path: Path, files: tuple[str, str], field: str
) -> None:
    good, long = files
    spec = _spec(long, good) if field == "task.train_file" else _spec(good, long)
    with pytest.raises(SpecError) as info:
        validate_job(spec, Settings(data_dir=tmp_path))
    assert info.value.field == field
    assert info.value.message.startswith(f"{long}: record q1: the question is 61 tokens long")
    # the same file passes with windows that have room for it
    assert validate_job(_spec(long, long, max_seq_length=256, doc_stride=64), Settings(data_dir=tmp_path)) is False


def test_malformed_file_is_refused(tmp_path: Path, files: tuple[str, str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": []}))
    with pytest.raises(SpecError) as info:
        validate_job(_spec(files[0], str(bad)), Settings(data_dir=tmp_path))
    assert info.value.field == "task.eval_file" and "no questions" in info.value.message


def test_named_data_set_without_the_library(tmp_path: Path, files: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(SpecError) as info:
        validate_job(_spec(files[0], "squad"), Settings(data_dir=tmp_path))
    assert info.value.field == "task.eval_file"
    assert "`datasets`" in info.value.message and "dev-v1.1.json" in info.value.message


def test_named_data_set_from_the_cache(tmp_path: Path, files: tuple[str, str]) -> None:
    """Once fetched, ``squad:train`` is an ordinary file in <data_dir>/datasets, outside any data root."""
    cache = tmp_path / "data" / "datasets"  # the data dir is always allowed: keep files[0] outside it
    cache.mkdir(parents=True)
    (cache / "squad-train.json").write_text(json.dumps(_doc()))
    settings = Settings(data_dir=tmp_path / "data", data_roots=[tmp_path / "elsewhere"])
    with pytest.raises(SpecError, match="outside the allowed data directories"):
        validate_job(_spec(files[0], files[0]), settings)
    spec = _spec("squad:train", "squad:train")
    assert validate_job(spec, settings) is False


def test_quantization_section() -> None:
    assert QuantizationSpec() == QuantizationSpec(max_f1_drop=None, smooth_quant=True, preset="mixed", subset_size=300)
    spec = JobSpec.model_validate({**_spec("a", "b").model_dump(), "quantization": {"max_f1_drop": 1.0, "preset": "performance"}})
    assert spec.quantization.max_f1_drop == 1.0 and spec.quantization.smooth_quant
    with pytest.raises(ValueError):
        QuantizationSpec(preset="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        QuantizationSpec(max_f1_drop=0)


def test_with_local_data_files(tmp_path: Path, files: tuple[str, str]) -> None:
    from nas.validation import with_local_data_files

    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "squad-validation.json").write_text(json.dumps(_doc()))
    spec = with_local_data_files(_spec(files[0], "squad"), Settings(data_dir=tmp_path))
    assert spec.task.train_file == files[0]
    assert spec.task.eval_file == str((tmp_path / "datasets" / "squad-validation.json").resolve())
    assert spec.task.max_seq_length == 64 and spec.search_space.layers == [2]


def _tiny_bert_qa(out: Path, num_labels: int = 2, *, architectures: list[str] | None = None) -> Path:
    import torch
    import transformers

    cfg = transformers.BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, num_labels=num_labels, architectures=architectures)  # fmt: skip
    torch.manual_seed(0)
    transformers.BertForQuestionAnswering(cfg).save_pretrained(out)
    if architectures:  # save_pretrained writes the saving class's name
        config = json.loads((out / "config.json").read_text())
        (out / "config.json").write_text(json.dumps({**config, "architectures": architectures}))
    return out


@pytest.mark.parametrize("architectures", [["BertForQuestionAnswering"], ["ElectraForQuestionAnswering"]])
def test_a_qa_head_of_other_than_two_outputs_is_refused_naming_the_base_and_the_count(tmp_path: Path, architectures: list[str]) -> None:
    from nas.validation import base_model_of

    base = _tiny_bert_qa(tmp_path / "three", num_labels=3, architectures=architectures)
    spec = _spec("a", "b").model_copy(update={"base_model": str(base)})
    with pytest.raises(SpecError) as info:
        base_model_of(spec, Settings(data_dir=tmp_path))
    assert info.value.field == "base_model"
    assert info.value.message.startswith(f"{base}: its question-answering head has 3 outputs (its config.json's labels)")


def test_a_qa_weight_of_the_wrong_shape_is_refused_though_the_config_says_two(tmp_path: Path) -> None:
    """The safetensors header (never the weights) gives the qa_outputs shape."""
    from nas.validation import base_model_of, safetensors_shape

    base = _tiny_bert_qa(tmp_path / "five", num_labels=5, architectures=["BertForQuestionAnswering"])
    config = json.loads((base / "config.json").read_text())
    for key in ("id2label", "label2id", "num_labels"):
        config.pop(key, None)
    (base / "config.json").write_text(json.dumps(config))
    assert safetensors_shape(base, "qa_outputs.weight") == [5, 16]
    spec = _spec("a", "b").model_copy(update={"base_model": str(base)})
    with pytest.raises(SpecError) as info:
        base_model_of(spec, Settings(data_dir=tmp_path))
    assert info.value.message.startswith(f"{base}: its question-answering head has 5 outputs (its qa_outputs weight)")


def test_a_two_output_head_and_a_headless_base_pass(tmp_path: Path) -> None:
    from nas.validation import base_model_of

    good = _tiny_bert_qa(tmp_path / "good", architectures=["BertForQuestionAnswering"])
    headless = _tiny_bert_qa(tmp_path / "headless", num_labels=3, architectures=["BertModel"])  # the teacher stage adds a head
    for base in (good, headless):
        assert base_model_of(_spec("a", "b").model_copy(update={"base_model": str(base)}), Settings(data_dir=tmp_path))[0] == base


def test_a_tokenizer_without_offsets_is_refused_naming_the_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nas.validation as validation

    class SlowTokenizer:
        is_fast = False

    monkeypatch.setattr(validation, "_tokenizer", lambda model_dir: SlowTokenizer())
    with pytest.raises(SpecError) as info:
        validation._base_tokenizer(tmp_path / "slow-base")
    assert info.value.field == "base_model"
    assert info.value.message.startswith(f"{tmp_path / 'slow-base'}: needs a fast (Rust) tokenizer")
