"""The layers written down in pyproject.toml ([tool.importlinter]) hold, and a forbidden import breaks them.

``make test`` runs ``lint-imports`` first; these tests show that the contracts are not vacuous:
each deliberate violation below, made in a copy of the tree, is reported by the contract it breaks.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "targets", "search_spaces", "workers", "nas", "api", "cli", "bench")
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(LINT.parent), "PYTHONPATH": str(cwd), "HOME": str(cwd)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_tree_keeps_every_contract() -> None:
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout[-4000:]
    assert "0 broken" in out.stdout or " broken" not in out.stdout.split("Contracts:")[-1]


@pytest.mark.parametrize(
    ("module", "line", "contract", "named"),
    [
        ("core/types.py", "from nas.store import repo", "The ground floor imports nothing of the project", "core.types -> nas.store"),
        ("workers/export.py", "from nas.store import repo", "Layers", "workers.export -> nas.store"),
        ("nas/stages/search.py", "from workers.pipeline import finalize", "The coordinator reaches workers only through", "nas.stages.search -> workers.pipeline"),
        ("api/routes/health.py", "import torch", "The web service imports no torch", "api.routes.health -> torch"),
        ("nas/dedupe.py", "from nas.stages import search", "No import cycles inside a package", ".stages -> .dedupe"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, line: str, contract: str, named: str) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # deliberately forbidden\n")
    out = _lint(tmp_path)
    assert out.returncode != 0, out.stdout[-3000:]
    broken = out.stdout.split("Broken contracts")[-1]
    assert contract in broken and named in broken, out.stdout[-3000:]
