"""Hardware targets a candidate is measured for, and what this host actually is.

Measurements are taken on whatever CPU the worker runs on; a target that is not the
host is *emulated* by capping the instruction set oneDNN may use
(``ONEDNN_MAX_CPU_ISA``). That is an approximation: it changes the kernels, not the
cache sizes, memory bandwidth or core count, so every measurement records the host
(``detect_cpu``) next to the target name.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")

# The flags that decide which INT8/BF16 kernels OpenVINO can use.
RELEVANT_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")

# Intel family 6 server models -> microarchitecture (Skylake-SP/Cascade Lake share 85).
_INTEL_FAMILY6 = {
    106: "icelake",
    108: "icelake",
    143: "sapphirerapids",
    207: "emeraldrapids",
    173: "graniterapids",
    174: "graniterapids",
}

# oneDNN ISA caps without native bf16: OpenVINO would run "default" precision in f32 on
# such a CPU, but it picks bf16 from the real host's cpuid even under the cap.
_ISAS_WITHOUT_BF16 = frozenset(
    {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI"}
)


def _vendor_key(vendor: str) -> str:
    v = vendor.lower()
    if "intel" in v:
        return "intel"
    if "amd" in v:
        return "amd"
    return v


def microarchitecture(vendor: str, family: int | None, model: int | None, flags: Iterable[str]) -> str:
    """Name the microarchitecture from cpuid values; pure so it can be tested on any host."""
    present = set(flags)
    key = _vendor_key(vendor)
    if key == "intel" and family == 6 and model is not None:
        if model == 85:
            return "cascadelake" if "avx512_vnni" in present else "skylake"
        return _INTEL_FAMILY6.get(model, "unknown")
    if key == "amd" and family == 25:
        return "zen4" if "avx512f" in present else "zen3"
    if key == "amd" and family == 26:
        return "zen5"
    return "unknown"


def parse_cpuinfo(text: str) -> dict[str, str]:
    """Key/value pairs of the first processor block of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _logical_cpus() -> int:
    """CPUs this process may run on (a container's affinity, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def detect_cpu() -> dict[str, Any]:
    """Describe the host CPU; falls back to ``platform.processor()`` without /proc/cpuinfo."""
    try:
        fields = parse_cpuinfo(CPUINFO.read_text())
    except OSError:
        fields = {}
    vendor = fields.get("vendor_id", "")
    family = _int_or_none(fields.get("cpu family"))
    model = _int_or_none(fields.get("model"))
    all_flags = set(fields.get("flags", "").split())
    flags = [f for f in RELEVANT_FLAGS if f in all_flags]
    return {
        "vendor": vendor,
        "model_name": fields.get("model name") or platform.processor(),
        "family": family,
        "model": model,
        "flags": flags,
        "logical_cpus": _logical_cpus(),
        "microarchitecture": microarchitecture(vendor, family, model, flags),
    }


@dataclass(frozen=True)
class HardwareTarget:
    """A CPU to measure for: an ISA cap to emulate it, and optional threading limits."""

    name: str
    isa: str | None  # value for ONEDNN_MAX_CPU_ISA; None = no cap
    threads: int | None = None  # INFERENCE_NUM_THREADS; None = OpenVINO's choice
    streams: int | None = None  # NUM_STREAMS of the throughput compile; None = hint's choice
    description: str = ""

    @property
    def has_bf16(self) -> bool:
        """Whether the emulated ISA has bf16 (an uncapped target has whatever the host has)."""
        return self.isa is None or self.isa.upper() not in _ISAS_WITHOUT_BF16


TARGETS: dict[str, HardwareTarget] = {
    t.name: t
    for t in (
        HardwareTarget("native", None, description="the host CPU, no ISA cap"),
        HardwareTarget(
            "cascadelake",
            "AVX512_CORE_VNNI",
            description="2nd gen Xeon Scalable: AVX-512 VNNI int8, no bf16, no AMX",
        ),
        HardwareTarget(
            "icelake",
            "AVX512_CORE_VNNI",
            description="3rd gen Xeon Scalable: same ISA cap as cascadelake (differs only in caches/cores)",
        ),
        HardwareTarget(
            "sapphirerapids",
            "AVX512_CORE_AMX",
            description="4th gen Xeon Scalable: AMX int8/bf16 (a cap above the host's ISA changes nothing)",
        ),
    )
}


def get_target(name: str) -> HardwareTarget:
    """Look a target up by name, failing with the list of known names."""
    try:
        return TARGETS[name]
    except KeyError:
        raise KeyError(f"unknown hardware target {name!r}; known targets: {', '.join(TARGETS)}") from None


def is_native(target: HardwareTarget, cpu: dict[str, Any]) -> bool:
    """True when measuring ``target`` on this CPU needs no emulation."""
    return target.name == "native" or cpu.get("microarchitecture") == target.name


def has_fast_bf16(cpu: dict[str, Any] | None = None) -> bool:
    """Native bf16 matmuls (AVX512-BF16 or AMX): training may autocast to bf16 here."""
    flags = set((cpu or detect_cpu())["flags"])
    return bool(flags & {"avx512_bf16", "amx_bf16"})
