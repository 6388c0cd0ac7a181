"""PyTorch QA model -> ONNX (``model.onnx``), for the runtimes that read ONNX rather than OpenVINO IR (DeepSparse).

The file has the IR's interface: inputs ``model_input_names(model, tokenizer)`` (int64 [batch, sequence],
both axes dynamic; DeepSparse fixes them when it compiles), outputs ``start_logits`` and ``end_logits``.
A plain FP32 model (pruned or not: the zeros are kept as they are) exports as float MatMuls; an NNCF
model stripped to native ``FakeQuantize`` ops (``workers.compression.nncf_torch.strip_for_export``)
exports as QuantizeLinear/DequantizeLinear pairs (QDQ), the INT8 form DeepSparse runs.

Why torch's TorchScript exporter (``dynamo=False``): it needs only the ``onnx`` package (the dynamo
exporter also needs onnxscript and onnx-ir) and it turns ``FakeQuantize`` into QDQ pairs. Opset 14:
DeepSparse 1.8 does not fuse opset 17's LayerNormalization (fewer of its ops are supported there).

Two things the exporter leaves that DeepSparse 1.8 runs badly or not at all, rewritten after the export
(``_tidy``, exact: the numbers do not change):

* attention through ``scaled_dot_product_attention`` (transformers' default) exports with Where/IsNaN
  masking that DeepSparse hands to its ONNX Runtime fallback, ~10x slower on a MiniLM-sized model; the
  model is exported with eager attention instead, where that gives the same logits;
* NNCF quantizes the embedding tables weight-only: DeepSparse aborts on a Gather of a DequantizeLinear
  (an assertion in its compiler), so those QDQ pairs are folded into the float table they stand for;
* DeepSparse runs a MatMul between two DequantizeLinear outputs in FP32 (and the QDQ ops around it in its
  ONNX Runtime fallback: slower than the FP32 model), but a MatMulInteger as INT8. So a quantized weight
  becomes an int8 initializer (its transpose folded in), and each MatMul of a quantized activation by one
  becomes ``MatMulInteger`` (int32) -> ``Cast`` -> ``Mul`` by the two scales, before the bias Add: the
  form SparseML gave DeepSparse (its ``quantize_torch_qat_export``). The activations' QuantizeLinear
  stays. Exact but for the float rounding of the rescale (the products are summed in int32).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.model_inputs import model_input_names
from workers.export import _LogitsOnly  # the IR's wrapper: every caller has OpenVINO loaded already

ONNX_FILE = "model.onnx"
OPSET = 14
OUTPUT_NAMES = ("start_logits", "end_logits")

log = logging.getLogger(__name__)


def save_onnx(model: nn.Module, out_dir: str | Path, *, seq_len: int = 128, tokenizer: Any = None) -> Path:
    """Export ``model`` to ``out_dir/model.onnx`` (traced with a [2, seq_len] example); returns the path.

    The model is left in eval mode (the exporter would otherwise restore a wrapper's training mode onto it).
    """
    model = model.eval()
    names = model_input_names(model, tokenizer)
    example = _example(model, names, seq_len)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ONNX_FILE
    wrapper = _LogitsOnly(model, names).eval()
    with _eager_attention(model, example), torch.no_grad():
        torch.onnx.export(
            wrapper,
            tuple(example[n] for n in names),
            str(path),
            dynamo=False,
            input_names=list(names),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in (*names, *OUTPUT_NAMES)},
            opset_version=OPSET,
            do_constant_folding=True,
        )
    import onnx

    proto = onnx.load(str(path))
    _tidy(proto)
    onnx.save(proto, str(path))
    return path


def _example(model: nn.Module, names: tuple[str, ...], seq_len: int) -> dict[str, torch.Tensor]:
    vocab = int(getattr(getattr(model, "config", None), "vocab_size", 0) or 2000)
    low, high = min(1000, vocab // 2), min(2000, vocab)  # mid-vocabulary ids that every vocabulary has
    given = {
        "input_ids": torch.randint(low, high, (2, seq_len), dtype=torch.int64, generator=torch.Generator().manual_seed(0)),
        "attention_mask": torch.ones(2, seq_len, dtype=torch.int64),
        "token_type_ids": torch.zeros(2, seq_len, dtype=torch.int64),
    }
    return {n: given[n] for n in names}


class _eager_attention:
    """Within the block the model runs eager attention, if it has another and switching keeps the model: the
    same logits on ``example`` for a plain model; for one with fake quantizers (NNCF, stripped) every quantizer
    still runs as often (one that sat on the SDPA call would not) and the logits stay within a tenth of their
    spread (an input a hair different can round to the next step, eager and SDPA sum in another order).
    Restored on exit."""

    def __init__(self, model: nn.Module, example: dict[str, torch.Tensor]) -> None:
        self.model, self.example, self.before = model, example, None

    def __enter__(self) -> None:
        config = getattr(self.model, "config", None)
        before = getattr(config, "_attn_implementation", None)
        if before in (None, "eager") or not hasattr(self.model, "set_attn_implementation"):
            return
        want, want_calls = _logits_and_quantizer_calls(self.model, self.example)
        self.model.set_attn_implementation("eager")
        self.before = before
        got, calls = _logits_and_quantizer_calls(self.model, self.example)
        if want_calls:
            same = calls == want_calls and float((got - want).abs().max()) <= 0.1 * float(want.std())
        else:
            same = torch.allclose(got, want, atol=1e-5, rtol=1e-4)
        if not same:
            log.warning("eager attention changes this model: exported with %s attention (slow in DeepSparse)", before)
            self.__exit__()

    def __exit__(self, *exc: object) -> None:
        if self.before is not None:
            self.model.set_attn_implementation(self.before)
            self.before = None


def _logits_and_quantizer_calls(model: nn.Module, example: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """The start logits on ``example`` and how many fake-quantizer calls computed them."""
    from torch.ao.quantization import FakeQuantizeBase

    calls = 0

    def count(*_: object) -> None:
        nonlocal calls
        calls += 1

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, FakeQuantizeBase)]
    try:
        with torch.no_grad():
            logits = model(**example).start_logits
    finally:
        for handle in handles:
            handle.remove()
    return logits, calls


# --- the graph rewrites (exact) ---------------------------------------------------------------------------


def _tidy(proto: Any) -> None:
    """The rewrites of the module docstring, then initializers nothing uses are dropped."""
    graph = proto.graph
    _constants_to_initializers(graph)
    _bypass_identities(graph)
    _fold_weight_quantizers(graph)
    _integer_matmuls(graph)
    _drop_unused_initializers(graph)


def _constants_to_initializers(graph: Any) -> None:
    """Constant nodes holding a tensor become initializers (one place to look constants up)."""
    keep = []
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = node.attribute[0].t
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
        else:
            keep.append(node)
    _set_nodes(graph, keep)


def _bypass_identities(graph: Any) -> None:
    """Identity nodes (the exporter's shared scales and zero points) are skipped: their users read the source."""
    outputs = {o.name for o in graph.output}
    alias: dict[str, str] = {}
    keep = []
    for node in graph.node:
        if node.op_type == "Identity" and node.output[0] not in outputs:
            alias[node.output[0]] = alias.get(node.input[0], node.input[0])
        else:
            keep.append(node)
    for node in keep:
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]
    _set_nodes(graph, keep)


def _fold_weight_quantizers(graph: Any) -> None:
    """QuantizeLinear of a constant: folded. Its DequantizeLinear is folded too where a Gather reads it (an
    embedding table: DeepSparse cannot gather dequantized data), else it reads an int8 (uint8) initializer,
    into which a following 2-D Transpose is folded."""
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    dropped: set[int] = set()
    for dq in list(graph.node):
        if dq.op_type != "DequantizeLinear":
            continue
        q = producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear" or q.input[0] not in inits or len(users[q.output[0]]) != 1:
            continue
        consts = [numpy_helper.to_array(inits[n]) if n in inits else None for n in (*q.input[1:], *dq.input[1:])]
        if any(c is None for c in consts) or len(q.input) < 3:
            continue
        axis = _axis(q)
        weight = numpy_helper.to_array(inits[q.input[0]]).astype(np.float32)
        scale, zero = consts[0], consts[1]
        quantized = _quantize(weight, scale, zero, axis)
        readers = users.get(dq.output[0], [])
        dropped.add(id(q))
        if readers and all(r.op_type == "Gather" and r.input[0] == dq.output[0] for r in readers):
            s, z = _broadcast(scale, weight.ndim, axis), _broadcast(zero, weight.ndim, axis)
            table = ((quantized.astype(np.float32) - z.astype(np.float32)) * s).astype(np.float32)
            graph.initializer.append(numpy_helper.from_array(table, dq.output[0]))
            dropped.add(id(dq))
            continue
        name = q.output[0]
        if len(readers) == 1 and readers[0].op_type == "Transpose" and quantized.ndim == 2 and scale.ndim <= 1:
            perm = _perm(readers[0]) or [1, 0]
            quantized = quantized.transpose(perm)
            if scale.ndim == 1:
                _set_axis(dq, perm.index(axis))
            dq.output[0] = readers[0].output[0]
            dropped.add(id(readers[0]))
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(quantized), name))
    _set_nodes(graph, [n for n in graph.node if id(n) not in dropped])


def _integer_matmuls(graph: Any) -> None:
    """MatMul(DequantizeLinear(x_q, per-tensor), DequantizeLinear(w_int8 initializer [K, N], per-tensor or per
    column)) -> MatMulInteger(x_q, w_int8) -> Cast(float) -> Mul(scale_x * scale_w); a DequantizeLinear
    that nothing else reads goes."""
    from onnx import TensorProto, helper, numpy_helper

    inits = {t.name: t for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1

    def const(name: str) -> np.ndarray | None:
        return numpy_helper.to_array(inits[name]) if name in inits else None

    nodes, dropped = [], set()
    for node in graph.node:
        a, b = (producer.get(name) for name in node.input[:2]) if node.op_type == "MatMul" else (None, None)
        if a is None or b is None or a.op_type != "DequantizeLinear" or b.op_type != "DequantizeLinear" or len(a.input) < 3 or len(b.input) < 3:
            nodes.append(node)
            continue
        weight, sx, zx, sw, zw = const(b.input[0]), const(a.input[1]), const(a.input[2]), const(b.input[1]), const(b.input[2])
        per_column = sw is not None and sw.ndim == 1 and _axis(b) in (1, -1)
        if weight is None or weight.ndim != 2 or weight.dtype != np.int8 or sx is None or zx is None or sx.ndim or zx.ndim \
                or sw is None or zw is None or not (sw.ndim == 0 or per_column):  # fmt: skip
            nodes.append(node)
            continue
        out = node.output[0]
        graph.initializer.append(numpy_helper.from_array((sx * sw).astype(np.float32), out + "/rescale"))
        nodes += [
            helper.make_node("MatMulInteger", [a.input[0], b.input[0], a.input[2], b.input[2]], [out + "/int32"], name=node.name + "/integer"),
            helper.make_node("Cast", [out + "/int32"], [out + "/float"], to=TensorProto.FLOAT, name=node.name + "/cast"),
            helper.make_node("Mul", [out + "/float", out + "/rescale"], [out], name=node.name + "/rescale"),
        ]
        for dq in (a, b):
            readers[dq.output[0]] -= 1
            if readers[dq.output[0]] == 0:
                dropped.add(id(dq))
    _set_nodes(graph, [n for n in nodes if id(n) not in dropped])


def _axis(node: Any) -> int:
    return next((a.i for a in node.attribute if a.name == "axis"), 1)


def _set_axis(node: Any, axis: int) -> None:
    from onnx import helper

    kept = [a for a in node.attribute if a.name != "axis"]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute("axis", axis)])


def _perm(node: Any) -> list[int] | None:
    return next((list(a.ints) for a in node.attribute if a.name == "perm"), None)


def _broadcast(values: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """A per-axis (1-D) scale or zero point shaped to broadcast along ``axis``; a scalar as it is."""
    if values.ndim == 0:
        return values
    shape = [1] * ndim
    shape[axis] = -1
    return values.reshape(shape)


def _quantize(weight: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int) -> np.ndarray:
    """ONNX QuantizeLinear: round half to even, saturate to the zero point's type."""
    info = np.iinfo(zero.dtype)
    s, z = _broadcast(scale, weight.ndim, axis), _broadcast(zero, weight.ndim, axis)
    q = np.rint(weight / s.astype(np.float32)) + z.astype(np.float32)
    return np.clip(q, info.min, info.max).astype(zero.dtype)


def _drop_unused_initializers(graph: Any) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def _set_nodes(graph: Any, nodes: list[Any]) -> None:
    copies = [type(n)() for n in nodes]
    for copy, node in zip(copies, nodes):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)
