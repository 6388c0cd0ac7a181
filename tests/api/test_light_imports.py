"""The web service runs without the heavy frameworks: serving a request loads no torch, OpenVINO, NNCF or Ray.

import-linter holds the API's own imports (pyproject.toml); this holds what actually gets loaded,
through every indirect path, while the app starts and answers (the coordinator in its own process).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "openvino", "nncf", "ray", "transformers", "optimum")

SCRIPT = """
import json, sys
from fastapi.testclient import TestClient
from api.main import create_app
from nas.config import Settings
app = create_app(Settings(data_dir=sys.argv[1], coordinator="external"))
with TestClient(app) as client:
    assert client.get("/api/v1/health").status_code == 200
    assert client.get("/api/v1/jobs").status_code == 200
    assert client.get("/api/v1/targets").status_code == 200
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_serving_the_api_loads_no_heavy_framework(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "fastapi" in loaded and "api" in loaded  # the check saw the app's own modules
    assert not loaded & set(HEAVY), f"the API process loaded {sorted(loaded & set(HEAVY))}"
