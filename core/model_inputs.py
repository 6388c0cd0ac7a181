"""Which of the QA inputs (``input_ids``, ``attention_mask``, ``token_type_ids``) a model takes.

BERT and ELECTRA take all three; RoBERTa and XLM-R have one token type and their tokenizers give
none; DistilBERT's forward has no ``token_type_ids`` at all (passing it is a ``TypeError``);
DeBERTa-v3 has ``type_vocab_size`` 0 (it ignores them) although its tokenizer gives them. Every
place that feeds a model (export, runners, calibration, training, teacher logits) asks
``model_input_names`` and passes exactly those, so an exported IR has no input its model ignores
and no forward gets an argument it rejects. The features (``core.qa.features``) always carry all
three arrays (zeros where the tokenizer gives no token types); ``select_inputs`` picks from them.

No framework is imported at module level (the ground floor): a config's model class is looked up
in ``transformers`` only when a config (not a model) is given.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

QA_INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # the order models, IRs and batches use


def _config_get(config: Any, key: str, default: Any = None) -> Any:
    if isinstance(config, Mapping):
        return config.get(key, default)
    return getattr(config, key, default)


def _named_parameters(fn: Any) -> set[str] | None:
    """The parameter names ``fn`` declares by name (``**kwargs`` catches are not acceptance), or None."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _config_model_class(config: Any) -> Any:
    """The transformers ``*ForQuestionAnswering`` class of a config (its ``architectures``, else its
    ``model_type``'s QA class), or None for one transformers does not define (``hwnas_bert``)."""
    import transformers

    for name in _config_get(config, "architectures") or ():
        cls = getattr(transformers, str(name), None)
        if cls is not None and hasattr(cls, "forward"):
            return cls
    from transformers.models.auto.modeling_auto import MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES

    name = MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES.get(_config_get(config, "model_type"))
    return getattr(transformers, name, None) if name else None


def _accepted(model_or_config: Any) -> tuple[set[str] | None, Any]:
    """(input names the forward declares or None when unknown, the config) of a model or a config."""
    if callable(getattr(model_or_config, "forward", None)):  # a torch module
        declared = getattr(model_or_config, "input_names", None)  # a wrapper's own (a family's sliced views)
        accepted = set(declared) if isinstance(declared, (tuple, list)) else _named_parameters(model_or_config.forward)
        return accepted, getattr(model_or_config, "config", None)
    cls = _config_model_class(model_or_config)
    return (_named_parameters(cls.forward) if cls is not None else None), model_or_config


def model_input_names(model_or_config: Any, tokenizer: Any = None) -> tuple[str, ...]:
    """The QA inputs, in ``QA_INPUTS`` order, that the tokenizer gives and the model takes.

    ``model_or_config``: a PyTorch model (its ``input_names`` where it declares them, as a family's
    wrappers do, else its ``forward``'s named parameters) or its config (a dict,
    namespace or transformers config: the transformers class it names). ``tokenizer``: its
    ``model_input_names``; None offers all three. ``token_type_ids`` is left out, too, for a model
    with at most one token type (``type_vocab_size`` 0 or 1): its forward uses type 0, or none,
    when they are absent, so an input of zeros only costs an IR input.
    """
    offered = tuple(getattr(tokenizer, "model_input_names", None) or QA_INPUTS) if tokenizer is not None else QA_INPUTS
    accepted, config = _accepted(model_or_config)
    names = [n for n in QA_INPUTS if n in offered and (accepted is None or n in accepted)]
    types = _config_get(config, "type_vocab_size") if config is not None else None
    if isinstance(types, int) and types <= 1 and "token_type_ids" in names:
        names.remove("token_type_ids")
    if "input_ids" not in names:
        raise ValueError(f"{type(model_or_config).__name__} takes no input_ids: not a QA encoder this service can feed")
    return tuple(names)


def select_inputs(batch: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The arrays of ``batch`` named in ``names`` (in that order); ``KeyError`` names a missing one."""
    chosen = {}
    for name in names:
        if name not in batch:
            raise KeyError(f"the model takes {name!r}, which the batch lacks (it has {sorted(batch)})")
        chosen[name] = batch[name]
    return chosen
