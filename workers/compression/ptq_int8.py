"""Post-training INT8 of the OpenVINO model with NNCF (``workers.quantize.quantize_int8``)."""

from __future__ import annotations

from typing import Any

from core.types import TrialRequest
from workers.compression.base import CompressionStep, StepContext


class PtqInt8(CompressionStep):
    """Calibrated on ``context.calibration(request)``; with ``request.quant_max_f1_drop`` set,
    accuracy-controlled on ``context.validation(request)`` (NNCF reverts the costliest quantizers)."""

    name = "ptq_int8"
    works_on = "openvino"
    timed_as = "quantize"

    def apply(self, model: Any, *, request: TrialRequest, context: StepContext) -> Any:
        from workers.quantize import quantize_int8

        if model is None:
            raise ValueError("ptq_int8 quantizes an OpenVINO model: it cannot start a chain")
        if context.calibration is None:
            raise ValueError("ptq_int8 needs calibration batches (StepContext.calibration)")
        batches = context.calibration(request)
        validation = None
        if request.quant_max_f1_drop is not None:
            if context.validation is None:
                raise ValueError("accuracy-controlled INT8 (quant_max_f1_drop) needs StepContext.validation")
            validation = context.validation(request)
        return quantize_int8(
            model,
            batches,
            subset_size=request.quant_subset_size,
            smooth_quant=request.quant_smooth_quant,
            preset=request.quant_preset,  # type: ignore[arg-type]
            max_f1_drop=request.quant_max_f1_drop,
            validation=validation,
        )


STEP = PtqInt8()
