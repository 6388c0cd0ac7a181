"""Teacher fine-tuning: held-out articles for model selection, checkpoints, resume, atomic output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.qa.synthetic import write_synthetic_squad
from search_spaces.bert.training import TrainSettings
from workers.teacher import partial_dir, train_teacher

SEQ, STRIDE = 64, 16


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("teacher-data")
    train = write_synthetic_squad(root / "train.json", num_articles=6, paragraphs_per_article=2, questions_per_paragraph=3)
    evalf = write_synthetic_squad(root / "eval.json", num_articles=2, paragraphs_per_article=2, questions_per_paragraph=2, seed=1)
    return str(train), str(evalf)


def _train(model_dir: Path, out: Path, data: tuple[str, str], **kwargs) -> dict:  # type: ignore[no-untyped-def]
    return train_teacher(
        model_dir, out, train_file=data[0], eval_file=data[1], max_seq_length=SEQ, doc_stride=STRIDE,
        settings=TrainSettings(max_steps=6, batch_size=8, learning_rate=1e-3), **kwargs,
    )


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def test_validation_split_reports_heldout_f1(tiny_qa_model: Path, data: tuple[str, str], tmp_path: Path) -> None:
    stages: list[str] = []
    metrics = _train(tiny_qa_model, tmp_path / "t", data, validation_split=0.34, on_stage=stages.append)
    assert metrics["heldout_articles"] == 2 and metrics["heldout_questions"] == 12
    assert metrics["train_questions"] == 24 and 0 <= metrics["heldout_f1"] <= 100 and 0 <= metrics["f1"] <= 100
    assert json.loads((tmp_path / "t" / "metrics.json").read_text())["heldout_f1"] == metrics["heldout_f1"]
    assert "evaluating on the held-out train articles" in stages
    assert not (tmp_path / "t" / "checkpoint").exists() and not partial_dir(tmp_path / "t").exists()


def test_interrupted_teacher_resumes_from_its_checkpoint(tiny_qa_model: Path, data: tuple[str, str], tmp_path: Path) -> None:
    reference = _train(tiny_qa_model, tmp_path / "ref", data, checkpoint_every=None)
    assert reference["resumed_from_step"] == 0

    def crash_after_4(step: int, total: int, loss: float) -> None:
        if step == 4:
            raise KeyboardInterrupt

    out = tmp_path / "t"
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_qa_model, out, data, checkpoint_every=2, on_step=crash_after_4)
    assert (partial_dir(out) / "checkpoint" / "checkpoint.pt").is_file() and not out.exists()

    metrics = _train(tiny_qa_model, out, data, checkpoint_every=2)
    assert metrics["resumed_from_step"] == 4 and metrics["steps"] == 6
    assert not partial_dir(out).exists() and not (out / "checkpoint").exists()
    ref, got = _weights(tmp_path / "ref"), _weights(out)
    for name, value in ref.items():
        torch.testing.assert_close(got[name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert metrics["f1"] == pytest.approx(reference["f1"], abs=1e-6)


def test_bad_eval_data_fails_before_any_training(tiny_qa_model: Path, data: tuple[str, str], tmp_path: Path) -> None:
    from core.qa.squad import SquadFormatError

    doc = json.loads(Path(data[1]).read_text())
    doc["data"][0]["paragraphs"][0]["qas"][0]["question"] = "why " * 100
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    steps: list[int] = []
    with pytest.raises(SquadFormatError, match="bad.json: record .*100 tokens"):
        _train(tiny_qa_model, tmp_path / "t", (data[0], str(bad)), on_step=lambda s, t, l: steps.append(s))
    assert steps == [] and not partial_dir(tmp_path / "t").exists()
