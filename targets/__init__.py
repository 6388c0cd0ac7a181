"""Hardware targets a candidate is measured for, and what this host actually is.

Measurements are taken on whatever CPU the worker runs on; a target that is not the
host is *emulated* by capping the instruction set oneDNN may use
(``ONEDNN_MAX_CPU_ISA``) and the inference threads. That is an approximation: it changes
the kernels and the parallelism, not the cache sizes, memory bandwidth or clocks, so every
measurement records the host (``detect_cpu``) next to the target name.

Targets are data (``profiles/*.yaml``, ``HWNAS_TARGETS_DIR``, ``register_target``); see
``targets.registry`` (where profiles come from), ``targets.profile_schema`` (what one may hold)
and ``targets.hardware_target`` (one target). Importing this package reads no file.
"""

from targets.cpu import (
    CPUINFO,
    RELEVANT_FLAGS,
    detect_cpu,
    has_fast_bf16,
    logical_cpus,
    microarchitecture,
    parse_cpuinfo,
)
from targets.emulation import TargetCheck, check_target, target_resource
from targets.hardware_target import HardwareTarget, is_native, load_profile_file, profile_yaml
from targets.profile_schema import (
    ONEDNN_ISAS,
    TargetExistsError,
    TargetProfile,
    TargetProfileError,
    validate_profile,
)
from targets.registry import (
    BUILTIN_DIR,
    TARGETS,
    TARGETS_DIR_ENV,
    TargetRegistry,
    get_target,
    load_targets,
    native_target,
    register_target,
)

__all__ = [
    "BUILTIN_DIR",
    "CPUINFO",
    "ONEDNN_ISAS",
    "RELEVANT_FLAGS",
    "TARGETS",
    "TARGETS_DIR_ENV",
    "HardwareTarget",
    "TargetExistsError",
    "TargetProfile",
    "TargetProfileError",
    "TargetCheck",
    "TargetRegistry",
    "check_target",
    "target_resource",
    "detect_cpu",
    "get_target",
    "has_fast_bf16",
    "is_native",
    "logical_cpus",
    "load_profile_file",
    "load_targets",
    "microarchitecture",
    "native_target",
    "parse_cpuinfo",
    "profile_yaml",
    "register_target",
    "validate_profile",
]
