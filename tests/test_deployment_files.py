"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine); check what can be checked."""

from __future__ import annotations

from pathlib import Path

import yaml

from cli.main import build_parser, load_spec_file
from nas.spec import JobSpec

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _ray_cli(argv: list[str]):  # type: ignore[no-untyped-def]
    """Parse ``ray <sub> ...`` with Ray's own click command (nothing runs)."""
    from ray.scripts.scripts import cli

    assert argv[0] == "ray"
    sub = cli.commands[argv[1]]
    return sub.make_context(f"ray {argv[1]}", list(argv[2:]))


def test_compose_file_parses_and_runs_real_cli_commands() -> None:
    services = _compose()["services"]
    assert {"postgres", "ray-head", "api", "worker-cascadelake", "worker-icelake"} <= set(services)
    for name, svc in services.items():
        assert "healthcheck" in svc, f"{name} has no health check"
    cmd = services["api"]["command"]
    assert cmd[0] == "hwnas"
    args = build_parser().parse_args(cmd[1:])
    assert args.command == "serve" and args.db.startswith("postgresql+psycopg://") and args.ray_address == "ray-head:6379"
    head = _ray_cli(services["ray-head"]["command"])
    assert services["ray-head"]["command"][:3] == ["ray", "start", "--head"]
    assert head.params["head"] and head.params["port"] == 6379 and head.params["block"]
    for name, svc in services.items():  # health checks that call ray use Ray's real CLI too
        test = svc["healthcheck"]["test"]
        if test[1] == "ray":
            _ray_cli(test[1:])


def test_one_worker_per_target_joins_the_head_with_the_shared_artifacts() -> None:
    from targets import TARGETS

    services = _compose()["services"]
    api = services["api"]
    data_dir = api["environment"]["HWNAS_DATA_DIR"]
    assert f"artifacts:{data_dir}" in api["volumes"]
    served = []
    for name, svc in services.items():
        cmd = svc.get("command", [])
        if cmd[:2] != ["hwnas", "worker"]:
            continue
        args = build_parser().parse_args(cmd[1:])
        assert args.command == "worker" and args.address == "ray-head:6379"
        assert all(t in TARGETS for t in args.target), args.target
        served += args.target
        assert f"artifacts:{data_dir}" in svc["volumes"], f"{name} must mount the artifacts volume where the API does"
        assert svc["environment"]["HWNAS_DATA_DIR"] == data_dir
    assert sorted(served) == ["cascadelake", "icelake"]
    for name in ("ray-head", "api", "worker-cascadelake", "worker-icelake"):
        env = services[name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token" and "RAY_AUTH_TOKEN" in env, f"{name}: Ray token auth"


def test_every_hwnas_command_in_the_deployment_has_help() -> None:
    """``hwnas <cmd> --help`` of the real entry point, for each command the compose file runs."""
    import subprocess
    import sys

    commands = {svc["command"][1] for svc in _compose()["services"].values() if svc.get("command", [""])[0] == "hwnas"}
    assert commands == {"serve", "worker"}
    hwnas = Path(sys.executable).with_name("hwnas")
    for command in sorted(commands):
        out = subprocess.run([str(hwnas), command, "--help"], capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0 and f"usage: hwnas {command}" in out.stdout, out.stderr


def test_dockerfile_installs_the_way_the_readme_does() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "requirements.lock" in text and "pip install --no-cache-dir --no-deps ." in text
    import tomllib

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = [p.rstrip("*") for p in include]
    assert {"core", "targets", "nas", "search_spaces", "workers", "api", "cli"} <= set(packages)
    for package in packages:  # every package the wheel holds, or the image's `pip install .` leaves one out
        assert f"COPY {package} ./{package}" in text
    readme = (ROOT / "README.md").read_text()
    assert "pip install -r requirements.lock" in readme and "make demo" in readme and "make test" in readme


def test_example_spec_is_a_valid_job() -> None:
    spec = JobSpec.model_validate(load_spec_file(ROOT / "examples" / "minilm-squad.yaml"))
    assert spec.base_model == "minilm" and spec.targets == ["native"]


def test_torch_is_pinned_exactly() -> None:
    assert "torch==2.13.0" in (ROOT / "pyproject.toml").read_text()
    assert "torch==2.13.0\n" in (ROOT / "requirements.lock").read_text()
