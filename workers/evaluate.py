"""F1/EM of a QA model on SQuAD-format data: one evaluator for PyTorch and OpenVINO models."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from rich.progress import Progress

from nas.data.features import EvalFeatures, iter_batches, postprocess_predictions
from nas.data.metric import squad_scores
from nas.data.squad import QAExample

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
) -> dict[str, float]:
    """Return ``{"f1", "exact_match", "count"}`` in percent, after n-best post-processing."""
    starts, ends = [], []
    with Progress(disable=not show_progress, transient=True) as progress:
        task = progress.add_task("evaluating", total=len(features))
        for batch in iter_batches(features, batch_size):
            s, e = run(batch)
            starts.append(s)
            ends.append(e)
            progress.advance(task, len(batch["input_ids"]))
    predictions = postprocess_predictions(examples, features, np.concatenate(starts), np.concatenate(ends))
    return squad_scores(predictions, examples)
