"""Thin Ray wrappers around the worker functions; heavy imports happen inside the task, on the worker.

Ray's ``max_retries`` re-runs a task whose worker process died (system failure); an
exception raised by the pipeline itself is an application failure and is not retried.
"""

from __future__ import annotations

import os
from typing import Any

import ray

from nas.types import TrialRequest, TrialResult


def _use_assigned_cpus() -> None:
    """Give torch and OpenVINO's evaluation as many threads as Ray granted this task."""
    import torch

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    threads = max(1, int(cpus))
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


@ray.remote
def evaluate_candidate(request: TrialRequest, precision: str = "int8") -> TrialResult:
    _use_assigned_cpus()
    from workers.pipeline import run_trial

    return run_trial(request, precision=precision)


@ray.remote
def build_teacher(base_dir: str, out_dir: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    _use_assigned_cpus()
    from search_spaces.bert.training import TrainSettings
    from workers.teacher import train_teacher

    settings = TrainSettings(**kwargs.pop("settings"))
    return train_teacher(base_dir, out_dir, settings=settings, **kwargs)
