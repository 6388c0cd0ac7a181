"""Hardware target profiles as data: built-in YAML files, a user directory, run-time registrations.

A profile names a CPU to measure for and how: the oneDNN ISA cap that emulates it on another
host, the cores/threads and throughput streams a deployment uses, and the sequence length and
batch sizes of its two scenarios (SingleStream latency, Offline throughput). Built-in profiles
are ``targets/profiles/*.yaml``; users add their own without code, as YAML files in the
directory named by ``HWNAS_TARGETS_DIR`` (several may be joined with ``os.pathsep``), through
``register_target(profile_dict)``, or through ``POST /api/v1/targets``.

Nothing is read at import time: ``TARGETS`` loads itself on first use, and ``load_targets()``
re-reads the built-ins, ``HWNAS_TARGETS_DIR`` (read at that call) and any extra directories.
What a profile may hold is ``targets.profile_schema``; one target and its file form,
``targets.hardware_target``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from targets.hardware_target import BUILTIN, HardwareTarget, is_native, load_profile_file, profile_yaml
from targets.profile_schema import TargetExistsError, TargetProfile, TargetProfileError

TARGETS_DIR_ENV = "HWNAS_TARGETS_DIR"
BUILTIN_DIR = Path(__file__).resolve().parent / "profiles"
PROFILE_SUFFIXES = (".yaml", ".yml")


def _profile_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in PROFILE_SUFFIXES)


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


def native_target(cpu: Mapping[str, Any], targets: Mapping[str, HardwareTarget] | None = None) -> str:
    """The first profile that stands for this CPU (a real Ice Lake: ``icelake``); else ``native``."""
    for target in (TARGETS if targets is None else targets).values():
        if target.stands_for is not None and is_native(target, cpu):
            return target.name
    return "native"
