"""Post-training INT8 quantization of an OpenVINO model with NNCF, calibrated on real task windows."""

from __future__ import annotations

from typing import Iterable

import nncf
import numpy as np
import openvino as ov


def quantize_int8(ov_model: ov.Model, calibration: Iterable[dict[str, np.ndarray]], *, subset_size: int) -> ov.Model:
    """``calibration`` yields batches of model inputs (one window each works best for statistics)."""
    dataset = nncf.Dataset(list(calibration))
    return nncf.quantize(
        ov_model,
        dataset,
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=subset_size,
        preset=nncf.QuantizationPreset.MIXED,
    )
