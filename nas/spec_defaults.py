"""A job's left-out search-space dimensions, filled from its base model's config at submission.

Why here and not in ``nas.spec``: the defaults need the base's config (its family names the sizes),
and the spec module stays pure. The API stores the filled spec, so what a job searched is on
record (``GET /api/v1/jobs/{id}``) and the coordinator never needs the defaults again.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from nas.config import Settings
from nas.spec import JobSpec
from nas.validation import SpecError, base_model_of
from search_spaces import family_for

ELASTIC = ("layers", "heads", "ffn")


def fill_search_space(spec: JobSpec, base_config: Any) -> JobSpec:
    """``spec`` with each left-out ``layers``/``heads``/``ffn`` taken from the base's family defaults.

    Given dimensions are kept as they are. The result goes through pydantic again, so the checks that
    need real values (the grid size) run on the filled space; a ``ValidationError`` says which failed.
    """
    missing = [name for name in ELASTIC if getattr(spec.search_space, name) is None]
    if not missing:
        return spec
    defaults = family_for(base_config).default_choices(base_config)
    space = {**spec.search_space.model_dump(), **{name: defaults[name] for name in missing}}
    return JobSpec.model_validate({**spec.model_dump(), "search_space": space})


def with_search_space_defaults(spec: JobSpec, settings: Settings) -> JobSpec:
    """``fill_search_space`` over the spec's own base model, its errors as ``SpecError`` (a 422 at the API).

    A spec whose space is complete is returned as it is, without opening the base model.
    """
    if spec.search_space.filled:
        return spec
    try:
        return fill_search_space(spec, base_model_of(spec, settings)[1])
    except ValidationError as exc:  # e.g. a grid the filled space makes too large
        raise SpecError("search_space", _messages(exc)) from exc


def _messages(exc: ValidationError) -> str:
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
