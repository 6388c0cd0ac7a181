"""Every example job spec in examples/ is accepted, files and all, as `hwnas submit` would send it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cli.main import load_spec_file
from nas.config import Settings
from nas.spec import JobSpec
from nas.validation import validate_job

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_spec_is_valid(path: Path, monkeypatch, tmp_path, squad_files) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)  # the examples name the shared data relative to the project root
    spec = JobSpec.model_validate(load_spec_file(path))
    assert validate_job(spec, Settings(data_dir=tmp_path)) is False  # real SQuAD data, not synthetic
    assert yaml.safe_load(path.read_text())["name"] == spec.name
