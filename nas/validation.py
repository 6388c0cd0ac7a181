"""Checks of a job spec that need the file system or the base model; each error names its field."""

from __future__ import annotations

from pathlib import Path

from nas.base_models import read_config, resolve_base_model
from nas.config import Settings
from nas.data.squad import SquadFormatError, is_synthetic, load_squad
from nas.spec import JobSpec
from search_spaces.bert.space import UniformBertSpace


class SpecError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _check_data_file(field: str, path: str, settings: Settings) -> None:
    p = Path(path)
    if settings.data_roots:
        resolved = p.resolve()
        if not any(resolved.is_relative_to(root.resolve()) for root in settings.data_roots):
            raise SpecError(field, f"{path} is outside the allowed data directories")
    if not p.is_file():
        raise SpecError(field, f"{path} does not exist or is not a file")
    try:
        load_squad(p)
    except SquadFormatError as exc:
        raise SpecError(field, str(exc)) from exc


def validate_job(spec: JobSpec, settings: Settings) -> bool:
    """Raise ``SpecError`` for the first bad field; return whether the data is synthetic."""
    from workers.targets import TARGETS

    try:
        base_dir = resolve_base_model(spec.base_model)
        base_config = read_config(base_dir)
    except ValueError as exc:
        raise SpecError("base_model", str(exc)) from exc
    try:
        UniformBertSpace.from_spec(spec.search_space, base_config)
    except ValueError as exc:
        raise SpecError("search_space", str(exc)) from exc
    unknown = [t for t in spec.targets if t not in TARGETS]
    if unknown:
        raise SpecError("targets", f"unknown target(s) {unknown}; known: {sorted(TARGETS)}")
    _check_data_file("task.train_file", spec.task.train_file, settings)
    _check_data_file("task.eval_file", spec.task.eval_file, settings)
    return is_synthetic(spec.task.train_file) or is_synthetic(spec.task.eval_file)
