"""Where trials' files live, by name: one directory per trial under a root that every Ray node mounts.

A store decides the layout (``<root>/<job>/<trial-N | baseline-P | trial-N-refined>``), checks
that what a worker built is visible to the coordinator, links a reused trial's files, zips a
trial for download and removes a deleted job's files. ``ARTIFACT_STORES`` is its registry (a
shared filesystem path today; an object store would be one more module and one more line), and
``tests/store/test_artifact_store_conformance.py`` runs the same checks on every entry.
"""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from pathlib import Path

from core.artifacts import IR_FILES, ArtifactError, model_zip
from core.registry import load_entry


class ArtifactsNotShared(RuntimeError):
    """A worker's IR is not visible to the coordinator: the artifact store is not a shared path."""


class ArtifactStore(ABC):
    """The narrow interface every artifact store offers the coordinator and the API."""

    root: Path

    @abstractmethod
    def trial_dir(self, job_id: str, name: str) -> Path:
        """The directory of one trial (``name``: ``trial-7``, ``baseline-int8``, ``trial-7-refined``)."""

    @abstractmethod
    def check_built(self, directory: str | Path) -> None:
        """Raise ``ArtifactsNotShared`` naming the missing files if a build's IR is not visible here."""

    @abstractmethod
    def link(self, source: str | Path, dest: str | Path, names: list[str]) -> None:
        """Make the named files of ``source`` (another trial's) part of ``dest`` without copying where possible."""

    @abstractmethod
    def model_zip(self, artifact_dir: str | Path, checksums: dict[str, str] | None = None) -> tuple[Path, str]:
        """(zip path, sha256) of a trial, built once; ``ArtifactError`` outside the store or incomplete."""

    @abstractmethod
    def remove_job(self, job_id: str) -> None:
        """Delete every file of a job (its rows are gone already)."""


class LocalArtifactStore(ArtifactStore):
    """A directory on a path that every node mounts at the same place (``HWNAS_DATA_DIR/artifacts``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def trial_dir(self, job_id: str, name: str) -> Path:
        if not job_id or "/" in job_id or "/" in name or name in ("", ".", ".."):
            raise ArtifactError(f"invalid artifact name {job_id!r}/{name!r}")
        return self.root / job_id / name

    def check_built(self, directory: str | Path) -> None:
        out = Path(directory)
        missing = [name for name in IR_FILES if not (out / name).is_file()]
        if missing:
            raise ArtifactsNotShared(
                f"the build reported success but {', '.join(missing)} is missing from {out} as the coordinator "
                "sees it: every Ray node must mount the service's data directory (HWNAS_DATA_DIR, holding "
                "artifacts/) at the same path as the coordinator"
            )

    def link(self, source: str | Path, dest: str | Path, names: list[str]) -> None:
        """Hard-link (else copy) the named files: deleting the first job keeps the second one's."""
        out = Path(dest)
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            src, dst = Path(source) / name, out / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.exists():
                dst.unlink()
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

    def model_zip(self, artifact_dir: str | Path, checksums: dict[str, str] | None = None) -> tuple[Path, str]:
        return model_zip(artifact_dir, self.root, checksums)

    def remove_job(self, job_id: str) -> None:
        shutil.rmtree(self.trial_dir(job_id, "x").parent, ignore_errors=True)


ARTIFACT_STORES: dict[str, str] = {
    "local": "core.artifact_store:LocalArtifactStore",
}


def make_artifact_store(kind: str, root: str | Path) -> ArtifactStore:
    """An artifact store by registry name; ``ValueError`` lists the known ones."""
    return load_entry(ARTIFACT_STORES, kind, attr="", kind=ArtifactStore, what="artifact store")(root)  # type: ignore[operator]
