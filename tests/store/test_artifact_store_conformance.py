"""One suite for every artifact store in ``core.artifact_store.ARTIFACT_STORES``: a new store passes it or is not added."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from core.artifact_store import ARTIFACT_STORES, ArtifactsNotShared, ArtifactStore, make_artifact_store
from core.artifacts import IR_FILES, MODEL_CARD, REQUIRED, ArtifactCorrupted, ArtifactError, sha256_of


@pytest.fixture(params=sorted(ARTIFACT_STORES))
def store(request, tmp_path: Path) -> ArtifactStore:  # type: ignore[no-untyped-def]
    return make_artifact_store(request.param, tmp_path / "artifacts")


def _trial(store: ArtifactStore, job: str = "job1", name: str = "trial-0", *, card: bool = True) -> Path:
    d = store.trial_dir(job, name)
    d.mkdir(parents=True)
    for f in IR_FILES:
        (d / f).write_bytes(f"{f} of {job}/{name}".encode())
    if card:
        (d / MODEL_CARD).write_text("{}")
    return d


def test_layout_is_one_directory_per_trial_under_the_root(store: ArtifactStore) -> None:
    d = store.trial_dir("job1", "trial-3")
    assert d.is_relative_to(store.root) and d.name == "trial-3" and d.parent.name == "job1"
    assert store.trial_dir("job1", "baseline-int8") != store.trial_dir("job2", "baseline-int8")
    for bad in ("", "..", "a/b"):
        with pytest.raises(ArtifactError):
            store.trial_dir("job1", bad)
    with pytest.raises(ArtifactError):
        store.trial_dir("../elsewhere", "trial-0")


def test_check_built_names_every_missing_ir_file(store: ArtifactStore) -> None:
    d = _trial(store, card=False)
    store.check_built(d)  # the model card is the join's, not the build's
    (d / "openvino_model.bin").unlink()
    (d / "config.json").unlink()
    with pytest.raises(ArtifactsNotShared, match="openvino_model.bin, config.json is missing") as err:
        store.check_built(d)
    assert "HWNAS_DATA_DIR" in str(err.value)


def test_linked_files_survive_the_source_job(store: ArtifactStore) -> None:
    src = _trial(store, "job1", "trial-0")
    dest = store.trial_dir("job2", "trial-5")
    store.link(src, dest, list(REQUIRED))
    store.remove_job("job1")
    assert not src.exists()
    assert sorted(p.name for p in dest.iterdir()) == sorted(REQUIRED)
    assert (dest / "openvino_model.xml").read_bytes() == b"openvino_model.xml of job1/trial-0"


def test_zip_is_built_once_checked_and_confined_to_the_store(store: ArtifactStore, tmp_path: Path) -> None:
    d = _trial(store)
    sums = {f: sha256_of(d / f) for f in REQUIRED}
    path, digest = store.model_zip(d, sums)
    assert digest == sha256_of(path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted(REQUIRED)
    assert store.model_zip(d, sums) == (path, digest)  # the same file again, not rebuilt

    other = _trial(store, name="trial-1")
    (other / "openvino_model.bin").write_bytes(b"tampered")
    with pytest.raises(ArtifactCorrupted, match="openvino_model.bin"):
        store.model_zip(other, sums | {"openvino_model.bin": sums["openvino_model.bin"]})
    (other / MODEL_CARD).unlink()
    with pytest.raises(ArtifactError, match="lacks model_card.json"):
        store.model_zip(other)
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(ArtifactError, match="outside the artifact store"):
        store.model_zip(outside)


def test_unknown_store_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown artifact store 's3'.*known: local"):
        make_artifact_store("s3", tmp_path)
