"""Inference runtimes by name (lazy registry): what runs an exported model for F1 and for speed.

``RUNTIMES`` maps a runtime name to the module that defines its ``RUNTIME`` (a ``Runtime``),
imported only when asked for, so that looking a runtime up loads no inference engine. Adding one
(sparse OpenVINO next) is one module and one line here, and passing
``tests/workers/test_runtime_conformance.py``.
"""

from __future__ import annotations

from functools import lru_cache

from core.registry import load_entry
from workers.runtimes.base import PRECISIONS, Runner, Runtime, SweepRequest

RUNTIMES: dict[str, str] = {
    "openvino": "workers.runtimes.openvino",
    "deepsparse": "workers.runtimes.deepsparse",  # optional: its own venv (`make deepsparse-venv`), else unavailable()
}

DEFAULT_RUNTIME = "openvino"


@lru_cache(maxsize=None)
def get_runtime(name: str = DEFAULT_RUNTIME) -> Runtime:
    """The registered runtime called ``name``; ``ValueError`` lists the known ones."""
    return load_entry(RUNTIMES, name, attr="RUNTIME", kind=Runtime, what="runtime")


__all__ = ["DEFAULT_RUNTIME", "PRECISIONS", "RUNTIMES", "Runner", "Runtime", "SweepRequest", "get_runtime"]
