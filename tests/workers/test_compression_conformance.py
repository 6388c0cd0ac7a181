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
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.types import CompressionPlan, SubnetConfig, TrialRequest
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


def _distil_on_random_windows(log: list[dict[str, Any]]) -> Callable[..., None]:
    """``StepContext.distil`` on random windows: real optimiser steps (AdamW on a KD-like loss towards
    zero logits), the step's ``on_step`` after each, every call logged (the pipeline's reads SQuAD)."""

    def distil(model: Any, request: TrialRequest, *, steps: int, learning_rate: float, on_step: Any = None, bf16: bool | None = None) -> None:
        import torch

        from core.model_inputs import model_input_names

        log.append({"steps": steps, "learning_rate": learning_rate, "bf16": bf16})
        rng = np.random.default_rng(7)
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
        model.train()
        for step in range(1, steps + 1):
            batch = {k: torch.from_numpy(v) for k, v in _batch(rng, 4).items() if k in model_input_names(model)}
            out = model(**batch)
            loss = out.start_logits.pow(2).mean() + out.end_logits.pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if on_step is not None:
                on_step(step, steps)
        model.eval()

    return distil


def _context(calls: list[str] | None = None, distils: list[dict[str, Any]] | None = None) -> StepContext:
    """The BERT family, calibration batches drawn like the pipeline's (seeded, one window each) and a
    distillation on random windows."""
    from search_spaces import family_of

    def calibration(req: TrialRequest) -> list[dict[str, np.ndarray]]:
        if calls is not None:
            calls.append("calibration")
        rng = np.random.default_rng(req.seed)
        return [_batch(rng, 1) for _ in range(req.calibration_samples)]

    return StepContext(family=family_of("bert"), calibration=calibration, distil=_distil_on_random_windows([] if distils is None else distils))


SPARSE = SubnetConfig(SUBNET.layers, SUBNET.heads, SUBNET.ffn, sparsity=0.5)
# what each step is applied with by the suite (a step that does nothing for the default request gets one it acts on)
REQUESTS: dict[str, dict[str, Any]] = {
    "prune": {"subnet": SPARSE, "compression": CompressionPlan(prune_steps=6)},
    "qat_int8": {"compression": CompressionPlan(qat_steps=2)},
}


def _step_request(dirs: dict[str, Path], name: str, **kw: Any) -> TrialRequest:
    fields = {**REQUESTS.get(name, {}), **kw}
    subnet = fields.pop("subnet", SUBNET)
    return replace(_request(dirs, **fields), subnet=subnet)


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


def _encoder_weights(model: Any) -> dict[str, Any]:
    return {n: p.detach() for n, p in model.named_parameters() if p.dim() == 2}


def _check_prune(out: Any, dirs: dict[str, Path], teacher: Any) -> None:
    from workers.compression.nncf_torch import is_compressed, strip_for_export
    from workers.compression.prune import cubic_schedule
    from workers.export import to_openvino, weight_sparsity

    assert is_compressed(out)  # masks stay as hooks until the export, so a QAT step trains with them
    plain = strip_for_export(out)
    assert not is_compressed(plain)
    for name, w in _encoder_weights(plain).items():
        share = float((w == 0).float().mean())
        if "embeddings" in name or "qa_outputs" in name:
            assert share < 0.01, name  # dense on purpose (the padding row of the embeddings is zero)
        else:
            assert abs(share - 0.5) < 0.02, (name, share)  # local: every Linear of the encoder at the target
    assert abs(weight_sparsity(to_openvino(plain, seq_len=SEQ)) - 0.5) < 0.05  # the zeros reach the IR
    schedule = cubic_schedule(0.9, 100)
    assert schedule[0] == 0.0 and schedule[max(schedule)] == 0.9 and max(schedule) == 70
    values = [schedule[k] for k in sorted(schedule)]
    assert values == sorted(values) and values[1] > 0.9 / 10  # cubic: fastest at first
    assert cubic_schedule(0.8, 0) == {0: 0.8}
    distils: list[dict[str, Any]] = []
    get_step("prune").apply(_input_for(get_step("prune"), teacher), request=_step_request(dirs, "prune"), context=_context(distils=distils))
    assert distils == [{"steps": 6, "learning_rate": 1e-4, "bf16": None}]
    once = get_step("prune").apply(
        _input_for(get_step("prune"), teacher), request=_step_request(dirs, "prune", compression=CompressionPlan(prune_steps=0)),
        context=StepContext(family=None),
    )  # one shot: no training, no teacher
    assert abs(float((strip_for_export(once).bert.encoder.layer[0].intermediate.dense.weight == 0).float().mean()) - 0.5) < 0.02
    with pytest.raises(ValueError, match="distil"):
        get_step("prune").apply(_input_for(get_step("prune"), teacher), request=_step_request(dirs, "prune"), context=StepContext(family=None))
    dense = _input_for(get_step("prune"), teacher)
    assert get_step("prune").apply(dense, request=_request(dirs), context=_context()) is dense  # sparsity 0: nothing to do


def _check_qat_int8(out: Any, dirs: dict[str, Path], teacher: Any) -> None:
    from workers.compression.nncf_torch import has_quantizers, strip_for_export
    from workers.export import to_openvino
    from workers.quantize import quantized_node_count

    assert has_quantizers(out)
    ir = to_openvino(strip_for_export(out), seq_len=SEQ)
    assert quantized_node_count(ir) > 5
    fp32 = _input_for(get_step("qat_int8"), teacher)
    batch = _batch(np.random.default_rng(4), 2)
    for got, want in zip(_ov_logits(ir, batch), _torch_logits(fp32, batch)):
        assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.9  # trained 2 steps on random windows: still the model
    distils: list[dict[str, Any]] = []
    get_step("qat_int8").apply(fp32, request=_step_request(dirs, "qat_int8"), context=_context(distils=distils))
    assert distils == [{"steps": 2, "learning_rate": 5e-5, "bf16": False}]  # fp32 under the fake quantizers
    with pytest.raises(ValueError, match="calibration"):
        get_step("qat_int8").apply(_input_for(get_step("qat_int8"), teacher), request=_step_request(dirs, "qat_int8"),
                                   context=StepContext(family=None, distil=_distil_on_random_windows([])))  # fmt: skip
    with pytest.raises(ValueError, match="distil"):
        context = _context()
        context.distil = None
        get_step("qat_int8").apply(_input_for(get_step("qat_int8"), teacher), request=_step_request(dirs, "qat_int8"), context=context)
    # after pruning: the masks hold through QAT and the INT8 IR keeps the zeros
    pruned = get_step("prune").apply(_input_for(get_step("prune"), teacher), request=_step_request(dirs, "prune"), context=_context())
    both = get_step("qat_int8").apply(pruned, request=_step_request(dirs, "prune", compression=CompressionPlan(prune_steps=6, qat_steps=3)),
                                      context=_context())  # fmt: skip
    from workers.export import weight_sparsity

    assert abs(weight_sparsity(to_openvino(strip_for_export(both), seq_len=SEQ)) - 0.5) < 0.05


CHECKS: dict[str, Callable[[Any, dict[str, Path], Any], None]] = {
    "slice": _check_slice,
    "ptq_int8": _check_ptq_int8,
    "prune": _check_prune,
    "qat_int8": _check_qat_int8,
}


# -- the suite ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=NAMES)
def step(request: pytest.FixtureRequest) -> CompressionStep:
    return get_step(request.param)


@pytest.fixture(scope="module")
def output(step: CompressionStep, dirs: dict[str, Path], teacher: Any) -> Any:
    return step.apply(_input_for(step, teacher), request=_step_request(dirs, step.name), context=_context())


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
        step.apply(wrong, request=_step_request(dirs, step.name), context=_context())


def test_the_output_still_runs(step: CompressionStep, output: Any, tmp_path: Path) -> None:
    """A PyTorch step's model exports to OpenVINO; an OpenVINO step's model saves and compiles."""
    import openvino as ov

    from workers.compression.nncf_torch import has_quantizers, strip_for_export
    from workers.export import save_ir, to_openvino

    batch = _batch(np.random.default_rng(5), 3)
    if step.works_on == "torch":
        start, end = _torch_logits(output, batch)
        ov_model = to_openvino(strip_for_export(output), seq_len=SEQ)
    else:
        assert isinstance(output, ov.Model)
        ov_model = output
    xml = save_ir(ov_model, tmp_path)
    reloaded = ov.Core().read_model(xml)
    for got in _ov_logits(reloaded, batch):
        assert got.shape == (3, SEQ) and np.isfinite(got).all()
    if step.works_on == "torch" and not has_quantizers(output):
        for got, want in zip(_ov_logits(reloaded, batch), (start, end)):
            np.testing.assert_allclose(got, want, atol=1e-4)
    elif step.works_on == "torch":  # fake quantizers: OpenVINO rounds like PyTorch but accumulates differently
        for got, want in zip(_ov_logits(reloaded, batch), (start, end)):
            assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.99


def test_what_the_step_is_for(step: CompressionStep, output: Any, dirs: dict[str, Path], teacher: Any) -> None:
    CHECKS[step.name](output, dirs, teacher)


def test_the_pipeline_chain_names_registered_steps() -> None:
    from workers.pipeline import compression_steps

    assert [s.name for s in compression_steps("int8")] == ["slice", "ptq_int8"]
    assert [s.name for s in compression_steps("fp32")] == ["slice"]
    dirs = {"teacher": Path("t"), "root": Path("r")}
    sparse_qat = _step_request(dirs, "prune", compression=CompressionPlan(prune_steps=2, qat_steps=2))
    assert [s.name for s in compression_steps("int8", sparse_qat)] == ["slice", "prune", "qat_int8"]
    assert [s.name for s in compression_steps("fp32", sparse_qat)] == ["slice", "prune"]
    assert [s.name for s in compression_steps("int8", _step_request(dirs, "prune"))] == ["slice", "prune", "ptq_int8"]
    for precision, req in (("int8", None), ("fp32", None), ("int8", sparse_qat)):
        chain = compression_steps(precision, req)
        assert chain[0].starts_chain and not any(s.starts_chain for s in chain[1:])
        sides = [WORKS_ON.index(s.works_on) for s in chain]
        assert sides == sorted(sides)  # PyTorch steps before the export, OpenVINO steps after it

