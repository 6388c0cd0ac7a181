"""Hardware target profiles as data: built-in YAML files, a user directory, run-time registrations.

A profile names a CPU to measure for and how: the oneDNN ISA cap that emulates it on another
host, the cores/threads and throughput streams a deployment uses, and the sequence length and
batch sizes of its two scenarios (SingleStream latency, Offline throughput). Built-in profiles
are ``targets/profiles/*.yaml``; users add their own without code, as YAML files in the
directory named by ``HWNAS_TARGETS_DIR`` (several may be joined with ``os.pathsep``), through
``register_target(profile_dict)``, or through ``POST /api/v1/targets``.

Nothing is read at import time: ``TARGETS`` loads itself on first use, and ``load_targets()``
re-reads the built-ins, ``HWNAS_TARGETS_DIR`` (read at that call) and any extra directories.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

TARGETS_DIR_ENV = "HWNAS_TARGETS_DIR"
BUILTIN_DIR = Path(__file__).resolve().parent / "profiles"
PROFILE_SUFFIXES = (".yaml", ".yml")
BUILTIN = "builtin"

# Values oneDNN accepts in ONEDNN_MAX_CPU_ISA (DEFAULT means no cap and is stored as null).
ONEDNN_ISAS = (
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX2_VNNI_2",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16",
    "AVX512_CORE_FP16",
    "AVX10_1_512",
    "AVX512_CORE_AMX",
    "AVX512_CORE_AMX_FP16",
    "AVX10_1_512_AMX",
    "AVX10_1_512_AMX_FP16",
    "AVX10_2_512",
    "AVX10_2_512_AMX_2",
)

# oneDNN ISA caps without native bf16: OpenVINO would run "default" precision in f32 on
# such a CPU, but it picks bf16 from the real host's cpuid even under the cap.
_ISAS_WITHOUT_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI"})


class TargetProfileError(ValueError):
    """A profile that cannot be used; the message names the file (or source) and the field."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.field = field


class TargetExistsError(TargetProfileError):
    """A profile of that name is already known (built-in, from a file, or registered)."""


# --------------------------------------------------------------------------- the schema


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: int = Field(ge=1, le=1024, description="inputs per inference request")


class Scenarios(BaseModel):
    model_config = ConfigDict(extra="forbid")

    single_stream: Scenario = Field(default_factory=lambda: Scenario(batch=1), description="latency: sync requests")
    offline: Scenario = Field(default_factory=lambda: Scenario(batch=16), description="throughput: AsyncInferQueue")


class TargetProfile(BaseModel):
    """What a profile file (or the POST body) holds; unknown fields are errors, so typos show."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$", description="lower-case letters, digits, '.', '_', '-'"
    )
    description: str = Field(default="", max_length=500)
    microarchitecture: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$",
        description="the CPU this profile stands for, as detect_cpu names it (icelake, zen4, ...); a host of "
        "that microarchitecture measures it natively. Default: the name when an ISA cap is set, else the host",
    )
    isa: str | None = Field(default=None, description="ONEDNN_MAX_CPU_ISA cap; null = no cap")
    cores: int | None = Field(default=None, ge=1, le=4096, description="physical cores of the deployment")
    threads: int | None = Field(
        default=None, ge=1, le=8192, description="INFERENCE_NUM_THREADS; default: one per core, or OpenVINO's choice"
    )
    streams: int | None = Field(default=None, ge=1, le=4096, description="NUM_STREAMS of the Offline scenario")
    seq_len: int = Field(default=384, ge=8, le=8192, description="sequence length of both scenarios")
    scenarios: Scenarios = Field(default_factory=Scenarios)

    @field_validator("isa", mode="before")
    @classmethod
    def _isa_known(cls, v: Any) -> Any:
        if v is None:
            return None
        if not isinstance(v, str):
            raise ValueError(f"must be a oneDNN ISA name, one of {', '.join(ONEDNN_ISAS)}")
        isa = v.strip().upper()
        if isa in ("", "DEFAULT", "NONE"):
            return None
        if isa not in ONEDNN_ISAS:
            raise ValueError(f"unknown oneDNN ISA {v!r}; one of {', '.join(ONEDNN_ISAS)} (or null for no cap)")
        return isa

    @field_validator("microarchitecture")
    @classmethod
    def _lower(cls, v: str | None) -> str | None:
        return v.lower() if v is not None else None

    @field_validator("description")
    @classmethod
    def _printable(cls, v: str) -> str:
        if not v.isprintable() or v != v.encode("utf-8", "replace").decode("utf-8"):
            raise ValueError("must be printable text on one line")
        return v


def _validation_message(exc: ValidationError) -> tuple[str, str]:
    """('field.path', 'every error, field by field') of a pydantic error."""
    parts, first = [], ""
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(profile)"
        first = first or loc
        parts.append(f"{loc}: {err['msg']}")
    return first, "; ".join(parts)


def validate_profile(profile: Mapping[str, Any] | TargetProfile, *, source: str = "profile") -> TargetProfile:
    """Check a profile mapping; ``TargetProfileError`` names ``source`` and the bad field(s)."""
    if isinstance(profile, TargetProfile):
        return profile
    if not isinstance(profile, Mapping):
        raise TargetProfileError(
            f"{source}: a target profile must be a mapping of fields, got {type(profile).__name__}", source=source
        )
    try:
        return TargetProfile.model_validate(dict(profile))
    except ValidationError as exc:
        field, message = _validation_message(exc)
        raise TargetProfileError(f"{source}: {message}", source=source, field=field) from None


# --------------------------------------------------------------------------- the target


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


def _profile_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in PROFILE_SUFFIXES)


# --------------------------------------------------------------------------- the registry


def env_target_dirs() -> list[Path]:
    """Directories named by ``HWNAS_TARGETS_DIR`` now (empty when unset)."""
    value = os.environ.get(TARGETS_DIR_ENV, "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


class TargetRegistry(Mapping[str, HardwareTarget]):
    """name -> ``HardwareTarget``; built-ins first (``native``, then by file name), then user profiles.

    Loads on first use; ``load()`` re-reads every source. Thread-safe (the API's worker threads
    register while the coordinator validates specs).
    """

    def __init__(self, builtin_dir: Path = BUILTIN_DIR) -> None:
        self._builtin_dir = builtin_dir
        self._targets: dict[str, HardwareTarget] | None = None
        self._extra_dirs: list[Path] = []
        self._registered: dict[str, HardwareTarget] = {}
        self._lock = threading.RLock()

    # ---- sources -----------------------------------------------------------------------
    def directories(self) -> list[Path]:
        """User profile directories, in load order: ``HWNAS_TARGETS_DIR`` then the extra ones."""
        seen: set[Path] = set()
        out: list[Path] = []
        for d in [*env_target_dirs(), *self._extra_dirs]:
            key = d.resolve()
            if key not in seen:
                seen.add(key)
                out.append(d)
        return out

    def load(self, *extra_dirs: str | Path) -> "TargetRegistry":
        """Re-read the built-ins, ``HWNAS_TARGETS_DIR`` and the extra directories.

        ``extra_dirs``, when given, replace the remembered ones. A directory that does not exist
        yet is skipped (the service creates ``<data dir>/targets`` on the first POST; ``hwnas
        targets`` shows it as "none yet"); a path that exists but is not a directory is an error.
        """
        with self._lock:
            if extra_dirs:
                self._extra_dirs = [Path(d) for d in extra_dirs]
            targets: dict[str, HardwareTarget] = {}
            builtins = sorted(_profile_files(self._builtin_dir), key=lambda p: (p.stem != "native", p.name))
            for path in builtins:
                self._add(targets, load_profile_file(path, source=BUILTIN), path)
            for directory in self.directories():
                if not directory.exists():
                    continue
                if not directory.is_dir():
                    raise TargetProfileError(
                        f"{directory}: not a directory (a target profile directory: {TARGETS_DIR_ENV} "
                        "or <data dir>/targets)",
                        source=str(directory),
                    )
                for path in _profile_files(directory):
                    self._add(targets, load_profile_file(path), path)
            for name, target in self._registered.items():
                targets.setdefault(name, target)
            self._targets = targets
            return self

    @staticmethod
    def _add(targets: dict[str, HardwareTarget], target: HardwareTarget, path: Path) -> None:
        if target.name in targets:
            raise TargetExistsError(
                f"{path}: name: target {target.name!r} is already defined by {targets[target.name].source}",
                source=str(path),
                field="name",
            )
        targets[target.name] = target

    def _loaded(self) -> dict[str, HardwareTarget]:
        with self._lock:
            if self._targets is None:
                self.load()
            assert self._targets is not None
            return self._targets

    def reset(self) -> None:
        """Forget extra directories and registrations; the next use loads again (for tests)."""
        with self._lock:
            self._targets, self._extra_dirs, self._registered = None, [], {}

    # ---- Mapping -----------------------------------------------------------------------
    def __getitem__(self, name: str) -> HardwareTarget:
        return self._loaded()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._loaded()))

    def __len__(self) -> int:
        return len(self._loaded())

    def __repr__(self) -> str:
        return f"TargetRegistry({list(self)})"

    # ---- lookups and additions ---------------------------------------------------------
    def lookup(self, name: str) -> HardwareTarget:
        """The target called ``name``; re-reads the sources once before giving up."""
        with self._lock:
            if name not in self._loaded():
                self.load()  # a profile file may have been added since
            try:
                return self._loaded()[name]
            except KeyError:
                raise KeyError(
                    f"unknown hardware target {name!r}; known targets: {', '.join(self._loaded())}"
                ) from None

    def register(
        self, profile: Mapping[str, Any] | TargetProfile, *, directory: str | Path | None = None
    ) -> HardwareTarget:
        """Validate and add a profile; with ``directory`` also write it there as ``<name>.yaml``."""
        target = HardwareTarget.from_profile(profile, source="registered")
        with self._lock:
            known = self._loaded()
            if target.name in known:
                raise TargetExistsError(
                    f"name: target {target.name!r} already exists ({known[target.name].source})", field="name"
                )
            if directory is None:
                self._registered[target.name] = target
            else:
                directory = Path(directory)
                path = _write_exclusive(directory / f"{target.name}.yaml", profile_yaml(target))
                target = replace(target, source=str(path))
                if directory.resolve() not in {d.resolve() for d in self.directories()}:
                    self._extra_dirs.append(directory)
            known[target.name] = target
            return target


def _write_exclusive(path: Path, text: str) -> Path:
    """Write ``path`` atomically, failing with ``TargetExistsError`` if it is already there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    try:
        os.link(tmp, path)  # atomic, and refuses to replace an existing file
    except FileExistsError:
        raise TargetExistsError(f"name: {path} already exists", source=str(path), field="name") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


TARGETS = TargetRegistry()


def load_targets(*extra_dirs: str | Path) -> TargetRegistry:
    """Re-read every profile source into ``TARGETS`` (see ``TargetRegistry.load``) and return it."""
    return TARGETS.load(*extra_dirs)


def register_target(
    profile: Mapping[str, Any] | TargetProfile, *, directory: str | Path | None = None
) -> HardwareTarget:
    """Add a user profile to ``TARGETS`` (validated; ``TargetExistsError`` if the name is taken)."""
    return TARGETS.register(profile, directory=directory)


def get_target(name: str | HardwareTarget) -> HardwareTarget:
    """Look a target up by name, failing with the list of known names; a target passes through."""
    if isinstance(name, HardwareTarget):
        return name
    return TARGETS.lookup(name)


def is_native(target: HardwareTarget, cpu: Mapping[str, Any]) -> bool:
    """True when measuring ``target`` on this CPU needs no emulation.

    ``native`` (or any profile with neither an ISA cap nor a microarchitecture) is the host
    itself; any other profile is native on a host of the microarchitecture it stands for, so a
    worker on a real Ice Lake measures ``icelake`` natively.
    """
    stands_for = target.stands_for
    return stands_for is None or cpu.get("microarchitecture") == stands_for


def native_target(cpu: Mapping[str, Any], targets: Mapping[str, HardwareTarget] | None = None) -> str:
    """The first profile that stands for this CPU (a real Ice Lake: ``icelake``); else ``native``."""
    for target in (TARGETS if targets is None else targets).values():
        if target.stands_for is not None and is_native(target, cpu):
            return target.name
    return "native"
