"""Errors shared by the coordinator and its stages, and how a failure reads when stored."""

from __future__ import annotations


class JobCancelled(Exception):
    pass


class StageFailed(Exception):
    """A stage's task failed; its message is already the stored reason (the worker's own words)."""


def failure_reason(exc: BaseException) -> str:
    """The worker's own exception message when Ray wraps it; else type and message."""
    import ray.exceptions

    if isinstance(exc, StageFailed):
        return str(exc)[:4000]
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause if exc.cause is not None else exc
        return f"{type(cause).__name__}: {cause}".strip()[:4000]
    return f"{type(exc).__name__}: {exc}"[:4000]
