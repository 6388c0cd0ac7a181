"""The downloadable model: a zip of one trial's IR directory, built once, checksummed, confined to the store."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

ZIP_NAME = "model.zip"
MODEL_CARD = "model_card.json"
# optimum-intel's OVModelForQuestionAnswering layout (what a build writes), plus our model card (the join's).
IR_FILES = ("openvino_model.xml", "openvino_model.bin", "config.json")
REQUIRED = IR_FILES + (MODEL_CARD,)


class ArtifactError(LookupError):
    pass


class ArtifactCorrupted(ArtifactError):
    pass


def _inside(path: Path, root: Path) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ArtifactError(f"artifact path {path} is outside the artifact store")
    return resolved


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(directory: Path, checksums: dict[str, str]) -> None:
    """Raise ``ArtifactError`` naming every file whose content no longer matches its recorded sha256."""
    bad = [name for name, digest in checksums.items() if not (directory / name).is_file() or sha256_of(directory / name) != digest]
    if bad:
        raise ArtifactCorrupted(f"artifact {directory.name}: {', '.join(bad)} missing or corrupted (checksum mismatch)")


def model_zip(artifact_dir: str | Path, root: Path, checksums: dict[str, str] | None = None) -> tuple[Path, str]:
    """Return (zip path, sha256), writing the zip atomically the first time it is asked for,
    after checking the files against ``checksums`` (recorded when the trial finished)."""
    directory = _inside(Path(artifact_dir), root)
    missing = [n for n in REQUIRED if not (directory / n).is_file()]
    if missing:
        raise ArtifactError(f"artifact {directory.name} lacks {', '.join(missing)}")
    target = directory / ZIP_NAME
    if not target.is_file():
        if checksums:
            verify(directory, checksums)
        tmp = directory / f".{ZIP_NAME}.{os.getpid()}.partial"
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(directory.iterdir()):
                if f.is_file() and f.name != ZIP_NAME and not f.name.startswith("."):
                    zf.write(f, f.name)
        os.replace(tmp, target)
    return target, sha256_of(target)
