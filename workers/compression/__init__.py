"""Compression steps by name (lazy registry): what turns a teacher or supernet into the model a trial ships.

``COMPRESSORS`` maps a step name to the module that defines its ``STEP`` (a ``CompressionStep``),
imported only when asked for (NNCF and torch load on the worker that runs the step). Adding a step
(as ``prune`` and ``qat_int8`` were) is one module and one line here, and passing
``tests/workers/test_compression_conformance.py``.
"""

from __future__ import annotations

from functools import lru_cache

from core.registry import load_entry
from workers.compression.base import WORKS_ON, CompressionStep, StepContext

COMPRESSORS: dict[str, str] = {
    "slice": "workers.compression.slice",
    "ptq_int8": "workers.compression.ptq_int8",
    "prune": "workers.compression.prune",
    "qat_int8": "workers.compression.qat_int8",
}


@lru_cache(maxsize=None)
def get_step(name: str) -> CompressionStep:
    """The registered step called ``name``; ``ValueError`` lists the known ones."""
    return load_entry(COMPRESSORS, name, attr="STEP", kind=CompressionStep, what="compression step")


__all__ = ["COMPRESSORS", "CompressionStep", "StepContext", "WORKS_ON", "get_step"]
