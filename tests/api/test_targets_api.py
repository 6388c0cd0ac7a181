"""/api/v1/targets on a minimal app (just this router and ``app.state.settings``: no Ray, no coordinator)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.routes import targets as targets_route
from nas.config import Settings
from targets import TARGETS, get_target

PROFILE = {
    "name": "icelake-16c",
    "description": "c6i.8xlarge",
    "microarchitecture": "icelake",
    "isa": "AVX512_CORE_VNNI",
    "cores": 16,
    "threads": 16,
    "streams": 4,
    "seq_len": 256,
    "scenarios": {"single_stream": {"batch": 1}, "offline": {"batch": 64}},
}


def make_app(data_dir: Path, **settings) -> FastAPI:
    app = FastAPI()
    app.state.settings = Settings(data_dir=data_dir, **settings)
    app.include_router(targets_route.router)
    return app


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HWNAS_TARGETS_DIR", raising=False)
    TARGETS.reset()
    with TestClient(make_app(tmp_path)) as c:  # runs the router's lifespan
        yield c
    TARGETS.reset()


def test_list_builtins_and_host(client: TestClient):
    body = client.get("/api/v1/targets").raise_for_status().json()
    names = [t["name"] for t in body["targets"]]
    assert names == ["native", "cascadelake", "deepsparse", "icelake", "sapphirerapids"]
    clx = body["targets"][1]
    assert (clx["isa"], clx["cores"], clx["threads"], clx["seq_len"], clx["source"]) == (
        "AVX512_CORE_VNNI", 4, 4, 384, "builtin",
    )
    assert clx["scenarios"] == {"single_stream": {"batch": 1}, "offline": {"batch": 16}}
    assert body["targets"][0]["native_here"] is True
    host = body["host"]
    assert host["microarchitecture"] and host["logical_cpus"] >= 1 and host["native_target"] in names


def test_post_persists_registers_and_conflicts(client: TestClient, tmp_path: Path):
    r = client.post("/api/v1/targets", json=PROFILE)
    assert r.status_code == 201, r.text
    path = tmp_path / "targets" / "icelake-16c.yaml"
    assert r.json()["source"] == str(path) and r.json()["threads"] == 16
    assert yaml.safe_load(path.read_text()) == PROFILE
    assert get_target("icelake-16c").throughput_batch == 64  # what job validation and workers look up
    listed = client.get("/api/v1/targets").json()
    assert [t["name"] for t in listed["targets"]][-1] == "icelake-16c"
    assert str(tmp_path / "targets") in listed["targets_dirs"]
    assert client.post("/api/v1/targets", json=PROFILE).status_code == 409
    assert client.post("/api/v1/targets", json={"name": "cascadelake"}).status_code == 409


def test_profiles_survive_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HWNAS_TARGETS_DIR", raising=False)
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "mine.yaml").write_text(yaml.safe_dump(PROFILE))
    TARGETS.reset()
    try:
        with TestClient(make_app(tmp_path)):
            assert "icelake-16c" in TARGETS  # loaded at start-up, before any request
    finally:
        TARGETS.reset()


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"isa": "AVX9000"}, ["body", "isa"]),
        ({"threads": 0}, ["body", "threads"]),
        ({"name": "Has Spaces"}, ["body", "name"]),
        ({"hyperthreads": True}, ["body", "hyperthreads"]),
        ({"scenarios": {"offline": {"batch": 0}}}, ["body", "scenarios", "offline", "batch"]),
    ],
)
def test_post_422_names_the_field(client: TestClient, tmp_path: Path, change, loc):
    r = client.post("/api/v1/targets", json={**PROFILE, **change})
    assert r.status_code == 422
    assert [d["loc"] for d in r.json()["detail"]] == [loc]
    assert not (tmp_path / "targets" / "icelake-16c.yaml").exists()


def test_bad_file_on_disk_is_reported(client: TestClient, tmp_path: Path):
    d = tmp_path / "targets"
    d.mkdir(exist_ok=True)
    (d / "oops.yaml").write_text("name: oops\nisa: NEON\n")
    r = client.get("/api/v1/targets")
    assert r.status_code == 500 and "oops.yaml" in r.json()["detail"] and "isa" in r.json()["detail"]


def test_auth_is_required_when_on(tmp_path: Path):
    TARGETS.reset()
    try:
        with TestClient(make_app(tmp_path, auth="required")) as c:
            assert c.get("/api/v1/targets").status_code == 401
            assert c.post("/api/v1/targets", json=PROFILE).status_code == 401
        assert not (tmp_path / "targets").exists()
    finally:
        TARGETS.reset()
