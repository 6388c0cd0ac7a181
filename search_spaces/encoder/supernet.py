"""A subnet of a weight-sharing encoder supernet, run on the supernet's own modules (any ``Anatomy``).

The supernet is the family's full-size ``*ForQuestionAnswering`` (importance-reordered, so the first
heads and FFN neurons of every layer are the most important). ``SlicedEncoder`` runs the supernet's
own forward with, for that one call,

- the encoder's layer list swapped for a ``ModuleList`` of the kept layers (the same modules);
- a forward pre-hook on each kept layer's attention-output Linear that zeroes the input channels of
  the dropped heads (heads are independent until that Linear, so this is the sliced attention);
- a forward pre-hook on each kept layer's FFN-out Linear that zeroes the dropped neurons.

So it computes what ``extract_subnet`` of the same subnet computes (a test checks the logits), and
gradients of its loss reach only the kept layers, heads and neurons of the shared weights: what
sandwich training needs. The price: every kept layer computes at the full width (the dropped heads
and neurons are computed, then zeroed), so a small subnet costs a full-width layer's time and
memory; unlike BERT's functional forward, nothing here is specialised to a family. Gradient
checkpointing must stay off (a recomputation would run without the hooks).

One forward at a time per supernet: the swap and the hooks are undone when the forward returns (or
raises), under a lock per supernet, so concurrent calls on the same supernet wait for each other.
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

from core.types import SubnetConfig
from search_spaces.encoder.anatomy import Anatomy
from search_spaces.encoder.extract import check_subnet
from search_spaces.encoder.modeling_hwnas_sliced import get_module, set_module, takes_token_type_ids

_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.Lock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _lock(model: nn.Module) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.Lock()
        return lock


def _masking_hook(keep: int) -> Any:
    """Forward pre-hook: zero the input channels from ``keep`` on (of the Linear's last dimension)."""

    def hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        x = args[0]
        mask = torch.zeros(x.shape[-1], dtype=x.dtype, device=x.device)
        mask[:keep] = 1
        return (x * mask, *args[1:])

    return hook


@contextmanager
def subnet_active(anatomy: Anatomy, supernet: nn.Module, subnet: SubnetConfig) -> Iterator[None]:
    """While inside, ``supernet``'s forward computes ``subnet`` (kept layers, first heads and neurons)."""
    d = check_subnet(anatomy, supernet.config, subnet)
    path = f"{anatomy.backbone}.{anatomy.layers}"
    with _lock(supernet):
        full = get_module(supernet, path)
        handles = []
        try:
            kept = nn.ModuleList(full[i] for i in subnet.layers)
            for layer, heads, ffn in zip(kept, subnet.heads, subnet.ffn):
                if heads < d["heads"]:
                    handles.append(get_module(layer, anatomy.attn_out).register_forward_pre_hook(_masking_hook(heads * d["head_size"])))
                if ffn < d["ffn"]:
                    handles.append(get_module(layer, anatomy.ffn_out).register_forward_pre_hook(_masking_hook(ffn)))
            set_module(supernet, path, kept)
            yield
        finally:
            set_module(supernet, path, full)
            for h in handles:
                h.remove()


class SlicedEncoder(nn.Module):
    """A subnet of the supernet as a module with the usual QA call signature (training and evaluation).

    Its parameters are the supernet's (it holds the supernet as a submodule); ``train()`` / ``eval()``
    switch the supernet's dropout too.
    """

    def __init__(self, anatomy: Anatomy, supernet: nn.Module, subnet: SubnetConfig) -> None:
        super().__init__()
        check_subnet(anatomy, supernet.config, subnet)
        self.anatomy, self.supernet, self.subnet = anatomy, supernet, subnet
        self.config = supernet.config

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("input_ids", "attention_mask", "token_type_ids") if takes_token_type_ids(self.supernet) else ("input_ids", "attention_mask")

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        if token_type_ids is not None and takes_token_type_ids(self.supernet):
            kwargs["token_type_ids"] = token_type_ids
        with subnet_active(self.anatomy, self.supernet, self.subnet):
            return self.supernet(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
