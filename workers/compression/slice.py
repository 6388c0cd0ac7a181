"""Slicing: cut the request's subnet out of the teacher, or out of a trained supernet."""

from __future__ import annotations

from typing import Any

from core.types import TrialRequest
from workers.compression.base import CompressionStep, StepContext


class Slice(CompressionStep):
    """Starts a chain: ``family.extract_standalone`` of the supernet when ``request.supernet_dir`` is set
    (the teacher is then loaded only to distil from), else ``family.extract_subnet`` of the teacher."""

    name = "slice"
    works_on = "torch"
    timed_as = "extract"
    starts_chain = True

    def apply(self, model: Any, *, request: TrialRequest, context: StepContext) -> Any:
        from transformers import AutoModelForQuestionAnswering

        if model is not None:
            raise ValueError("the slice step starts a chain: it cuts the model from the teacher or supernet itself")
        family = context.family
        if request.supernet_dir:
            supernet = AutoModelForQuestionAnswering.from_pretrained(request.supernet_dir).eval()
            subnet_model = family.extract_standalone(supernet, request.subnet)
            del supernet
            if request.distils:
                context.teacher = AutoModelForQuestionAnswering.from_pretrained(request.teacher_dir).eval()
        else:
            teacher = AutoModelForQuestionAnswering.from_pretrained(request.teacher_dir).eval()
            subnet_model = family.extract_subnet(teacher, request.subnet)
            if request.distils:
                context.teacher = teacher
        return subnet_model


STEP = Slice()
