"""What the PyTorch-side NNCF steps (pruning, QAT) share: example inputs, the CPU extension, stripping.

NNCF 3.4 compresses a PyTorch model by wrapping its ``forward`` and hanging hooks on its weights
(pruning masks) and activations (fake quantizers). The hooks stay until ``strip_for_export``: masks
are written into the weights (pruning alone), or the quantizers become PyTorch's native
``FakeQuantize`` with the masks still applied in the traced graph (QAT), which OpenVINO folds into
INT8 weights that keep the zeros.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

STALE_LOCK_S = 900.0  # a build lock this old belongs to a build that died (one takes ~30 s on 2 cores)


def example_inputs(model: Any, *, seq_len: int = 16, batch: int = 2) -> dict[str, Any]:
    """Named int64 tensors of the model's own inputs (``model_input_names``): NNCF traces the graph with them."""
    import torch

    from core.model_inputs import model_input_names

    vocab = int(getattr(getattr(model, "config", None), "vocab_size", 0) or 2000)
    low, high = min(5, vocab - 1), min(2000, vocab)
    given = {
        "input_ids": torch.randint(low, high, (batch, seq_len), dtype=torch.int64, generator=torch.Generator().manual_seed(0)),
        "attention_mask": torch.ones(batch, seq_len, dtype=torch.int64),
        "token_type_ids": torch.zeros(batch, seq_len, dtype=torch.int64),
    }
    return {name: given[name] for name in model_input_names(model)}


def build_dir() -> Path:
    """Where NNCF builds its CPU extension (under ``TORCH_EXTENSIONS_DIR``, else torch's cache, per torch version)."""
    from nncf.torch.quantization.extensions import QuantizedFunctionsCPULoader

    return Path(QuantizedFunctionsCPULoader.get_build_dir())


def prepare_extension() -> None:
    """Make NNCF's first fake-quantizer call safe on a small machine: no 60 s load timeout (the build
    takes longer on 2 cores, and NNCF would then fall back to slow Python kernels or fail), and no
    lock left by a build that died (torch would wait on it forever)."""
    os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "0")
    lock = build_dir() / "lock"
    if lock.is_file() and time.time() - lock.stat().st_mtime > STALE_LOCK_S:
        lock.unlink(missing_ok=True)


def is_compressed(model: Any) -> bool:
    """Whether NNCF hooks (pruning masks, quantizers) are on the model."""
    if "nncf.torch" not in sys.modules:  # nothing can have wrapped it (and importing NNCF's torch side costs seconds)
        return False
    from nncf.torch.function_hook.wrapper import get_hook_storage, is_wrapped

    return is_wrapped(model) and any(True for _ in get_hook_storage(model).named_hooks())


def has_quantizers(model: Any) -> bool:
    from nncf.torch.function_hook.wrapper import get_hook_storage, is_wrapped
    from nncf.torch.quantization.layers import BaseQuantizer

    return is_wrapped(model) and any(isinstance(h, BaseQuantizer) for _, h in get_hook_storage(model).named_hooks())


def strip_for_export(model: Any) -> Any:
    """The model as it is exported: NNCF's hooks made plain (see the module docstring); unchanged if it has none."""
    if not is_compressed(model):
        return model
    import nncf

    if has_quantizers(model):
        return nncf.strip(model, strip_format=nncf.StripFormat.NATIVE, example_input=example_inputs(model))
    return nncf.strip(model, strip_format=nncf.StripFormat.IN_PLACE)


def build_extension() -> float:
    """Build (or load) NNCF's CPU extension now, so that the first QAT trial does not pay for it; seconds taken."""
    prepare_extension()
    began = time.perf_counter()
    import nncf.torch

    nncf.torch.force_build_cpu_extensions()  # loads, building it first when absent
    return time.perf_counter() - began


if __name__ == "__main__":  # `python -m workers.compression.nncf_torch`: what `make venv` runs once
    print(f"NNCF CPU extension ready in {build_extension():.1f} s")
