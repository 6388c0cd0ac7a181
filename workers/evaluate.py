"""F1/EM of a QA model on SQuAD-format data: one evaluator for PyTorch and OpenVINO models."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np
from rich.progress import Progress

from core.progress import current as current_progress
from core.qa.features import EvalFeatures, iter_batches, postprocess_predictions
from core.qa.metric import f1_score, metric_max_over_ground_truths
from core.qa.squad import QAExample
from core.qa.tasks import DEFAULT_TASK, get_task

Logits = tuple[np.ndarray, np.ndarray]
Runner = Callable[[dict[str, np.ndarray]], Logits]


def torch_runner(model) -> Runner:  # type: ignore[no-untyped-def]
    import torch

    def run(batch: dict[str, np.ndarray]) -> Logits:
        with torch.no_grad():
            out = model(**{k: torch.from_numpy(v) for k, v in batch.items()})
        return out.start_logits.numpy(), out.end_logits.numpy()

    return run


def openvino_runner(compiled) -> Runner:  # type: ignore[no-untyped-def]
    request = compiled.create_infer_request()

    def run(batch: dict[str, np.ndarray]) -> Logits:
        result = request.infer(batch)
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
) -> dict[str, float]:
    """The task's scores (``core.qa.tasks``) after n-best post-processing: for SQuAD v1.1
    ``{"f1", "exact_match", "count"}``, in percent."""
    scorer = get_task(task)  # an unknown task fails before the model runs
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
    predictions = postprocess_predictions(examples, features, np.concatenate(starts), np.concatenate(ends))
    return scorer.score(predictions, examples)


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
    run: Runner, examples: Sequence[QAExample], features: EvalFeatures, *, batch_size: int = 16
) -> list[float]:
    """SQuAD F1 (percent) of each example, in order; their mean is ``evaluate_qa``'s F1."""
    if len(features) == 0:
        return [0.0] * len(examples)
    starts, ends = [], []
    for batch in iter_batches(features, batch_size):
        s, e = run(batch)
        starts.append(s)
        ends.append(e)
    predictions = postprocess_predictions(examples, features, np.concatenate(starts), np.concatenate(ends))
    return [100.0 * metric_max_over_ground_truths(f1_score, predictions[e.id], e.answers) for e in examples]


def f1_validation(
    examples: Sequence[QAExample], features: EvalFeatures, *, batch_size: int = 16
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
        )
        return float(np.mean(scores)), scores

    return list(range(len(examples))), fn
