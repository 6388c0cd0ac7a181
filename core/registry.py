"""One way to look an entry up in a lazy registry: a name -> module path map, the module imported on first use.

Every pluggable piece (QA tasks, model families, compression steps, runtimes, artifact stores) keeps
such a map, so that naming an implementation imports nothing until it is used (Ray Tune's habit).
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


def load_entry(registry: Mapping[str, str], name: str, *, attr: str, kind: type[T], what: str) -> T:
    """``registry[name]``'s module attribute ``attr`` (``"module"`` or ``"module:attr"`` entries), checked
    to be a ``kind``; ``ValueError`` naming ``what`` and listing the known names."""
    try:
        entry = registry[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(sorted(registry))}") from None
    module, _, member = entry.partition(":")
    value: Any = getattr(importlib.import_module(module), member or attr)
    if isinstance(value, type) and issubclass(value, kind):
        return value  # type: ignore[return-value]
    if not isinstance(value, kind):
        raise TypeError(f"{entry}{'' if member else '.' + attr} is not a {kind.__name__}")
    return value
