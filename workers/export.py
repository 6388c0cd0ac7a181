"""PyTorch QA model -> OpenVINO IR, laid out like optimum-intel's OVModelForQuestionAnswering directory."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import openvino as ov
import torch
from torch import nn

from core.model_inputs import QA_INPUTS, model_input_names

IR_XML = "openvino_model.xml"
IR_BIN = "openvino_model.bin"
INPUT_NAMES = QA_INPUTS  # the most an IR takes, in this order; each model's own: ``model_input_names``


class _LogitsOnly(nn.Module):
    """Traceable wrapper: the model's named tensor inputs in (those of ``input_names``), (start_logits, end_logits) out."""

    def __init__(self, model: nn.Module, input_names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):  # type: ignore[no-untyped-def]
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        out = self.model(**{name: given[name] for name in self.input_names})
        return out.start_logits, out.end_logits


def to_openvino(model: nn.Module, *, seq_len: int = 128, tokenizer: Any = None) -> ov.Model:
    """Trace with a [2, seq_len] example and leave batch and sequence dimensions dynamic.

    The IR's inputs are ``model_input_names(model, tokenizer)``: no ``token_type_ids`` for a
    RoBERTa, XLM-R, DistilBERT or DeBERTa-v3 model, so feeders filter by the IR's input names.
    """
    model = model.eval()
    names = model_input_names(model, tokenizer)
    vocab = int(getattr(getattr(model, "config", None), "vocab_size", 0) or 2000)
    low, high = min(1000, vocab // 2), min(2000, vocab)  # mid-vocabulary ids that every vocabulary has
    example = {
        "input_ids": torch.randint(low, high, (2, seq_len), dtype=torch.int64),
        "attention_mask": torch.ones(2, seq_len, dtype=torch.int64),
        "token_type_ids": torch.zeros(2, seq_len, dtype=torch.int64),
    }
    with torch.no_grad():
        ov_model = ov.convert_model(
            _LogitsOnly(model, names),
            example_input={name: example[name] for name in names},
            input=[(name, ov.PartialShape([-1, -1]), ov.Type.i64) for name in names],
        )
    for output, name in zip(ov_model.outputs, ("start_logits", "end_logits")):
        output.get_tensor().set_names({name})
    return ov_model


def save_ir(ov_model: ov.Model, out_dir: Path, *, config: dict[str, Any] | None = None, tokenizer: Any = None) -> Path:
    """Write the IR (weights compressed to FP16 off, so FP32 stays FP32), config.json and tokenizer files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    xml = out_dir / IR_XML
    try:
        ov.save_model(ov_model, xml, compress_to_fp16=False)
    except RuntimeError as exc:  # OpenVINO says only "basic_ios::clear: iostream error" for a full disk
        full = disk_full(out_dir)  # probed before the partial files are removed (they hold the space)
        for name in (IR_XML, IR_BIN):  # never leave a truncated IR behind
            (out_dir / name).unlink(missing_ok=True)
        if full:
            raise OSError(errno.ENOSPC, f"No space left on device while writing the IR to {out_dir} ({exc})") from exc
        raise
    if config is not None:
        (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    if tokenizer is not None:
        tokenizer.save_pretrained(out_dir)
    return xml


def disk_full(directory: Path, probe_bytes: int = 1 << 20) -> bool:
    """Can ``directory`` still take ``probe_bytes``? (A write is the only reliable test: quotas, reserved blocks.)"""
    probe = directory / ".hwnas-space-probe"
    try:
        with open(probe, "wb") as f:
            f.write(b"\0" * probe_bytes)
            f.flush()
            os.fsync(f.fileno())
        return False
    except OSError as exc:
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    finally:
        probe.unlink(missing_ok=True)


def ir_size_bytes(out_dir: Path) -> int:
    return sum((out_dir / name).stat().st_size for name in (IR_XML, IR_BIN))


_WEIGHT_PATH_OPS = frozenset({"Convert", "Subtract", "Multiply", "FakeQuantize", "Reshape", "Transpose", "Unsqueeze"})


def matmul_weights(ov_model: ov.Model) -> list[Any]:
    """The constant weight tensors of the model's MatMuls (through the INT8 decompression or FakeQuantize
    ops that precede them), each once: what pruning zeroes and a sparse kernel would skip."""
    found: dict[str, Any] = {}
    for op in ov_model.get_ops():
        if op.get_type_name() != "MatMul":
            continue
        stack = [op.input_value(1).get_node()]
        while stack:
            node = stack.pop()
            kind = node.get_type_name()
            if kind == "Constant":
                if len(node.get_output_shape(0)) == 2 and node.get_friendly_name() not in found:
                    found[node.get_friendly_name()] = node
            elif kind in _WEIGHT_PATH_OPS:
                stack.append(node.input_value(0).get_node())
    return list(found.values())


def weight_sparsity(ov_model: ov.Model) -> float:
    """Share of exact zeros among the MatMul weights of ``ov_model`` (0 for a dense model)."""
    import numpy as np

    total = zeros = 0
    for const in matmul_weights(ov_model):
        data = const.get_data()
        total += data.size
        zeros += int(np.count_nonzero(data == 0))
    return zeros / total if total else 0.0
