"""Checks of a job spec that need the file system or the base model; each error names its field."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from search_spaces.base_models import is_registered, read_config, resolve_base_model
from nas.config import Settings
from core.qa.features import check_questions_fit
from core.qa.sources import DataSourceError, Role, is_named, resolve_data_file
from core.qa.squad import SQUAD_V11, SQUAD_V20, SquadFormatError, is_synthetic, load_squad, squad_version
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
    A left-out ``task.version`` is read from the files (either in v2.0: ``squad-v2.0``).
    """
    cache = datasets_cache_dir(settings)
    train = resolve_data_file(spec.task.train_file, role="train", cache_dir=cache)
    evalf = resolve_data_file(spec.task.eval_file, role="eval", cache_dir=cache)
    version = spec.task.version or (SQUAD_V20 if SQUAD_V20 in (squad_version(train), squad_version(evalf)) else SQUAD_V11)
    task = spec.task.model_copy(update={"train_file": train, "eval_file": evalf, "version": version})
    return spec.model_copy(update={"task": task})


def with_task_version(spec: JobSpec, settings: Settings) -> JobSpec:
    """The spec with ``task.version`` filled from the data where it was left out (what a job stores);
    call it after ``validate_job`` accepted the spec (named data sets are then in the cache)."""
    if spec.task.version is not None:
        return spec
    version = with_local_data_files(spec, settings).task.version
    return spec.model_copy(update={"task": spec.task.model_copy(update={"version": version})})


def data_task(version: str | None, train: str, evalf: str) -> str:
    """The job's QA task: ``version`` (``task.version``), else the files' own; ``SpecError`` naming the
    file where a v2.0 file meets a squad-v1.1 task, or (left out) where the two files disagree."""
    versions = {"task.train_file": (train, squad_version(train)), "task.eval_file": (evalf, squad_version(evalf))}
    v2 = {field: path for field, (path, v) in versions.items() if v == SQUAD_V20}
    if version == SQUAD_V20 or (version is None and len(v2) == 2):
        return SQUAD_V20
    if not v2:
        return SQUAD_V11
    field, path = next(iter(v2.items()))
    what = f'{path} is a SQuAD v2.0 file ("version": "v2.0" or unanswerable questions, "is_impossible": true)'
    if version == SQUAD_V11:
        raise SpecError(field, f"{what}, but task.version is squad-v1.1, whose questions all have answers: "
                               "set task.version to squad-v2.0, or leave it out to read it from the data")  # fmt: skip
    other_field = "task.eval_file" if field == "task.train_file" else "task.train_file"
    other = versions[other_field][0]
    raise SpecError(
        field,
        f"{what}, but {other_field} {other} is SQuAD v1.1 (every question answerable): give both files in the same "
        "version, or set task.version: squad-v2.0 to read the v1.1 file as v2.0 (a model trained without "
        "unanswerable questions never learns to abstain)",
    )


def base_model_of(spec: JobSpec, settings: Settings) -> tuple[Path, Any]:
    """The base model's directory and config, or ``SpecError("base_model", ...)``; a local directory
    passes the data-root check before anything reads it (every caller goes through here)."""
    if not is_registered(spec.base_model):
        _require_allowed_path("base_model", spec.base_model, settings, expand_user=True)
    try:
        base_dir = resolve_base_model(spec.base_model)
        config = read_config(base_dir)
    except ValueError as exc:  # unknown name, unreadable directory, unsupported model_type
        raise SpecError("base_model", str(exc)) from exc
    _check_qa_head(base_dir, config)
    return base_dir, config


QA_HEAD_OUTPUTS = 2  # an extractive-QA head gives a start and an end logit per token


def _check_qa_head(base_dir: Path, config: Any) -> None:
    """A base with a ``*ForQuestionAnswering`` head is the teacher as it is: refuse one whose head has other
    than 2 outputs, by its config (``id2label`` / ``num_labels``) or its ``qa_outputs`` weight's shape
    (read from the safetensors header: no weights are loaded)."""
    raw = config if isinstance(config, dict) else vars(config)
    if not any(str(a).endswith("ForQuestionAnswering") for a in raw.get("architectures") or ()):
        return  # no head yet: the teacher stage fine-tunes one of 2 outputs
    labels = raw.get("id2label")
    found: list[tuple[int, str]] = [(len(labels) if isinstance(labels, dict) else int(raw.get("num_labels", 2)), "its config.json's labels")]
    shape = safetensors_shape(base_dir, "qa_outputs.weight")
    if shape:
        found.append((int(shape[0]), "its qa_outputs weight"))
    for outputs, where in found:
        if outputs != QA_HEAD_OUTPUTS:
            raise SpecError(
                "base_model",
                f"{base_dir}: its question-answering head has {outputs} outputs ({where}), but extractive QA needs "
                f"{QA_HEAD_OUTPUTS} (start and end logits); use a base with a SQuAD head, or its encoder without a head "
                "(the service then fine-tunes one)",
            )


def safetensors_shape(model_dir: Path, suffix: str) -> list[int] | None:
    """Shape of the first tensor whose name ends with ``suffix`` in ``model_dir``'s safetensors files (one
    file or an index of shards), from their headers only; None where there is none or a header is unreadable."""
    import json
    import struct

    index = model_dir / "model.safetensors.index.json"
    try:
        if index.is_file():
            weight_map = json.loads(index.read_text()).get("weight_map", {})
            files = sorted({model_dir / name for key, name in weight_map.items() if key.endswith(suffix)})
        else:
            files = [model_dir / "model.safetensors"] if (model_dir / "model.safetensors").is_file() else []
        for path in files:
            with open(path, "rb") as f:
                (size,) = struct.unpack("<Q", f.read(8))
                if size > 100 << 20:  # not a header: a corrupt or foreign file
                    continue
                header = json.loads(f.read(size))
            for key, meta in header.items():
                if key.endswith(suffix) and isinstance(meta, dict) and isinstance(meta.get("shape"), list):
                    return meta["shape"]
    except (OSError, ValueError, struct.error):  # loading reports a broken file better than a header does
        return None
    return None


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
    data_task(spec.task.version, train, evalf)
    return is_synthetic(train) or is_synthetic(evalf)
