"""What this host is: CPU vendor, model, the ISA flags that matter for INT8/BF16, microarchitecture.

Pure helpers (``parse_cpuinfo``, ``microarchitecture``) take cpuid values so they can be
tested on any host; ``detect_cpu`` reads ``/proc/cpuinfo`` and the process's CPU affinity.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
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
        named = _INTEL_FAMILY6.get(model)
        if named is None and {"amx_int8", "amx_bf16"} <= present:
            # a hypervisor may report a desktop model number (seen: 167) for a Xeon whose AMX it passes through;
            # AMX-INT8/BF16 is the Sapphire Rapids ISA (and later), which is what OpenVINO's kernels follow
            return "sapphirerapids"
        return named or "unknown"
    if key == "amd" and family == 23:  # Zen and Zen 2 (Rome: model 49): AVX2, no AVX-512, no VNNI
        return "zen2" if model is not None and model >= 0x30 else "zen"
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


def logical_cpus() -> int:
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
        "logical_cpus": logical_cpus(),
        "microarchitecture": microarchitecture(vendor, family, model, flags),
    }


def has_fast_bf16(cpu: dict[str, Any] | None = None) -> bool:
    """Native bf16 matmuls (AVX512-BF16 or AMX): training may autocast to bf16 here."""
    flags = set((cpu or detect_cpu())["flags"])
    return bool(flags & {"avx512_bf16", "amx_bf16"})
