"""Whether this host measures a target natively, and what emulating it means here.

A target that is not the host's own CPU is emulated by capping oneDNN's ISA
(``ONEDNN_MAX_CPU_ISA``) and the inference threads; a cap above the host's ISA changes nothing,
and ``check_target`` says so instead of letting a figure pretend otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# CPU flags that must be present for an ISA cap to mean what it says (a cap above the host's
# ISA changes nothing: the host's own kernels run).
_ISA_NEEDS = {
    "AVX2": {"avx2"},
    "AVX2_VNNI": {"avx2"},
    "AVX512_CORE": {"avx512f"},
    "AVX512_CORE_VNNI": {"avx512f", "avx512_vnni"},
    "AVX512_CORE_BF16": {"avx512f", "avx512_vnni", "avx512_bf16"},
    "AVX512_CORE_AMX": {"amx_tile", "amx_int8"},
    "AVX512_CORE_AMX_FP16": {"amx_tile", "amx_int8"},
}


def target_resource(target: str) -> str:
    """The Ray node resource that marks a node serving ``target`` (a measure task asks for it)."""
    return f"hw:{target}"


@dataclass(frozen=True)
class TargetCheck:
    """Whether this host measures ``name`` natively, and what emulation means if it does not."""

    name: str
    native: bool
    host: str  # microarchitecture of this host
    cpu_model: str
    isa: str | None
    threads: int | None
    note: str = ""

    def describe(self) -> str:
        if self.native:
            return f"{self.name}: native (this host is {self.host}: {self.cpu_model})"
        cap = f"ONEDNN_MAX_CPU_ISA={self.isa}" if self.isa else "no ISA cap"
        threads = f", {self.threads} inference threads" if self.threads else ""
        line = f"{self.name}: emulated on {self.host} ({self.cpu_model}) with {cap}{threads}; every figure is tagged emulated"
        return line + (f"; {self.note}" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.name,
            "native": self.native,
            "host": self.host,
            "cpu_model": self.cpu_model,
            "isa": self.isa,
            "threads": self.threads,
            "note": self.note,
        }


def check_target(name: str, cpu: Mapping[str, Any] | None = None) -> TargetCheck:
    """Look ``name`` up (``KeyError`` naming the known targets) and compare it with this CPU."""
    from targets import TARGETS, detect_cpu, is_native

    target = TARGETS.lookup(name)
    cpu = detect_cpu() if cpu is None else cpu
    native = is_native(target, cpu)
    note = ""
    if not native and target.isa:
        missing = _ISA_NEEDS.get(target.isa.upper(), set()) - set(cpu.get("flags", []))
        if missing:
            note = (
                f"this CPU lacks {', '.join(sorted(missing))}, so the {target.isa} cap changes nothing: "
                "figures show this CPU's own ISA"
            )
    cores = cpu.get("logical_cpus")
    if target.thread_cap and cores and target.thread_cap > cores:
        extra = f"the profile asks for {target.thread_cap} threads but this node has {cores} CPUs"
        note = f"{note}; {extra}" if note else extra
    return TargetCheck(
        name=target.name,
        native=native,
        host=str(cpu.get("microarchitecture", "unknown")),
        cpu_model=str(cpu.get("model_name", "")),
        isa=target.isa,
        threads=target.thread_cap,
        note=note,
    )
