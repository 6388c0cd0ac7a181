"""POST /api/v1/jobs without (all of) search_space: filled from the packaged MiniLM's config and stored so.

The app runs with ``coordinator="external"`` (no Ray, nothing searches): these tests read the stored spec back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from nas.config import Settings

# all-MiniLM-L6-v2: 6 layers, 12 heads, hidden 384, intermediate 1536
MINILM = {"layers": [2, 3, 4, 5, 6], "heads": [1, 2, 3, 4, 6, 12], "ffn": [384, 768, 1152, 1536]}
CONTEXT = "Paris is the capital of France. The Seine flows through Paris."
SQUAD = {"data": [{"title": "Paris", "paragraphs": [{"context": CONTEXT, "qas": [
    {"id": "q1", "question": "What is the capital of France?", "answers": [{"text": "Paris", "answer_start": 0}]},
]}]}]}  # fmt: skip


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("spec-defaults")
    with TestClient(create_app(Settings(data_dir=data_dir, coordinator="external"))) as c:
        yield c


@pytest.fixture(scope="module")
def squad_file(client: TestClient) -> str:
    path = client.app.state.settings.data_dir / "squad.json"  # type: ignore[attr-defined]
    path.write_text(json.dumps(SQUAD))
    return str(path)


def _spec(squad_file: str, **fields: Any) -> dict[str, Any]:
    task = {"train_file": squad_file, "eval_file": squad_file, "max_seq_length": 64, "doc_stride": 16}
    return {"base_model": "minilm", "task": task, "budget": {"trials": 1}, **fields}


def _stored_space(client: TestClient, spec: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/api/v1/jobs", json=spec)
    assert r.status_code == 201, r.text
    return client.get(f"/api/v1/jobs/{r.json()['id']}").raise_for_status().json()["spec"]["search_space"]


def test_no_search_space_stores_the_base_models_full_choices(client: TestClient, squad_file: str) -> None:
    space = _stored_space(client, _spec(squad_file))
    assert {k: space[k] for k in MINILM} == MINILM
    assert (space["hidden"], space["per_layer"], space["layer_selection"]) == (None, False, "spread")


def test_only_layers_given_keeps_them(client: TestClient, squad_file: str) -> None:
    space = _stored_space(client, _spec(squad_file, search_space={"layers": {"min": 2, "max": 6, "step": 2}}))
    assert {k: space[k] for k in MINILM} == {**MINILM, "layers": [2, 4, 6]}


def test_only_heads_given_keeps_them(client: TestClient, squad_file: str) -> None:
    space = _stored_space(client, _spec(squad_file, search_space={"heads": [12, 6], "per_layer": True}))
    assert {k: space[k] for k in MINILM} == {**MINILM, "heads": [6, 12]} and space["per_layer"] is True


def _refused(client: TestClient, spec: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/api/v1/jobs", json=spec)
    assert r.status_code == 422, r.text
    return r.json()["detail"][0]


def test_a_partly_given_space_the_base_cannot_host_is_refused(client: TestClient, squad_file: str) -> None:
    err = _refused(client, _spec(squad_file, search_space={"heads": [6, 13]}))
    assert err["loc"] == ["body", "search_space"] and "13 exceeds the base model's 12 heads" in err["msg"]


def test_a_grid_too_large_once_filled_is_refused(client: TestClient, squad_file: str) -> None:
    err = _refused(client, _spec(squad_file, sampler="grid", search_space={"per_layer": True}))
    assert err["loc"] == ["body", "search_space"] and "sampler 'grid' enumerates the space" in err["msg"]


def test_an_unknown_base_model_is_refused_naming_it(client: TestClient, squad_file: str, tmp_path: Path) -> None:
    err = _refused(client, {**_spec(squad_file), "base_model": str(tmp_path / "no-model")})
    assert err["loc"] == ["body", "base_model"] and "neither a registered model" in err["msg"]


def test_deployment_precisions_are_stored_and_bad_ones_named(client: TestClient, squad_file: str) -> None:
    """``deployment.inference_precisions`` (f32, bf16) and the bf16 F1 bar: defaults stored; a precision
    OpenVINO has no hint for, one listed twice, an empty list or a negative bar is refused by name."""
    r = client.post("/api/v1/jobs", json=_spec(squad_file))
    assert r.status_code == 201, r.text
    stored = client.get(f"/api/v1/jobs/{r.json()['id']}").raise_for_status().json()["spec"]["deployment"]
    assert stored["inference_precisions"] == ["f32"] and stored["bf16_max_f1_drop"] == 0.5  # bf16: opt-in
    err = _refused(client, _spec(squad_file, deployment={"inference_precisions": ["f32", "fp16"]}))
    assert err["loc"] == ["body", "deployment", "inference_precisions", 1] and "'f32' or 'bf16'" in err["msg"]
    err = _refused(client, _spec(squad_file, deployment={"inference_precisions": ["bf16", "bf16"]}))
    assert err["loc"] == ["body", "deployment", "inference_precisions"] and "lists one twice: ['bf16', 'bf16']" in err["msg"]
    err = _refused(client, _spec(squad_file, deployment={"inference_precisions": []}))
    assert err["loc"] == ["body", "deployment", "inference_precisions"]
    err = _refused(client, _spec(squad_file, deployment={"bf16_max_f1_drop": -1}))
    assert err["loc"] == ["body", "deployment", "bf16_max_f1_drop"] and "greater than or equal to 0" in err["msg"]
