"""The process a measurement runs in: its environment and its scheduling priority.

Kept apart from the timing code because both sides need it: the parent builds the child's
environment (the oneDNN ISA cap that emulates a target must be set before ``openvino`` is
imported, so only a fresh interpreter can take it), and the child renices itself and checks
the cap before it loads OpenVINO.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from targets import HardwareTarget

ISA_ENV = "ONEDNN_MAX_CPU_ISA"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def target_env(target: HardwareTarget, base: Mapping[str, str]) -> dict[str, str]:
    """The environment a measurement of ``target`` runs in: ISA cap set or removed."""
    env = dict(base)
    if target.isa:
        env[ISA_ENV] = target.isa
    else:
        env.pop(ISA_ENV, None)
    return env


def child_env(target: HardwareTarget, base: Mapping[str, str]) -> dict[str, str]:
    """``target_env`` plus what the measurement interpreter needs: the project on its path, and
    one OpenBLAS thread (numpy only draws the inputs; its idle pool would keep the parent's nice)."""
    env = target_env(target, base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def apply_isa_cap(target: HardwareTarget) -> None:
    """Make a hand-run CLI behave like ``measure_ir``: set the cap before OpenVINO loads."""
    wanted = target_env(target, os.environ).get(ISA_ENV)
    if os.environ.get(ISA_ENV) == wanted:
        return
    if "openvino" in sys.modules:
        raise RuntimeError(f"{ISA_ENV} must be set before openvino is imported")
    if wanted is None:
        os.environ.pop(ISA_ENV, None)
    else:
        os.environ[ISA_ENV] = wanted


def _thread_ids() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # not Linux: the calling thread stands for the process
        return [0]


def normal_priority() -> int:
    """Renice every thread of this process to 0 (Ray workers run at nice 15); returns the niceness.

    Lowering the niceness needs root (or CAP_SYS_NICE); without it the niceness stays and is
    recorded as it is. Call before OpenVINO starts its threads, which inherit the caller's.
    """
    for tid in _thread_ids():
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) > 0:
                os.setpriority(os.PRIO_PROCESS, tid, 0)
        except (PermissionError, ProcessLookupError):
            pass
    return niceness()


def niceness() -> int:
    """The highest niceness among this process's threads (Linux keeps one per thread)."""
    values = []
    for tid in _thread_ids():
        try:
            values.append(os.getpriority(os.PRIO_PROCESS, tid))
        except ProcessLookupError:  # a thread that just ended
            pass
    return max(values) if values else os.getpriority(os.PRIO_PROCESS, 0)
