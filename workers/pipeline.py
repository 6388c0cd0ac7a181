"""Evaluate one candidate: slice -> (distil) -> OpenVINO IR -> NNCF INT8 -> F1/EM of the INT8 IR -> speed.

Pure function of a ``TrialRequest``; it writes only under ``request.output_dir`` and never
touches the database, so it runs the same in a Ray task, a test or a shell.

The pluggable pieces come from their registries: the base model's family (``search_spaces``),
the compression steps (``workers.compression``: ``slice``, then ``ptq_int8`` for INT8), the
inference runtime (``workers.runtimes``) and the QA task that scores it (``core.qa.tasks``).
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from core import progress
from core.artifacts import ZIP_NAME, sha256_of
from core.types import Measurement, TrialRequest, TrialResult
from workers import datasets
from workers.compression import CompressionStep, StepContext, get_step
from workers.deployed import deployed_measurement, deployment_file, fixed_rows
from workers.evaluate import evaluate_qa
from workers.export import IR_XML, ir_size_bytes, save_ir, to_openvino
from workers.runtimes import DEFAULT_RUNTIME, Runtime, SweepRequest, get_runtime

if TYPE_CHECKING:
    from workers.quantize import AccuracyValidation

AC_VALIDATION_QUESTIONS = 200  # questions of the train file that accuracy-controlled INT8 is validated on
RUNTIME = DEFAULT_RUNTIME  # what every trial is evaluated and measured with (one runtime per service today)


class StageTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        progress.current().phase(stage)  # each timed stage is a phase of the trial's progress
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(self.seconds.get(stage, 0.0) + time.perf_counter() - start, 3)


def calibration_batches(req: TrialRequest) -> list[dict[str, np.ndarray]]:
    """Single-window batches drawn (seeded) from the train file's windows, as NNCF expects them: the inputs
    the teacher's family takes (``model_input_names``; the IR of its subnet has the same)."""
    from core.model_inputs import model_input_names

    limit = max(256, 2 * req.calibration_samples)  # enough windows to sample from, without tokenising all of it
    feats = datasets.train_features(req.train_file, limit, req.teacher_dir, req.max_seq_length, req.doc_stride)
    config = json.loads((Path(req.teacher_dir) / "config.json").read_text())
    names = model_input_names(config, datasets.tokenizer(req.teacher_dir))
    rng = np.random.default_rng(req.seed)
    take = rng.choice(len(feats), size=min(req.calibration_samples, len(feats)), replace=False)
    return [{name: getattr(feats, name)[i : i + 1] for name in names} for i in sorted(take)]


def calibration_file(req: TrialRequest) -> str:
    """The train file INT8 calibration and the accuracy-aware validation read: for a subnet of a
    supernet, its training articles only (``workers.training_articles.training_articles_file``), so that no
    activation statistic comes from the articles a held-out F1 is scored on."""
    if not req.supernet_dir:
        return req.train_file
    from workers.training_articles import training_articles_file

    return training_articles_file(req)


def accuracy_validation(req: TrialRequest) -> AccuracyValidation:
    """F1 on the last questions of the TRAIN file (never the eval file), away from the calibration windows
    (those come from the first questions) wherever the file is long enough."""
    from core.qa.features import prepare_eval_features
    from workers.evaluate import f1_validation
    from workers.quantize import AccuracyValidation

    examples = datasets.examples(req.train_file)
    calibration_questions = max(256, 2 * req.calibration_samples)
    begin = max(0, len(examples) - AC_VALIDATION_QUESTIONS)
    if len(examples) - calibration_questions >= AC_VALIDATION_QUESTIONS // 4:
        begin = max(begin, calibration_questions)
    chosen = examples[begin:]
    feats = prepare_eval_features(
        chosen, datasets.tokenizer(req.teacher_dir), max_seq_length=req.max_seq_length, doc_stride=req.doc_stride
    )
    items, fn = f1_validation(chosen, feats, task=req.task)
    return AccuracyValidation(items, fn)


def trial_calibration(req: TrialRequest) -> list[dict[str, np.ndarray]]:
    """The calibration batches of a trial: ``calibration_batches`` on ``calibration_file(req)``."""
    return calibration_batches(replace(req, train_file=calibration_file(req)))


def trial_validation(req: TrialRequest) -> AccuracyValidation:
    """The accuracy-aware validation of a trial: ``accuracy_validation`` on ``calibration_file(req)``."""
    return accuracy_validation(replace(req, train_file=calibration_file(req)))


def runtime() -> Runtime:
    """What every trial is built and scored with (F1): OpenVINO."""
    return get_runtime(RUNTIME)


def target_runtime(target: str) -> Runtime:
    """What measures ``target``: its profile's ``runtime`` (OpenVINO unless the profile names another)."""
    from targets import get_target

    return get_runtime(get_target(target).runtime)


def runtime_unavailable(target: str) -> str | None:
    """Why ``target``'s runtime cannot run on this node, or None."""
    why = target_runtime(target).unavailable()
    return None if why is None else f"target {target}: {why}"


def _onnx_targets(req: TrialRequest) -> list[str]:
    return [t for t in req.targets if target_runtime(t).reads == "onnx"]


def compression_steps(precision: str, req: TrialRequest | None = None) -> list[CompressionStep]:
    """The chain a trial's model goes through: slice; gradual pruning for a sparse subnet; for ``int8``,
    quantization-aware training when the request asks for it, else post-training INT8 (PyTorch steps run
    before the export to OpenVINO, OpenVINO steps after it; the plain distillation of ``finetune_steps``
    runs after the chain-starting step)."""
    names = ["slice"]
    if req is not None and req.subnet.sparsity:
        names.append("prune")
    if precision == "int8":
        names.append("qat_int8" if req is not None and req.qat else "ptq_int8")
    return [get_step(name) for name in names]


QUANTIZATION_DETAIL = {
    "PTQ": "NNCF post-training INT8 (PTQ)",
    "QAT": "NNCF quantization-aware training, distilled from the FP32 teacher (QAT)",
}


def quantization_method(req: TrialRequest, precision: str) -> str | None:
    """How the delivered IR was quantized, as the model card and deployment.json say it."""
    if precision != "int8":
        return None
    return "QAT" if req.qat else "PTQ"


def evaluate_ir(xml_path: Path, req: TrialRequest, *, precision: str) -> dict[str, Any]:
    """F1/EM of the IR as deployed (the runtime's compile for ``precision``; FP32 runs in f32).

    For a task with unanswerable questions (SQuAD v2.0) the null threshold is chosen first, on held-out
    TRAIN questions (``workers.null_threshold``), and that one threshold scores the eval file; the scores
    then carry ``threshold``, ``threshold_chosen_on``, ``threshold_questions`` and ``threshold_heldout_f1``."""
    from core.qa.tasks import get_task

    run = runtime().compile(xml_path, precision=precision)  # a broken IR fails here, before any data is read
    examples = datasets.examples(req.eval_file, req.max_eval_examples)
    feats = datasets.eval_features(req.eval_file, req.max_eval_examples, req.teacher_dir, req.max_seq_length, req.doc_stride)
    if not get_task(req.task).null_answers:
        return evaluate_qa(run, examples, feats, batch_size=16, task=req.task)
    from core.qa.features import prepare_eval_features
    from workers.evaluate import choose_null_threshold
    from workers.null_threshold import threshold_slice

    held, source = threshold_slice(req)
    held_feats = prepare_eval_features(
        held, datasets.tokenizer(req.teacher_dir), max_seq_length=req.max_seq_length, doc_stride=req.doc_stride
    )
    chosen = choose_null_threshold(run, held, held_feats, batch_size=16, task=req.task)
    scores = evaluate_qa(run, examples, feats, batch_size=16, task=req.task, null_threshold=chosen["threshold"])
    return {**scores, "threshold_chosen_on": source, "threshold_questions": chosen["questions"], "threshold_heldout_f1": chosen["f1"]}


def task_metrics(scores: dict[str, Any]) -> dict[str, Any]:
    """What a trial stores besides F1/EM (``TrialResult.metrics``): a task's figures that say more (SQuAD
    v2.0: ``task``, ``metric``, ``exact``, ``f1``, HasAns_*, NoAns_*, the threshold); {} for SQuAD v1.1."""
    if "task" not in scores:
        return {}
    return {k: v for k, v in scores.items() if k not in ("count", "exact_match")}


def _distil(
    student: Any, teacher: Any, req: TrialRequest, *, steps: int | None = None, learning_rate: float | None = None,
    on_step: Any = None, bf16: bool | None = None,
) -> None:  # fmt: skip
    """Distil ``student`` in place from ``teacher``'s logits on the trial's train windows: ``finetune_steps``
    at ``finetune_lr`` unless a step (pruning, QAT) asks for its own; ``on_step(step, total)`` after each."""
    from search_spaces.bert.training import TrainSettings, train_qa

    feats = datasets.train_features(req.train_file, None, req.teacher_dir, req.max_seq_length, req.doc_stride)
    soft = datasets.teacher_soft_targets(teacher, req.teacher_dir, req.train_file, req.max_seq_length, req.doc_stride)
    from targets import has_fast_bf16

    settings = TrainSettings(
        max_steps=req.finetune_steps if steps is None else steps,
        learning_rate=req.finetune_lr if learning_rate is None else learning_rate,
        warmup_ratio=0.1,
        seed=req.seed,
        bf16=has_fast_bf16() if bf16 is None else bf16,
    )
    report = progress.current().on_step

    def step_done(step: int, total: int, loss: float) -> None:
        if on_step is not None:
            on_step(step, total)
        report(step, total, loss)

    train_qa(student, feats, settings, soft_targets=soft, on_step=step_done)


def teacher_family(req: TrialRequest) -> Any:
    """The family of the trial's teacher (``search_spaces.family_for`` of its config.json)."""
    from search_spaces import family_for

    return family_for(json.loads((Path(req.teacher_dir) / "config.json").read_text()))


def _config_value(config: dict[str, Any], key: str, family: Any) -> Any:
    """``key`` (BERT's name) of a saved config under the family's name for it (DistilBERT: ``dim``), or of the
    base config that hwnas's sliced class keeps (``base_config``); None where neither has it."""
    names = (key, getattr(family, "config_keys", {}).get(key, key))
    for source in (config, config.get("base_config") or {}):
        for name in names:
            if name in source:
                return source[name]
    return None


def model_card(req: TrialRequest, result: TrialResult, config: dict[str, Any], precision: str) -> dict[str, Any]:
    family = teacher_family(req)
    return {
        "format": "openvino-ir",
        "precision": precision,
        "task": "extractive-question-answering",
        "family": family.name,
        "model_type": config.get("model_type"),  # the saved config's: the family's own, or hwnas's (auto_map)
        "architecture": {
            **result.subnet.to_dict(),
            "hidden_size": _config_value(config, "hidden_size", family),
            "head_size": config.get("hwnas_head_size"),
            "parameters": result.parameters,
            "ir_size_bytes": result.ir_size_bytes,
        },
        "metrics": {
            "f1": result.f1,
            "exact_match": result.exact_match,
            "eval_questions": result.num_eval_questions,
            "evaluated_on": "this INT8 OpenVINO IR" if precision == "int8" else "this FP32 OpenVINO IR",
            **result.metrics,  # SQuAD v2.0: task, metric, HasAns/NoAns, the null threshold to deploy it with
        },
        "compression": {
            "quantization": quantization_method(req, precision),
            "quantization_detail": QUANTIZATION_DETAIL.get(quantization_method(req, precision) or ""),
            "sparsity": req.subnet.sparsity,
            **(result.metrics.get("compression") or {}),
        },
        "measurements": [m.to_dict() for m in result.measurements],
        "data": {
            "train_file": req.train_file,
            "eval_file": req.eval_file,
            "max_seq_length": req.max_seq_length,
            "doc_stride": req.doc_stride,
            "max_eval_examples": req.max_eval_examples,
            "calibration_samples": req.calibration_samples,
            "calibration_file": calibration_file(req),
            "synthetic": req.synthetic_data,
        },
        "job_id": req.job_id,
        "trial_number": req.trial_number,
        "stage_seconds": result.stage_seconds,
        "created_at": datetime.now(timezone.utc).isoformat(),
    }


def build_candidate(req: TrialRequest, *, precision: str = "int8") -> TrialResult:
    """Everything but the speed measurement: slice, distil, IR, INT8, F1/EM of that IR.

    ``precision="fp32"`` skips NNCF (the FP32 baseline). The result has no measurements yet;
    ``stage_seconds`` carries the wall-clock window of the build (``build_started_at`` /
    ``build_finished_at``, epoch seconds) so that measurement exclusivity can be checked.
    """
    import torch

    from search_spaces import family_for
    from search_spaces.base_models import read_config

    runtime().check_precision(precision)  # before any work: ValueError for a precision the runtime cannot run
    began = time.time()
    torch.manual_seed(req.seed)
    timer = StageTimer()
    out_dir = Path(req.output_dir)
    steps = compression_steps(precision, req)
    family = family_for(read_config(Path(req.teacher_dir)))
    context = StepContext(family=family, calibration=trial_calibration, validation=trial_validation)
    context.distil = lambda model, request, **kw: _distil(model, context.teacher, request, **kw)
    torch_steps = [s for s in steps if s.works_on == "torch"]
    subnet_model = _apply_steps(torch_steps[:1], None, req, context, timer)
    params = family.count_parameters(subnet_model)
    if req.finetune_steps:
        with timer("distil"):
            _distil(subnet_model, context.teacher, req)
    subnet_model = _apply_steps(torch_steps[1:], subnet_model, req, context, timer)  # pruning, QAT: they distil too
    context.teacher = None  # distilled (or never needed): free it before the export
    with timer("convert"):
        from workers.compression.nncf_torch import strip_for_export

        exported = strip_for_export(subnet_model)  # NNCF's masks and quantizers made plain (a dense PTQ chain has none)
        ov_model = to_openvino(exported, seq_len=min(128, req.max_seq_length), tokenizer=datasets.tokenizer(req.teacher_dir))
        config = exported.config.to_dict()
        config["architectures"] = [type(exported).__name__]  # the family's own class (or hwnas's, named in auto_map)
    if _onnx_targets(req):
        with timer("onnx"):
            _save_onnx(subnet_model, exported, req, precision, context, out_dir)
    ov_model = _apply_steps([s for s in steps if s.works_on == "openvino"], ov_model, req, context, timer)
    with timer("save"):
        xml = save_ir(ov_model, out_dir, config=config, tokenizer=datasets.tokenizer(req.teacher_dir))
        save_modeling_files(family, config, out_dir)
    with timer("evaluate"):
        scores = evaluate_ir(xml, req, precision=precision)
    compression = compression_record(req, precision, ov_model)
    return TrialResult(
        trial_number=req.trial_number,
        subnet=req.subnet,
        f1=scores["f1"],
        exact_match=scores["exact_match"],
        num_eval_questions=int(scores["count"]),
        parameters=params,
        ir_size_bytes=ir_size_bytes(out_dir),
        measurements=(),
        stage_seconds={**timer.seconds, "build_started_at": began, "build_finished_at": time.time()},
        artifact_dir=str(out_dir),
        host=socket.gethostname(),
        metrics={**task_metrics(scores), **({"compression": compression} if compression else {})},
    )


def _save_onnx(model: Any, exported: Any, req: TrialRequest, precision: str, context: StepContext, out_dir: Path) -> None:
    """``model.onnx`` beside the IR for a runtime that reads ONNX (DeepSparse): the same model, INT8 (MatMulInteger: workers.export_onnx).
    A QAT model exports its own quantizers; a PTQ trial (quantized on the OpenVINO side) gets NNCF's torch
    quantizers, calibrated on the same windows, so the ONNX is INT8 too (its F1 may differ a little: the
    model card's F1 is the IR's)."""
    from workers.compression.nncf_torch import has_quantizers, strip_for_export
    from workers.export_onnx import save_onnx

    if precision == "int8" and not has_quantizers(model):
        calibrate = replace(req, compression=replace(req.plan, qat_steps=0))
        model = get_step("qat_int8").apply(model, request=calibrate, context=context)  # calibrated, no training
        exported = strip_for_export(model)
    save_onnx(exported, out_dir, seq_len=min(128, req.max_seq_length), tokenizer=None)


def compression_record(req: TrialRequest, precision: str, ov_model: Any) -> dict[str, Any] | None:
    """What a trial's metrics say of pruning and QAT (None for a dense post-training INT8 or FP32 trial, as
    before they existed): the quantization method, the sparsity asked for and the share of zeros found in
    the IR's MatMul weights."""
    if not (req.subnet.sparsity or req.qat):
        return None
    from workers.export import weight_sparsity

    plan = req.plan
    record: dict[str, Any] = {"quantization": quantization_method(req, precision)}
    if req.qat:
        record["qat_steps"] = plan.qat_steps
    if req.subnet.sparsity:
        record.update(sparsity=req.subnet.sparsity, prune_steps=plan.prune_steps, prune_mode=plan.prune_mode)
    record["weight_sparsity"] = round(weight_sparsity(ov_model), 4)
    return record


def save_modeling_files(family: Any, config: dict[str, Any], out_dir: Path) -> list[Path]:
    """Copy the family's modeling files (``ModelFamily.modeling_files``: a class of hwnas's own that the
    config names in ``auto_map``) beside the saved config."""
    import shutil

    copied = []
    for path in family.modeling_files(config):
        target = Path(out_dir) / Path(path).name
        shutil.copyfile(path, target)
        copied.append(target)
    return copied


def _apply_steps(steps: list[CompressionStep], model: Any, req: TrialRequest, context: StepContext, timer: StageTimer) -> Any:
    """Run ``steps`` in order, each timed under its ``timed_as`` stage."""
    for step in steps:
        with timer(step.timed_as):
            model = step.apply(model, request=req, context=context)
    return model


def measure_candidate(req: TrialRequest, target: str, *, precision: str = "int8", reference: dict[str, Any] | None = None) -> Measurement:
    """Speed of the built IR on one target; the fingerprint gets the wall-clock window, the Ray node
    and the SHA-256 of the IR files measured (artifacts are a shared path: the coordinator's
    stored checksums must match what the node read). ``reference``: the built trial's scores
    (``TrialResult.reference_scores``), which a bf16 deployment is held to; None: f32 deployments only."""
    began = time.time()
    xml = Path(req.output_dir) / IR_XML
    if not xml.is_file():
        raise FileNotFoundError(
            f"{xml} is not visible on Ray node {_node_id()} ({socket.gethostname()}): every node must mount the "
            "service's data directory (artifacts/) at the same path as the coordinator"
        )
    ir_sha256 = {p.name: sha256_of(p) for p in (xml, xml.with_suffix(".bin"), xml.with_name("model.onnx")) if p.is_file()}
    measurer = target_runtime(target)
    why = measurer.unavailable()
    if why is not None:  # the coordinator drops such targets at the job's start (nas.lifecycle); a node may differ
        raise RuntimeError(f"target {target}: {why}")
    m = measurer.measure(
        xml,
        target=target,
        precision=precision,
        seq_len=req.max_seq_length,
        throughput_batch=req.throughput_batch,
        min_iterations=req.measure_iterations,
        min_seconds=req.measure_seconds,
        max_repeats=req.measure_max_repeats,
    )
    if req.deployment is not None:
        sweep_began = time.perf_counter()
        m = deployed_measurement(m, _deployment_sweep(req, xml, target, precision, m, reference))
        m = replace(m, fingerprint={**m.fingerprint, "deployment_s": round(time.perf_counter() - sweep_began, 3)})
    fingerprint = {
        **m.fingerprint,
        "started_at": began,
        "finished_at": time.time(),
        "node_id": _node_id(),
        "node_host": socket.gethostname(),
        "ir_sha256": ir_sha256,
    }
    return replace(m, fingerprint=fingerprint)


def inference_precisions(req: TrialRequest, target: str, reference: dict[str, Any] | None) -> tuple[tuple[str, ...], str | None]:
    """The precisions the sweep tries for what is not INT8 (``deployment.inference_precisions``), and why
    bf16 is left out where it was asked for: the target has none, the host has none, or nothing to hold it to."""
    from targets import get_target, has_fast_bf16

    asked = tuple((req.deployment or {}).get("inference_precisions") or ("f32",))
    if "bf16" not in asked:
        return asked, None
    hw = get_target(target)
    why = None
    if target_runtime(target).name != "openvino":
        why = f"{target_runtime(target).name} runs its own precision"
    elif not hw.has_bf16:
        why = f"{hw.name} has no bf16 (ISA cap {hw.isa})"
    elif not has_fast_bf16():
        why = "this host has no bf16 (no AVX512-BF16, no AMX)"
    elif reference is None:
        why = "no trial F1 to hold a bf16 deployment to"
    if why is None:
        return asked, None
    rests = tuple(r for r in asked if r != "bf16") or ("f32",)
    return rests, f"bf16 not tried: {why}"


def _deployment_sweep(
    req: TrialRequest, xml: Path, target: str, precision: str, fixed: Measurement, reference: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The runtime's deployment sweep over a seeded sample of the eval file's real window lengths; a bf16
    choice is scored as deployed on the eval windows the trial was scored on (pickled for the child)."""
    import pickle
    import tempfile

    from core.qa.length_policy import real_lengths
    from workers.deployment_timing import query_lengths

    d = req.deployment or {}
    feats = datasets.eval_features(req.eval_file, req.max_eval_examples, req.teacher_dir, req.max_seq_length, req.doc_stride)
    lengths = query_lengths(real_lengths(feats.attention_mask), int(d.get("query_samples", 64)), req.seed)
    policies = tuple(p for p in d.get("length_policies", ("buckets", "dynamic")) if p != "fixed")
    if not policies:  # only the fixed length asked for: measure_ir's figures are the deployment
        return None
    rests, note = inference_precisions(req, target, reference)
    with tempfile.TemporaryDirectory(prefix="hwnas-scoring-") as tmp:
        scoring = None
        if "bf16" in rests and reference is not None:
            windows = Path(tmp) / "windows.pkl"
            windows.write_bytes(pickle.dumps((datasets.examples(req.eval_file, req.max_eval_examples), feats)))
            scoring = {"windows": str(windows), "task": req.task, "threshold": reference.get("threshold"),
                       "reference_f1": reference.get("f1"), "max_f1_drop": float(d.get("bf16_max_f1_drop", 0.5))}  # fmt: skip
        result = _sweep_on(req, xml, target, precision, fixed, d, lengths, policies, rests, scoring)
    if result is not None and note:
        result["reason"] = f"{result['reason']}; {note}"
    return result


def _sweep_on(
    req: TrialRequest, xml: Path, target: str, precision: str, fixed: Measurement, d: dict[str, Any], lengths: Any,
    policies: tuple[str, ...], rests: tuple[str, ...], scoring: dict[str, Any] | None,
) -> dict[str, Any] | None:  # fmt: skip
    sweep = SweepRequest(
        lengths=tuple(lengths.tolist()),
        max_length=req.max_seq_length,
        policies=policies,
        buckets=tuple(d["buckets"]) if d.get("buckets") else None,
        batches=tuple(d.get("offline_batches") or (1, req.throughput_batch)),
        streams=tuple(d.get("streams") or ()),
        objective=str(d.get("objective", "throughput")),
        loadgen=bool(d.get("loadgen", True)),
        fixed=fixed_rows(fixed),
        min_iterations=max(5, req.measure_iterations // 2),
        min_seconds=req.measure_seconds / 2,
        rests=rests,
        scoring=scoring,
    )
    return target_runtime(target).measure_deployment(xml, target=target, precision=precision, sweep=sweep)


def _node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:  # outside Ray
        return None


def finalize(req: TrialRequest, result: TrialResult, measurements: list[Measurement], *, precision: str = "int8") -> TrialResult:
    """Attach the measurements, write ``model_card.json`` and record every file's sha256."""
    out_dir = Path(result.artifact_dir)
    measure_s = sum(m.fingerprint.get("finished_at", 0) - m.fingerprint.get("started_at", 0) for m in measurements)
    result = replace(result, measurements=tuple(measurements), stage_seconds={**result.stage_seconds, "measure": round(measure_s, 3)})
    config = json.loads((out_dir / "config.json").read_text())
    deployment = deployment_document(req, result, precision)
    (out_dir / DEPLOYMENT_FILE).write_text(json.dumps(deployment, indent=2))
    shutil.copyfile(Path(__file__).with_name("deployment_example.py"), out_dir / EXAMPLE_FILE)
    card = model_card(req, result, config, precision)
    card["deployment"] = {t["target"]: {k: t[k] for k in ("offline", "single_stream", "reason", "figures_by")} for t in deployment["targets"]}
    (out_dir / "model_card.json").write_text(json.dumps(card, indent=2))
    checksums = {f.name: sha256_of(f) for f in sorted(out_dir.iterdir()) if f.is_file() and f.name != ZIP_NAME}
    return replace(result, checksums=checksums)


DEPLOYMENT_FILE = "deployment.json"  # how to run the IR on each measured target (workers.deployed.deployment_file)
EXAMPLE_FILE = "run_deployment.py"  # workers/deployment_example.py: applies deployment.json, answers, scores


def deployment_document(req: TrialRequest, result: TrialResult, precision: str) -> dict[str, Any]:
    """``deployment.json``: the windows the model was scored on and, per measured target, how it runs."""
    return {
        "format": "hwnas-deployment/1",
        "model": IR_XML,
        "precision": precision,
        "quantization": QUANTIZATION_DETAIL.get(quantization_method(req, precision) or ""),
        "weight_sparsity": (result.metrics.get("compression") or {}).get("weight_sparsity", 0.0),
        "max_seq_length": req.max_seq_length,
        "doc_stride": req.doc_stride,
        "example": EXAMPLE_FILE,
        "targets": [deployment_file(m, precision) for m in result.measurements],
    }


def run_trial(req: TrialRequest, *, precision: str = "int8") -> TrialResult:
    """Build, measure on every target, finalize: the whole candidate in this process."""
    built = build_candidate(req, precision=precision)
    measured = [measure_candidate(req, t, precision=precision, reference=built.reference_scores()) for t in req.targets]
    return finalize(req, built, measured, precision=precision)
