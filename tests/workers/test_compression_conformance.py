"""Conformance suite of the compression-step registry (``workers.compression.COMPRESSORS``).

Every step runs on a tiny random BERT QA teacher (and a "supernet": a second BERT directory) the way
``workers.pipeline.build_candidate`` runs it: the chain-starting step gets ``None``, a PyTorch step the
sliced PyTorch model, an OpenVINO step its exported IR. What comes out must still run (PyTorch:
export to OpenVINO; OpenVINO: save and compile) with logits of the right shape. ``CHECKS`` holds what
each step must do besides; a new step adds its registry line and its check there.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.types import SubnetConfig, TrialRequest
from workers.compression import COMPRESSORS, WORKS_ON, CompressionStep, StepContext, get_step

ROOT = Path(__file__).resolve().parents[2]
SEQ = 16
SUBNET = SubnetConfig((0, 2), (2, 1), (64, 32))  # per-layer widths
NAMES = sorted(COMPRESSORS)


def _batch(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
    return {
        "input_ids": rng.integers(5, 2000, (batch, SEQ), dtype=np.int64),
        "attention_mask": np.ones((batch, SEQ), dtype=np.int64),
        "token_type_ids": np.zeros((batch, SEQ), dtype=np.int64),
    }


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 3-layer, 32-wide random BERT QA teacher and a differently seeded one posing as the supernet."""
    import torch
    import transformers

    root = tmp_path_factory.mktemp("compression-conformance")
    cfg = transformers.BertConfig(vocab_size=2048, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    for seed, name in ((0, "teacher"), (1, "supernet")):
        torch.manual_seed(seed)
        transformers.BertForQuestionAnswering(cfg).save_pretrained(root / name)
    return {"teacher": root / "teacher", "supernet": root / "supernet", "root": root}


@pytest.fixture(scope="module")
def teacher(dirs: dict[str, Path]) -> Any:
    import transformers

    return transformers.AutoModelForQuestionAnswering.from_pretrained(dirs["teacher"]).eval()


def _request(dirs: dict[str, Path], **kw: Any) -> TrialRequest:
    return TrialRequest(
        job_id="j", trial_number=0, subnet=SUBNET, teacher_dir=str(dirs["teacher"]), train_file="unused.json",
        eval_file="unused.json", max_seq_length=SEQ, doc_stride=8, max_eval_examples=4, calibration_samples=8,
        targets=("native",), output_dir=str(dirs["root"] / "out"), quant_subset_size=8, **kw,
    )  # fmt: skip


def _context(calls: list[str] | None = None) -> StepContext:
    """The BERT family, and calibration batches drawn like the pipeline's (seeded, one window each)."""
    from search_spaces import family_of

    def calibration(req: TrialRequest) -> list[dict[str, np.ndarray]]:
        if calls is not None:
            calls.append("calibration")
        rng = np.random.default_rng(req.seed)
        return [_batch(rng, 1) for _ in range(req.calibration_samples)]

    return StepContext(family=family_of("bert"), calibration=calibration)


def _torch_logits(model: Any, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    from workers.evaluate import torch_runner

    return torch_runner(model)(batch)


def _ov_logits(model: Any, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    import openvino as ov

    from workers.evaluate import openvino_runner

    return openvino_runner(ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}))(batch)


def _input_for(step: CompressionStep, teacher: Any) -> Any:
    """What the pipeline hands ``step``: nothing, the sliced PyTorch model, or its exported IR."""
    from search_spaces import family_of
    from workers.export import to_openvino

    if step.starts_chain:
        return None
    sliced = family_of("bert").extract_subnet(teacher, SUBNET)
    return sliced if step.works_on == "torch" else to_openvino(sliced, seq_len=SEQ)


# -- what each step must do, besides producing a model that still runs --------------------------------


def _check_slice(out: Any, dirs: dict[str, Path], teacher: Any) -> None:
    import transformers

    from search_spaces import family_of

    family = family_of("bert")
    batch = _batch(np.random.default_rng(3), 2)
    assert family.count_parameters(out) < family.count_parameters(teacher)
    for got, want in zip(_torch_logits(out, batch), _torch_logits(family.extract_subnet(teacher, SUBNET), batch)):
        np.testing.assert_array_equal(got, want)  # the teacher's slices, exactly
    supernet = transformers.AutoModelForQuestionAnswering.from_pretrained(dirs["supernet"]).eval()
    for steps in (0, 2):  # from the supernet: the teacher is loaded only when the request distils
        context = _context()
        cut = get_step("slice").apply(None, request=_request(dirs, supernet_dir=str(dirs["supernet"]), finetune_steps=steps), context=context)
        for got, want in zip(_torch_logits(cut, batch), _torch_logits(family.sliced(supernet, SUBNET), batch)):
            np.testing.assert_allclose(got, want, atol=1e-5)  # the supernet's slices, not the teacher's
        assert (context.teacher is not None) == bool(steps)
    context = _context()
    get_step("slice").apply(None, request=_request(dirs, finetune_steps=1), context=context)
    assert type(context.teacher).__name__ == "BertForQuestionAnswering" and context.teacher.config.num_hidden_layers == 3


def _check_ptq_int8(out: Any, dirs: dict[str, Path], teacher: Any) -> None:
    from workers.quantize import AccuracyValidation, quantized_node_count

    fp32 = _input_for(get_step("ptq_int8"), teacher)
    assert quantized_node_count(fp32) == 0 and quantized_node_count(out) > 5
    batch = _batch(np.random.default_rng(4), 2)
    for got, want in zip(_ov_logits(out, batch), _ov_logits(fp32, batch)):
        assert not np.array_equal(got, want) and np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.95
    with pytest.raises(ValueError, match="calibration"):
        get_step("ptq_int8").apply(fp32, request=_request(dirs), context=StepContext(family=None))
    accurate = _request(dirs, quant_max_f1_drop=0.5)
    with pytest.raises(ValueError, match="validation"):
        get_step("ptq_int8").apply(fp32, request=accurate, context=_context())
    calls: list[str] = []

    def validation(req: TrialRequest) -> AccuracyValidation:
        calls.append("validation")
        return AccuracyValidation(list(range(4)), lambda compiled, items: (1.0, [1.0 for _ in items]))

    context = _context(calls)
    context.validation = validation
    controlled = get_step("ptq_int8").apply(_input_for(get_step("ptq_int8"), teacher), request=accurate, context=context)
    assert calls == ["calibration", "validation"] and quantized_node_count(controlled) > 5  # no drop: nothing reverted


CHECKS: dict[str, Callable[[Any, dict[str, Path], Any], None]] = {
    "slice": _check_slice,
    "ptq_int8": _check_ptq_int8,
}


# -- the suite ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=NAMES)
def step(request: pytest.FixtureRequest) -> CompressionStep:
    return get_step(request.param)


@pytest.fixture(scope="module")
def output(step: CompressionStep, dirs: dict[str, Path], teacher: Any) -> Any:
    return step.apply(_input_for(step, teacher), request=_request(dirs), context=_context())


def test_every_step_has_a_check() -> None:
    assert set(COMPRESSORS) <= set(CHECKS), f"add what {sorted(set(COMPRESSORS) - set(CHECKS))} must do to CHECKS"


def test_lookup_and_laziness(step: CompressionStep) -> None:
    assert isinstance(step, CompressionStep) and COMPRESSORS[step.name]
    assert get_step(step.name) is step
    assert step.works_on in WORKS_ON and isinstance(step.timed_as, str) and step.timed_as
    with pytest.raises(ValueError, match="unknown compression step 'no-such-step'.*" + step.name):
        get_step("no-such-step")
    code = (
        "import sys, workers.compression as c\n"
        "assert not any(m in sys.modules for m in c.COMPRESSORS.values()), 'a step was imported by the registry'\n"
        "assert not {'openvino', 'torch', 'nncf'} & set(sys.modules), 'the registry loaded a framework'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_the_chain_position_is_enforced(step: CompressionStep, dirs: dict[str, Path], teacher: Any) -> None:
    """A chain-starting step refuses a model; every other step refuses to start a chain."""
    wrong = _input_for(get_step("slice"), teacher) if not step.starts_chain else _input_for(get_step("ptq_int8"), teacher)
    with pytest.raises(ValueError):
        step.apply(wrong, request=_request(dirs), context=_context())


def test_the_output_still_runs(step: CompressionStep, output: Any, tmp_path: Path) -> None:
    """A PyTorch step's model exports to OpenVINO; an OpenVINO step's model saves and compiles."""
    import openvino as ov

    from workers.export import save_ir, to_openvino

    batch = _batch(np.random.default_rng(5), 3)
    if step.works_on == "torch":
        start, end = _torch_logits(output, batch)
        ov_model = to_openvino(output, seq_len=SEQ)
    else:
        assert isinstance(output, ov.Model)
        ov_model = output
    xml = save_ir(ov_model, tmp_path)
    reloaded = ov.Core().read_model(xml)
    for got in _ov_logits(reloaded, batch):
        assert got.shape == (3, SEQ) and np.isfinite(got).all()
    if step.works_on == "torch":
        for got, want in zip(_ov_logits(reloaded, batch), (start, end)):
            np.testing.assert_allclose(got, want, atol=1e-4)


def test_what_the_step_is_for(step: CompressionStep, output: Any, dirs: dict[str, Path], teacher: Any) -> None:
    CHECKS[step.name](output, dirs, teacher)


def test_the_pipeline_chain_names_registered_steps() -> None:
    from workers.pipeline import compression_steps

    assert [s.name for s in compression_steps("int8")] == ["slice", "ptq_int8"]
    assert [s.name for s in compression_steps("fp32")] == ["slice"]
    for precision in ("int8", "fp32"):
        chain = compression_steps(precision)
        assert chain[0].starts_chain and not any(s.starts_chain for s in chain[1:])
        sides = [WORKS_ON.index(s.works_on) for s in chain]
        assert sides == sorted(sides)  # PyTorch steps before the export, OpenVINO steps after it

