"""The teacher stage says whether the teacher was given (the base has a QA head) or fine-tuned from the base."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nas.config import Settings
from nas.context import KeyedLocks
from nas.spec import JobSpec


def _base(out: Path, architectures: list[str]) -> Path:
    out.mkdir(parents=True)
    config = {"model_type": "bert", "architectures": architectures, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 32, "hidden_size": 16}  # fmt: skip
    (out / "config.json").write_text(json.dumps(config))
    (out / "model.safetensors").write_bytes(b"weights")
    return out


def _ctx(tmp_path: Path, base: Path) -> Any:
    data = tmp_path / "squad.json"
    data.write_text(json.dumps({"data": []}))
    spec = JobSpec.model_validate({
        "base_model": str(base),
        "task": {"train_file": str(data), "eval_file": str(data), "max_seq_length": 64, "doc_stride": 16},
        "search_space": {"layers": [2], "heads": [2], "ffn": [32]},
        "budget": {"trials": 1},
    })  # fmt: skip
    updates: dict[str, Any] = {}
    ctx = SimpleNamespace(spec=spec, settings=Settings(data_dir=tmp_path / "data"), locks=KeyedLocks(), updates=updates,
                          update=updates.update, wait=lambda ref: pytest.fail("no teacher should be trained"))  # fmt: skip
    return ctx


def test_a_base_with_a_qa_head_is_the_given_teacher(tmp_path: Path) -> None:
    from nas.stages.teacher import run_teacher_stage

    base = _base(tmp_path / "base", ["BertForQuestionAnswering"])
    ctx = _ctx(tmp_path, base)
    assert run_teacher_stage(ctx) == str(base)
    assert ctx.updates["teacher_dir"] == str(base)
    assert ctx.updates["teacher_metrics"] == {"given": True, "source": str(base)}


def test_a_fine_tuned_teacher_says_so_beside_its_metrics(tmp_path: Path) -> None:
    from nas.stages.teacher import run_teacher_stage, teacher_key

    base = _base(tmp_path / "base", ["BertModel"])
    ctx = _ctx(tmp_path, base)
    cached = ctx.settings.teachers_dir / teacher_key(base, ctx.spec)  # trained before: the cache answers
    cached.mkdir(parents=True)
    (cached / "metrics.json").write_text(json.dumps({"f1": 81.5, "steps": 10}))
    assert run_teacher_stage(ctx) == str(cached.resolve())
    assert ctx.updates["teacher_metrics"] == {"given": False, "source": str(base), "f1": 81.5, "steps": 10}
