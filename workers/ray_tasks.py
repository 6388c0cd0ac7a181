"""Thin Ray wrappers around the worker functions; heavy imports happen inside the task, on the worker.

A trial is three kinds of task (``nas.dispatch.TrialRunner`` strings them together): ``build``
(slice, distil, INT8, F1: any node, some CPUs), ``measure`` (one per target) and ``join`` (the
model card and checksums, written beside the IR on a worker). A measurement asks for the node's target resource ``hw:<target>``
*and all of the node's CPUs*, so Ray never runs it beside another measurement or a build on the
same node, and never starts a build there while it runs: exclusivity is a scheduling fact, not
a lock. Ray's ``max_retries`` re-runs a task whose worker process died; an exception raised by
the pipeline itself is an application failure and is not retried.
"""

from __future__ import annotations

import os
from typing import Any

import ray

from core.progress import ProgressLink, reporting
from core.types import Measurement, TrialRequest, TrialResult


def _use_assigned_cpus() -> None:
    """Give torch and OpenVINO's evaluation as many threads as Ray granted this task."""
    import torch

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    threads = max(1, int(cpus))
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def _reporter(link: ProgressLink | None):  # type: ignore[no-untyped-def]
    """``reporting`` for a task: its progress goes to ``link``'s board (nowhere without one)."""
    return reporting(link.reporter() if link is not None else None)


@ray.remote
def build(request: TrialRequest, precision: str = "int8", progress: ProgressLink | None = None) -> TrialResult:
    _use_assigned_cpus()
    from workers.pipeline import build_candidate

    with _reporter(progress):
        return build_candidate(request, precision=precision)


@ray.remote
def measure(
    request: TrialRequest, target: str, precision: str = "int8", progress: ProgressLink | None = None, reference: dict[str, Any] | None = None
) -> Measurement:
    """``reference``: the built trial's scores (``TrialResult.reference_scores``) a bf16 deployment is held to."""
    from workers.pipeline import measure_candidate

    with _reporter(progress) as reporter:
        reporter.phase(f"measuring on {target}")
        return measure_candidate(request, target, precision=precision, reference=reference)


@ray.remote
def join(request: TrialRequest, built: TrialResult, measurements: list[Measurement], precision: str = "int8") -> TrialResult:
    """``workers.pipeline.finalize``: the measurements attached, ``model_card.json`` and every file's sha256."""
    from workers.pipeline import finalize

    return finalize(request, built, measurements, precision=precision)


@ray.remote
def build_teacher(base_dir: str, out_dir: str, kwargs: dict[str, Any], progress: ProgressLink | None = None) -> dict[str, Any]:
    _use_assigned_cpus()
    from search_spaces.bert.training import TrainSettings
    from workers.teacher import train_teacher

    settings = TrainSettings(**kwargs.pop("settings"))
    with _reporter(progress) as reporter:
        return train_teacher(base_dir, out_dir, settings=settings, on_step=reporter.on_step, on_stage=reporter.phase, **kwargs)


@ray.remote
def build_supernet(teacher_dir: str, out_dir: str, kwargs: dict[str, Any], progress: ProgressLink | None = None) -> dict[str, Any]:
    """``workers.supernet.train_supernet`` on a worker; ``kwargs``: train_file, space (a job's
    ``search_space`` as a dict), settings (``SupernetSettings`` fields), checkpoint_every."""
    _use_assigned_cpus()
    from pathlib import Path

    from search_spaces import space_for
    from search_spaces.base_models import read_config
    from workers.supernet import SupernetSettings, train_supernet

    kwargs = dict(kwargs)
    space = space_for(kwargs.pop("space"), read_config(Path(teacher_dir)))
    settings = SupernetSettings(**kwargs.pop("settings", {}))
    with _reporter(progress) as reporter:
        return train_supernet(teacher_dir, out_dir, space=space, settings=settings, on_step=reporter.on_step, on_stage=reporter.phase, **kwargs)


@ray.remote
def refine(
    request: TrialRequest, steps: int, before: TrialResult | None = None, precision: str = "int8", progress: ProgressLink | None = None
) -> TrialResult:
    """``workers.refine.refine_candidate``: distil a front member standalone, then INT8 and F1 again."""
    _use_assigned_cpus()
    from workers.refine import refine_candidate

    with _reporter(progress):
        return refine_candidate(request, steps, before=before, precision=precision)


@ray.remote(num_cpus=0)
def runtimes_unavailable(targets: list[str]) -> dict[str, str]:
    """Per target whose runtime this node cannot run (DeepSparse not installed, say): why, in one sentence."""
    from workers.pipeline import runtime_unavailable

    return {t: why for t in targets if (why := runtime_unavailable(t))}
