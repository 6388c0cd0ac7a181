"""``hwnas worker`` without a cluster: the native/emulated check, the node's resources, the ray start command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from targets import check_target
from workers.node import plan_worker, ray_auth_env

ICELAKE_HOST = {"microarchitecture": "icelake", "model_name": "Intel Xeon Platinum 8375C", "flags": ["avx2", "avx512f", "avx512_vnni"], "logical_cpus": 8}
ZEN3_HOST = {"microarchitecture": "zen3", "model_name": "AMD EPYC 7R13", "flags": ["avx2"], "logical_cpus": 8}
HWNAS = str(Path(sys.executable).with_name("hwnas"))


def test_a_real_icelake_measures_icelake_natively_and_cascadelake_emulated() -> None:
    assert check_target("icelake", ICELAKE_HOST).native
    cascade = check_target("cascadelake", ICELAKE_HOST)
    assert not cascade.native and cascade.isa == "AVX512_CORE_VNNI" and "emulated" in cascade.describe()


def test_a_cap_above_the_host_isa_is_called_out() -> None:
    check = check_target("icelake", ZEN3_HOST)
    assert not check.native and "lacks" in check.note and "avx512_vnni" in check.note


def test_plan_declares_the_target_slot_and_blocks(tmp_path: Path) -> None:
    plan = plan_worker("head:6379", ["icelake"], num_cpus=4, data_dir=tmp_path, cpu=ICELAKE_HOST, environ={})
    assert plan.resources == {"hw:icelake": 1.0} and plan.num_cpus == 4
    cmd = plan.command
    assert cmd[1:3] == ["start", "--address=head:6379"] and "--num-cpus=4" in cmd and "--block" in cmd
    resources = json.loads(next(a for a in cmd if a.startswith("--resources=")).split("=", 1)[1])
    assert resources == {"hw:icelake": 1}
    assert plan.env["HWNAS_TARGETS_DIR"] == str((tmp_path / "targets").resolve())
    # the command parses with Ray's own CLI
    from ray.scripts.scripts import cli

    ctx = cli.commands["start"].make_context("ray start", cmd[2:])
    assert ctx.params["address"] == "head:6379" and ctx.params["block"]


def test_token_in_the_environment_turns_on_token_mode() -> None:
    assert ray_auth_env({"RAY_AUTH_TOKEN": "x"}) == {"RAY_AUTH_MODE": "token"}
    assert ray_auth_env({"RAY_AUTH_TOKEN_PATH": "/t"}) == {"RAY_AUTH_MODE": "token"}
    assert ray_auth_env({"RAY_AUTH_TOKEN": "x", "RAY_AUTH_MODE": "disabled"}) == {}
    assert ray_auth_env({}) == {}


def test_cli_dry_run_and_unknown_target(tmp_path: Path) -> None:
    out = subprocess.run(
        [HWNAS, "worker", "--address", "10.0.0.1:6379", "--target", "cascadelake", "--num-cpus", "2", "--data-dir", str(tmp_path),
         "--json", "--dry-run", "--", "--object-store-memory=100000000"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["resources"] == {"hw:cascadelake": 1.0} and plan["command"][-1] == "--object-store-memory=100000000"
    assert plan["targets"][0]["target"] == "cascadelake" and isinstance(plan["targets"][0]["native"], bool)
    bad = subprocess.run([HWNAS, "worker", "--address", "h:1", "--target", "pentium", "--dry-run"], capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "pentium" in bad.stderr and "icelake" in bad.stderr


@pytest.mark.parametrize("num_cpus", [0])
def test_a_worker_needs_cpus(num_cpus: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan_worker("h:1", ["icelake"], num_cpus=num_cpus, cpu=ICELAKE_HOST, environ={})
