"""Quantization-aware training: NNCF fake quantizers in the PyTorch model, distilled from the FP32 teacher.

``nncf.quantize`` on the PyTorch model places and calibrates the quantizers as post-training INT8
would (same preset, SmoothQuant and calibration windows: a QAT model starts where PTQ ends); the
distillation then trains the weights (and the quantizers' scales) through them, so the weights settle
where rounding costs least. ``workers.compression.nncf_torch.strip_for_export`` turns the quantizers
into PyTorch ``FakeQuantize`` ops, which OpenVINO's conversion folds into an INT8 IR like PTQ's. Runs
after pruning, whose masks stay applied.
"""

from __future__ import annotations

from typing import Any

from core.types import TrialRequest
from workers.compression.base import CompressionStep, StepContext


class QatInt8(CompressionStep):
    """Needs ``context.calibration`` (the quantizers' initial ranges) and ``context.distil``."""

    name = "qat_int8"
    works_on = "torch"
    timed_as = "qat"

    def apply(self, model: Any, *, request: TrialRequest, context: StepContext) -> Any:
        if model is None:
            raise ValueError("qat_int8 quantizes the PyTorch model: it cannot start a chain")
        if context.calibration is None:
            raise ValueError("qat_int8 needs calibration batches (StepContext.calibration)")
        if context.distil is None:
            raise ValueError("qat_int8 trains the quantized model: it needs StepContext.distil")
        import nncf
        import torch

        from core.model_inputs import model_input_names
        from workers.compression.nncf_torch import prepare_extension
        from workers.quantize import _PRESETS, advanced_parameters

        if request.quant_preset not in _PRESETS:
            raise ValueError(f"preset must be one of {sorted(_PRESETS)}, got {request.quant_preset!r}")
        prepare_extension()
        names = model_input_names(model)
        batches = [{n: torch.from_numpy(b[n]) for n in names} for b in context.calibration(request)]
        if not batches:
            raise ValueError("no calibration data")
        model.eval()
        with torch.no_grad():
            quantized = nncf.quantize(
                model,
                nncf.Dataset(batches),
                model_type=nncf.ModelType.TRANSFORMER,
                subset_size=min(request.quant_subset_size, len(batches)),
                preset=_PRESETS[request.quant_preset],
                advanced_parameters=advanced_parameters(smooth_quant=request.quant_smooth_quant),
            )
        plan = request.plan
        if plan.qat_steps:
            # fp32 autocast only: bf16 rounding under the fake quantizers would train for the wrong grid
            context.distil(quantized, request, steps=plan.qat_steps, learning_rate=plan.qat_lr, bf16=False)
        return quantized


STEP = QatInt8()
