"""F1/EM of a QA model on SQuAD-format data: one evaluator for PyTorch and OpenVINO models."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np
from rich.progress import Progress

from core.model_inputs import QA_INPUTS, model_input_names, select_inputs
from core.progress import current as current_progress
from core.qa.features import EvalFeatures, iter_batches, postprocess_predictions, postprocess_with_null_odds
from core.qa.length_policy import LengthPolicy, run_with_policy
from core.qa.metric import f1_score, metric_max_over_ground_truths
from core.qa.squad import QAExample
from core.qa.tasks import DEFAULT_TASK, get_task

Logits = tuple[np.ndarray, np.ndarray]
Runner = Callable[[dict[str, np.ndarray]], Logits]


def torch_runner(model) -> Runner:  # type: ignore[no-untyped-def]
    """Runs the model on the inputs it takes (``model_input_names``: no token types for DistilBERT, RoBERTa ...)."""
    import torch

    names = model_input_names(model)

    def run(batch: dict[str, np.ndarray]) -> Logits:
        with torch.no_grad():
            out = model(**{k: torch.from_numpy(v) for k, v in select_inputs(batch, names).items()})
        return out.start_logits.numpy(), out.end_logits.numpy()

    return run


def ir_input_names(model) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    """The QA inputs an OpenVINO model (or compiled model) takes, in ``QA_INPUTS`` order; ``ValueError``
    for an input that is none of them (a port may carry several names, the tracer's "308" beside ours)."""
    names = set()
    for port in model.inputs:
        known = [n for n in QA_INPUTS if n in port.get_names()]
        if not known:
            raise ValueError(f"model input {port.get_any_name()!r} is none of {', '.join(QA_INPUTS)}")
        names.add(known[0])
    return tuple(n for n in QA_INPUTS if n in names)


def openvino_runner(compiled) -> Runner:  # type: ignore[no-untyped-def]
    """Feeds the compiled model the inputs it has (an IR without ``token_type_ids`` gets none)."""
    request = compiled.create_infer_request()
    names = ir_input_names(compiled)

    def run(batch: dict[str, np.ndarray]) -> Logits:
        result = request.infer(select_inputs(batch, names))
        return result[compiled.output(0)].copy(), result[compiled.output(1)].copy()

    return run


def evaluate_qa(
    run: Runner,
    examples: Sequence[QAExample],
    features: EvalFeatures,
    *,
    batch_size: int = 16,
    show_progress: bool = False,
    task: str = DEFAULT_TASK,
    null_threshold: float | None = None,
    length_policy: LengthPolicy | None = None,
) -> dict[str, Any]:
    """The task's scores (``core.qa.tasks``) after n-best post-processing: for SQuAD v1.1
    ``{"f1", "exact_match", "count"}``, in percent.

    A task with unanswerable questions (SQuAD v2.0) answers "" where a question's null odds exceed
    ``null_threshold``; choose it on held-out TRAIN questions (``choose_null_threshold``) and pass it
    here for the eval file. None: the threshold that maximises F1 on these very questions (the official
    ``best_f1``), which only a held-out set's own figures may use. Ignored by tasks without null answers.

    ``length_policy``: run each window at its policy length (``core.qa.length_policy``), sorted into
    batches by length; None runs them as stored (padded to ``max_seq_length``). The scores are the same.
    """
    get_task(task)  # an unknown task fails before the model runs
    if length_policy is not None:
        arrays = {"input_ids": features.input_ids, "attention_mask": features.attention_mask, "token_type_ids": features.token_type_ids}
        start_logits, end_logits = run_with_policy(run, arrays, length_policy, batch_size)
    else:
        start_logits, end_logits = _logits(run, features, batch_size, show_progress)
    return score_logits(examples, features, start_logits, end_logits, task=task, null_threshold=null_threshold)


def score_logits(
    examples: Sequence[QAExample], features: EvalFeatures, start_logits: np.ndarray, end_logits: np.ndarray, *,
    task: str = DEFAULT_TASK, null_threshold: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """``evaluate_qa``'s scores from logits already computed (``[windows, max_seq_length]``; positions past a
    window's real tokens are ignored): how a deployment that ran the windows its own way is scored."""
    scorer = get_task(task)
    if scorer.null_answers:
        spans, odds = postprocess_with_null_odds(examples, features, start_logits, end_logits)
        if null_threshold is None:
            null_threshold = scorer.best_null_threshold(spans, odds, examples)[1]
        return scorer.score_at_threshold(spans, odds, examples, null_threshold)
    predictions = postprocess_predictions(examples, features, start_logits, end_logits)
    return scorer.score(predictions, examples)


def choose_null_threshold(
    run: Runner, examples: Sequence[QAExample], features: EvalFeatures, *, batch_size: int = 16, task: str
) -> dict[str, Any]:
    """The null-odds threshold that maximises the task's F1 on ``examples`` (held-out TRAIN questions,
    never the eval file): ``{"threshold", "f1", "questions"}``, ``f1`` being that best F1 on them."""
    scorer = get_task(task)
    if not scorer.null_answers:
        raise ValueError(f"task {task!r} has no unanswerable questions: there is no null threshold to choose")
    spans, odds = postprocess_with_null_odds(examples, features, *_logits(run, features, batch_size, False))
    best, threshold = scorer.best_null_threshold(spans, odds, examples)
    return {"threshold": threshold, "f1": best, "questions": len(examples)}


def _logits(run: Runner, features: EvalFeatures, batch_size: int, show_progress: bool) -> Logits:
    """Start and end logits of every window, batch by batch, with the progress bar and report."""
    starts, ends = [], []
    reporter = current_progress()  # the service's view of the same loop (a no-op outside a task)
    with Progress(disable=not show_progress, transient=True) as progress:
        bar = progress.add_task("evaluating", total=len(features))
        for batch in iter_batches(features, batch_size):
            s, e = run(batch)
            starts.append(s)
            ends.append(e)
            progress.advance(bar, len(batch["input_ids"]))
            reporter.step(sum(len(x) for x in starts), len(features), unit="windows")
    return np.concatenate(starts), np.concatenate(ends)


def subset_features(features: EvalFeatures, example_indices: Sequence[int]) -> EvalFeatures:
    """The windows of the given examples, with ``example_index`` renumbered to positions in that list."""
    position = {int(e): i for i, e in enumerate(example_indices)}
    rows = np.flatnonzero(np.isin(features.example_index, list(position)))
    return EvalFeatures(
        input_ids=features.input_ids[rows],
        attention_mask=features.attention_mask[rows],
        token_type_ids=features.token_type_ids[rows],
        example_index=np.array([position[int(e)] for e in features.example_index[rows]], dtype=np.int64),
        offset_mapping=[features.offset_mapping[r] for r in rows],
    )


def per_question_f1(
    run: Runner, examples: Sequence[QAExample], features: EvalFeatures, *, batch_size: int = 16, task: str = DEFAULT_TASK
) -> list[float]:
    """SQuAD F1 (percent) of each example, in order; their mean is ``evaluate_qa``'s F1. For a task
    with unanswerable questions, at the null threshold that maximises F1 on these examples."""
    if len(features) == 0:
        return [0.0] * len(examples)
    starts, ends = [], []
    for batch in iter_batches(features, batch_size):
        s, e = run(batch)
        starts.append(s)
        ends.append(e)
    scorer = get_task(task)
    if scorer.null_answers:
        spans, odds = postprocess_with_null_odds(examples, features, np.concatenate(starts), np.concatenate(ends))
        threshold = scorer.best_null_threshold(spans, odds, examples)[1]
        answers = {qid: "" if odds[qid] > threshold else span for qid, span in spans.items()}
        return [float(scorer.score({e.id: answers[e.id]}, [e])["f1"]) for e in examples]
    predictions = postprocess_predictions(examples, features, np.concatenate(starts), np.concatenate(ends))
    return [100.0 * metric_max_over_ground_truths(f1_score, predictions[e.id], e.answers) for e in examples]


def f1_validation(
    examples: Sequence[QAExample], features: EvalFeatures, *, batch_size: int = 16, task: str = DEFAULT_TASK
) -> tuple[list[int], Callable[[Any, Iterable[Any]], tuple[float, list[float]]]]:
    """Items and validation function for ``nncf.quantize_with_accuracy_control``.

    Items are question indices; ``fn(compiled_model, items)`` runs the OpenVINO model on
    those questions' windows and returns (mean F1, F1 of each question), so NNCF can rank
    the quantized operations by the F1 they cost, question by question.
    """

    def fn(compiled: Any, items: Iterable[Any]) -> tuple[float, list[float]]:
        chosen = [int(i) for i in items]
        if not chosen:
            return 0.0, []
        scores = per_question_f1(
            openvino_runner(compiled),
            [examples[i] for i in chosen],
            subset_features(features, chosen),
            batch_size=batch_size,
            task=task,
        )
        return float(np.mean(scores)), scores

    return list(range(len(examples))), fn
