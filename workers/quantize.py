"""Post-training INT8 quantization of an OpenVINO model with NNCF, calibrated on real task windows.

Plain PTQ (``nncf.quantize``) by default; with ``max_f1_drop`` and a validation set,
``nncf.quantize_with_accuracy_control``, which quantizes, measures the drop against the
floating-point model with the given validation function, and reverts the operations
that cost most accuracy to floating point until the drop is within bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Sequence

import nncf
import numpy as np
import openvino as ov

from core.model_inputs import select_inputs
from workers.evaluate import ir_input_names

Preset = Literal["mixed", "performance"]
_PRESETS = {"mixed": nncf.QuantizationPreset.MIXED, "performance": nncf.QuantizationPreset.PERFORMANCE}
_METRIC_SHIFT = 100.0


@dataclass(frozen=True)
class AccuracyValidation:
    """Items NNCF iterates (here: question indices) and the metric over a subset of them.

    ``fn(compiled_model, items)`` returns ``(metric, per_item_metrics)``, higher is better;
    NNCF compiles the models it passes with FP32 inference precision.
    """

    items: Sequence[Any]
    fn: Callable[[ov.CompiledModel, Iterable[Any]], tuple[float, list[float]]]


def advanced_parameters(*, smooth_quant: bool) -> nncf.AdvancedQuantizationParameters:
    """SmoothQuant on MatMuls with NNCF's default alpha (0.95), or off (alpha -1)."""
    if smooth_quant:
        return nncf.AdvancedQuantizationParameters()
    return nncf.AdvancedQuantizationParameters(
        smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(convolution=-1, matmul=-1)
    )


def quantize_int8(
    ov_model: ov.Model,
    calibration: Iterable[dict[str, np.ndarray]],
    *,
    subset_size: int,
    smooth_quant: bool = True,
    preset: Preset = "mixed",
    max_f1_drop: float | None = None,
    validation: AccuracyValidation | None = None,
    ranking_subset_size: int | None = None,
    max_iterations: int | None = None,
) -> ov.Model:
    """``calibration`` yields batches of model inputs (one window each works best for statistics); each
    passes only the inputs ``ov_model`` has.

    ``subset_size`` is capped at the number of calibration batches. ``max_f1_drop`` (absolute
    metric points, the unit ``validation.fn`` returns) switches to accuracy control and then
    needs ``validation``; ``ranking_subset_size`` (default 300) questions rank the quantizers
    and at most ``max_iterations`` (default: no limit) groups of them are reverted.
    """
    if preset not in _PRESETS:
        raise ValueError(f"preset must be one of {sorted(_PRESETS)}, got {preset!r}")
    names = ir_input_names(ov_model)  # an IR without token_type_ids (RoBERTa, DistilBERT ...) gets none
    batches = [select_inputs(batch, names) for batch in calibration]
    if not batches:
        raise ValueError("no calibration data")
    dataset = nncf.Dataset(batches)
    common: dict[str, Any] = {
        "model_type": nncf.ModelType.TRANSFORMER,
        "subset_size": min(subset_size, len(batches)),
        "preset": _PRESETS[preset],
        "advanced_parameters": advanced_parameters(smooth_quant=smooth_quant),
    }
    if max_f1_drop is None:
        return nncf.quantize(ov_model, dataset, **common)
    if validation is None or not validation.items:
        raise ValueError("accuracy-controlled quantization (max_f1_drop) needs validation data")
    fn = validation.fn

    def shifted(compiled: ov.CompiledModel, items: Iterable[Any]) -> tuple[float, list[float]]:
        # NNCF 3.4 computes the relative drop too, dividing by the initial metric, even when asked for
        # the absolute one: an FP32 F1 of exactly 0 (an untrained model) would raise ZeroDivisionError.
        # A constant shift leaves absolute drops and per-question differences (the ranking) unchanged;
        # NNCF's log then shows F1 + 100.
        metric, values = fn(compiled, items)
        return metric + _METRIC_SHIFT, [v + _METRIC_SHIFT for v in values]

    restorer = nncf.AdvancedAccuracyRestorerParameters(
        ranking_subset_size=min(ranking_subset_size or 300, len(validation.items)),
        num_ranking_workers=1,  # workers compile a model each; one keeps memory and CPU use bounded
        **({"max_num_iterations": max_iterations} if max_iterations is not None else {}),
    )
    return nncf.quantize_with_accuracy_control(
        ov_model,
        dataset,
        nncf.Dataset(list(validation.items)),
        shifted,
        max_drop=max_f1_drop,
        drop_type=nncf.DropType.ABSOLUTE,
        model_type=common["model_type"],
        subset_size=common["subset_size"],
        preset=common["preset"],
        advanced_quantization_parameters=common["advanced_parameters"],
        advanced_accuracy_restorer_parameters=restorer,
    )


def quantized_node_count(model: ov.Model) -> int:
    """Quantize operations (FakeQuantize, or FakeConvert for FP8) in the model: > 0 once quantized."""
    return sum(1 for op in model.get_ops() if op.get_type_name() in ("FakeQuantize", "FakeConvert"))
