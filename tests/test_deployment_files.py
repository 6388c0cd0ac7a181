"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine); check what can be checked."""

from __future__ import annotations

from pathlib import Path

import yaml

from api.cli import build_parser, load_spec_file
from nas.spec import JobSpec

ROOT = Path(__file__).resolve().parents[1]


def test_compose_file_parses_and_runs_real_cli_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "ray-head", "api"} <= set(services)
    for name, svc in services.items():
        assert "healthcheck" in svc, f"{name} has no health check"
    cmd = services["api"]["command"]
    assert cmd[0] == "hwnas"
    args = build_parser().parse_args(cmd[1:])
    assert args.command == "serve" and args.db.startswith("postgresql+psycopg://") and args.ray_address == "ray-head:6379"
    assert services["ray-head"]["command"][:3] == ["ray", "start", "--head"]


def test_dockerfile_installs_the_way_the_readme_does() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "requirements.lock" in text and "pip install --no-cache-dir --no-deps ." in text
    readme = (ROOT / "README.md").read_text()
    assert "pip install -r requirements.lock" in readme and "make demo" in readme and "make test" in readme


def test_example_spec_is_a_valid_job() -> None:
    spec = JobSpec.model_validate(load_spec_file(ROOT / "examples" / "minilm-squad.yaml"))
    assert spec.base_model == "minilm" and spec.targets == ["native"]


def test_torch_is_pinned_exactly() -> None:
    assert "torch==2.13.0" in (ROOT / "pyproject.toml").read_text()
    assert "torch==2.13.0\n" in (ROOT / "requirements.lock").read_text()
