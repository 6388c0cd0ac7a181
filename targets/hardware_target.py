"""One hardware target as the measuring code uses it, and the YAML file form of its profile.

``HardwareTarget`` is the validated, immutable view of a profile (``targets.profile_schema``) with
what the measurement needs from it (ISA cap, thread cap, bf16, the microarchitecture it stands
for); it and its file form live here, apart from the registry that collects them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from targets.profile_schema import TargetProfile, TargetProfileError, validate_profile

BUILTIN = "builtin"

# oneDNN ISA caps without native bf16: OpenVINO would run "default" precision in f32 on
# such a CPU, but it picks bf16 from the real host's cpuid even under the cap.
_ISAS_WITHOUT_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI"})


@dataclass(frozen=True)
class HardwareTarget:
    """A CPU to measure for: an ISA cap to emulate it, threading limits, its scenarios' shapes."""

    name: str
    isa: str | None  # value for ONEDNN_MAX_CPU_ISA; None = no cap
    threads: int | None = None  # INFERENCE_NUM_THREADS; None = one per core, or OpenVINO's choice
    streams: int | None = None  # NUM_STREAMS of the throughput compile; None = hint's choice
    description: str = ""
    cores: int | None = None
    microarchitecture: str | None = None  # None: the name when isa is set, else the host
    seq_len: int = 384
    latency_batch: int = 1
    throughput_batch: int = 16
    sparse_weights_rate: float | None = None  # OpenVINO's sparse-weight decompression for INT8 (AMX only); None: off
    runtime: str = "openvino"  # workers.runtimes name of what measures this target
    source: str = BUILTIN  # "builtin", a file path, or "registered"

    @property
    def has_bf16(self) -> bool:
        """Whether the emulated ISA has bf16 (an uncapped target has whatever the host has)."""
        return self.isa is None or self.isa.upper() not in _ISAS_WITHOUT_BF16

    @property
    def stands_for(self) -> str | None:
        """The microarchitecture measured natively as this target (None: any host)."""
        if self.name == "native":
            return None
        if self.microarchitecture:
            return self.microarchitecture
        return self.name if self.isa else None

    @property
    def thread_cap(self) -> int | None:
        """Inference threads the profile asks for: ``threads``, else one per core, else None."""
        return self.threads or self.cores

    def to_profile(self) -> dict[str, Any]:
        """The profile as a file holds it (no ``source``)."""
        return {
            "name": self.name,
            "description": self.description,
            "microarchitecture": self.microarchitecture,
            "isa": self.isa,
            "cores": self.cores,
            "threads": self.threads,
            "streams": self.streams,
            "seq_len": self.seq_len,
            **({"sparse_weights_rate": self.sparse_weights_rate} if self.sparse_weights_rate is not None else {}),
            **({"runtime": self.runtime} if self.runtime != "openvino" else {}),
            "scenarios": {
                "single_stream": {"batch": self.latency_batch},
                "offline": {"batch": self.throughput_batch},
            },
        }

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any] | TargetProfile, *, source: str = "profile") -> "HardwareTarget":
        p = validate_profile(profile, source=source)
        return cls(
            name=p.name,
            isa=p.isa,
            threads=p.threads,
            streams=p.streams,
            description=p.description,
            cores=p.cores,
            microarchitecture=p.microarchitecture,
            seq_len=p.seq_len,
            latency_batch=p.scenarios.single_stream.batch,
            throughput_batch=p.scenarios.offline.batch,
            sparse_weights_rate=p.sparse_weights_rate,
            runtime=p.runtime,
            source=source,
        )


def load_profile_file(path: str | Path, *, source: str | None = None) -> HardwareTarget:
    """One YAML profile file; errors name the file and the field."""
    path = Path(path)
    label = source or str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise TargetProfileError(f"{path}: not valid YAML: {exc}", source=str(path)) from None
    except OSError as exc:
        raise TargetProfileError(f"{path}: cannot read: {exc.strerror or exc}", source=str(path)) from None
    target = HardwareTarget.from_profile(data if data is not None else {}, source=str(path))
    return replace(target, source=label)


def profile_yaml(target: HardwareTarget) -> str:
    return yaml.safe_dump(target.to_profile(), sort_keys=False, default_flow_style=False)


def is_native(target: HardwareTarget, cpu: Mapping[str, Any]) -> bool:
    """True when measuring ``target`` on this CPU needs no emulation.

    ``native`` (or any profile with neither an ISA cap nor a microarchitecture) is the host
    itself; any other profile is native on a host of the microarchitecture it stands for, so a
    worker on a real Ice Lake measures ``icelake`` natively.
    """
    stands_for = target.stands_for
    return stands_for is None or cpu.get("microarchitecture") == stands_for
