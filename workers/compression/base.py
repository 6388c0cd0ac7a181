"""The compression-step interface: one transformation of a trial's model, on PyTorch or OpenVINO.

A trial's model passes through a chain of steps: those that work on the PyTorch model run before
the export to OpenVINO, those that work on the OpenVINO model after it (``workers.pipeline``). A
step gets the model (``None`` for the step that starts a chain and makes the model), the trial's
request and a ``StepContext``, and returns the model: a new one, or the one it got, changed in place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from core.types import TrialRequest

WorksOn = Literal["torch", "openvino"]
WORKS_ON: tuple[str, ...] = ("torch", "openvino")


@dataclass
class StepContext:
    """What a step may use besides the model and the request; the pipeline fills it in.

    ``family``: the base model's ``ModelFamily`` (``search_spaces.family_for``).
    ``calibration(request)``: model-input batches (one window each) drawn from the data this trial
    may collect statistics on (for a subnet of a supernet, its training articles only).
    ``validation(request)``: the ``workers.quantize.AccuracyValidation`` an accuracy-aware step
    checks its drop on (train data, never the eval file).
    ``teacher``: the full PyTorch teacher, set by a step that loads it when the request distils
    from it (``TrialRequest.distils``); the pipeline drops it once distilled.
    ``distil(model, request, steps=, learning_rate=, on_step=)``: train ``model`` in place from
    ``teacher`` on the trial's train data (the pipeline's; a step that trains, pruning or QAT, calls it
    with its own steps and an ``on_step(step, total)`` hook, and never reads data itself).
    """

    family: Any
    calibration: Callable[[TrialRequest], list[dict[str, np.ndarray]]] | None = None
    validation: Callable[[TrialRequest], Any] | None = None
    teacher: Any = None
    distil: Callable[..., Any] | None = None


class CompressionStep(ABC):
    """Narrow on purpose: one ``apply``; ``works_on`` says which side of the export it runs on."""

    name: str
    works_on: WorksOn  # "torch": the PyTorch model, before export; "openvino": the OpenVINO model, after
    timed_as: str  # the trial's ``stage_seconds`` key its wall-clock time is added to
    starts_chain: bool = False  # makes the model from the request (gets ``None``); every other step needs one

    @abstractmethod
    def apply(self, model: Any, *, request: TrialRequest, context: StepContext) -> Any:
        """The model after this step (``model`` is ``None`` for a step that starts the chain)."""
