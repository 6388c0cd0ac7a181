"""Checks of a job spec that need the file system or the base model; each error names its field."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from search_spaces.base_models import is_registered, read_config, resolve_base_model
from nas.config import Settings
from core.qa.features import check_questions_fit
from core.qa.sources import DataSourceError, Role, is_named, resolve_data_file
from core.qa.squad import SquadFormatError, is_synthetic, load_squad
from nas.spec import JobSpec
from search_spaces import space_for


class SpecError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def datasets_cache_dir(settings: Settings) -> Path:
    """Where named data sets (``squad``) are written as SQuAD JSON files."""
    return settings.data_dir / "datasets"


@functools.lru_cache(maxsize=4)
def _tokenizer(model_dir: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def _base_tokenizer(base_dir: Path) -> Any:
    try:
        tok = _tokenizer(str(base_dir))
    except Exception as exc:  # missing or unreadable tokenizer files
        raise SpecError("base_model", f"{base_dir}: cannot load its tokenizer: {type(exc).__name__}: {exc}") from exc
    if not getattr(tok, "is_fast", False):
        raise SpecError("base_model", f"{base_dir}: needs a fast (Rust) tokenizer for character offsets")
    return tok


def _require_allowed_path(field: str, value: str, settings: Settings, *, expand_user: bool = False) -> None:
    """Refuse a path outside ``Settings.allowed_data_roots()`` before anything opens or stats it.

    Symlinks and ``..`` are resolved first, so neither leads out of a root. The message names the
    value as given and the roots, never the resolved target, and is the same whether the file
    exists or not: a refused spec must not tell its author anything about the server's files.
    ``expand_user`` matches how the value is opened later (base models expand ``~``, data files do not).
    """
    roots = settings.allowed_data_roots()
    if roots is None:
        return
    try:
        path = Path(value).expanduser() if expand_user else Path(value)
        resolved: Path | None = path.resolve(strict=False)
    except (OSError, RuntimeError, ValueError):  # unknown ~user, NUL byte, symlink loop: refuse alike
        resolved = None
    if resolved is None or not any(resolved.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(root) for root in roots)
        raise SpecError(field, f"{value!r} is outside the allowed data directories ({allowed})")


def _check_data_file(field: str, value: str, settings: Settings, *, role: Role, spec: JobSpec, tokenizer: Any) -> str:
    """Validate one data file (or named data set) and return the local file it resolves to."""
    if not is_named(value):  # named data sets resolve into the data directory's cache
        _require_allowed_path(field, value, settings)
    try:
        path = resolve_data_file(value, role=role, cache_dir=datasets_cache_dir(settings))
    except DataSourceError as exc:
        raise SpecError(field, str(exc)) from exc
    p = Path(path)
    if not p.is_file():
        raise SpecError(field, f"{path} does not exist or is not a file")
    try:
        examples = load_squad(p)
        check_questions_fit(
            examples, tokenizer, max_seq_length=spec.task.max_seq_length, doc_stride=spec.task.doc_stride
        )
    except SquadFormatError as exc:
        raise SpecError(field, str(exc)) from exc
    except ValueError as exc:  # windowing settings that leave no room at all
        raise SpecError("task", str(exc)) from exc
    return path


def with_local_data_files(spec: JobSpec, settings: Settings) -> JobSpec:
    """The spec with named data sets (``squad``) replaced by their local SQuAD JSON files.

    For the coordinator, so the teacher cache key and the workers read plain files; after
    ``validate_job`` accepted the spec the files are in the cache and nothing is fetched.
    """
    cache = datasets_cache_dir(settings)
    task = spec.task.model_copy(
        update={
            "train_file": resolve_data_file(spec.task.train_file, role="train", cache_dir=cache),
            "eval_file": resolve_data_file(spec.task.eval_file, role="eval", cache_dir=cache),
        }
    )
    return spec.model_copy(update={"task": task})


def base_model_of(spec: JobSpec, settings: Settings) -> tuple[Path, Any]:
    """The base model's directory and config, or ``SpecError("base_model", ...)``; a local directory
    passes the data-root check before anything reads it (every caller goes through here)."""
    if not is_registered(spec.base_model):
        _require_allowed_path("base_model", spec.base_model, settings, expand_user=True)
    try:
        base_dir = resolve_base_model(spec.base_model)
        return base_dir, read_config(base_dir)
    except ValueError as exc:  # unknown name, unreadable directory, unsupported model_type
        raise SpecError("base_model", str(exc)) from exc


def validate_job(spec: JobSpec, settings: Settings) -> bool:
    """Raise ``SpecError`` for the first bad field; return whether the data is synthetic."""
    from targets import TARGETS

    base_dir, base_config = base_model_of(spec, settings)
    try:
        space = space_for(spec.search_space, base_config)
    except ValueError as exc:
        raise SpecError("search_space", str(exc)) from exc
    if spec.sampler == "grid":
        from nas.samplers import grid_of

        try:
            grid_of(space.sample)
        except ValueError as exc:
            raise SpecError("sampler", str(exc)) from exc
    if spec.refine.top_k and not spec.supernet.enabled:
        raise SpecError("refine", "refine distils subnets sliced from a supernet: set supernet.enabled (or refine.top_k: 0)")
    unknown = [t for t in spec.targets if t not in TARGETS]
    if unknown:
        raise SpecError("targets", f"unknown target(s) {unknown}; known: {sorted(TARGETS)}")
    tokenizer = _base_tokenizer(base_dir)
    train = _check_data_file("task.train_file", spec.task.train_file, settings, role="train", spec=spec, tokenizer=tokenizer)
    evalf = _check_data_file("task.eval_file", spec.task.eval_file, settings, role="eval", spec=spec, tokenizer=tokenizer)
    return is_synthetic(train) or is_synthetic(evalf)
