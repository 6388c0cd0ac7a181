"""Whether a job's sparsity dimension can pay on its targets, and what the search keeps of it.

Zeros make a model faster only on a runtime whose kernels skip them. OpenVINO's CPU plugin does so for
INT8 weights on AMX CPUs (``CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE``, set by a profile's
``sparse_weights_rate``); on AVX2 and AVX-512 VNNI it decompresses them and runs its dense kernels.
Pruning costs distillation time per trial, so where no target of the job can turn zeros into speed the
dimension is dropped, and the job says why (``Job.deployment["sparsity"]``); ``sparsity.for_size`` keeps it
for the smaller download alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from nas.spec import JobSpec

SPARSE_ISA_FLAGS = ("amx_tile", "amx_int8")  # what OpenVINO's sparse-weight kernels run on


@dataclass(frozen=True)
class SparsityDecision:
    choices: tuple[float, ...]  # what the search (or refine stage) tries; (0.0,): dense only
    requested: tuple[float, ...]
    pays_on: tuple[str, ...]  # targets whose runtime runs sparse weights with sparse kernels, measured here
    reason: str

    @property
    def dropped(self) -> bool:
        return self.choices != self.requested

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "choices": list(self.choices), "requested": list(self.requested), "pays_on": list(self.pays_on)}


def _why_dense(target: str, cpu: Mapping[str, Any]) -> str | None:
    """Why ``target`` runs sparse weights densely when measured on ``cpu`` (None: sparse kernels run)."""
    from targets import get_target

    profile = get_target(target)
    if profile.sparse_weights_rate is None:
        return f"{target}: its profile sets no sparse_weights_rate (OpenVINO's sparse kernels need AMX), so zeros run densely"
    missing = [f for f in SPARSE_ISA_FLAGS if f not in set(cpu.get("flags", []))]
    if missing:
        host = cpu.get("microarchitecture") or cpu.get("model_name") or "this host"
        return f"{target}: sparse kernels need AMX, and the host measuring it ({host}) lacks {', '.join(missing)}, so zeros run densely"
    return None


def decide_sparsity(spec: JobSpec, cpu: Mapping[str, Any] | None = None) -> SparsityDecision:
    """The sparsity choices of ``spec`` that its targets can use, measured on ``cpu`` (default: this host)."""
    from targets import detect_cpu

    requested = tuple(spec.sparsity.choices)
    if not spec.sparsity.enabled:
        return SparsityDecision((0.0,), requested, (), "no sparsity asked for")
    cpu = detect_cpu() if cpu is None else cpu
    dense = {t: _why_dense(t, cpu) for t in spec.targets}
    pays = tuple(t for t, why in dense.items() if why is None)
    reasons = "; ".join(why for why in dense.values() if why)
    if pays:
        text = f"sparsity {list(requested)} searched: {', '.join(pays)} run sparse INT8 weights with sparse kernels"
        return SparsityDecision(requested, requested, pays, text + (f"; elsewhere it only shrinks the download ({reasons})" if reasons else ""))
    if spec.sparsity.for_size:
        return SparsityDecision(requested, requested, (), f"sparsity kept for size only (sparsity.for_size): {reasons}")
    kept = (0.0,)
    return SparsityDecision(kept, requested, (), f"sparsity dimension dropped, no target gains speed from zeros: {reasons}; set sparsity.for_size to prune for a smaller download")
