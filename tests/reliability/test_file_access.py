"""Safe by default: with tokens required, job specs read files only under the data directory and
HWNAS_DATA_ROOTS, and a refusal never tells whether a file outside them exists.

The app runs in-process (TestClient, coordinator "external": no Ray, nothing runs the jobs);
the spec documents come from tests/data/test_validation.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from nas.config import Settings
from nas.store.db import make_engine, session_factory, upgrade
from nas.store.tokens import create_token
from nas.validation import validate_job
from tests.data.test_validation import _doc, _spec

MISSING = "no-such-file.json"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """data_dir, one data root, and a directory outside both; each holds a valid SQuAD file."""
    base = tmp_path_factory.mktemp("file-access")
    out = {name: base / name for name in ("data", "root", "outside")}
    for d in out.values():
        d.mkdir()
        (d / "good.json").write_text(json.dumps(_doc()))
    (out["data"] / "datasets").mkdir()
    (out["data"] / "datasets" / "squad-train.json").write_text(json.dumps(_doc()))
    (out["root"] / "link.json").symlink_to(out["outside"] / "good.json")
    (out["root"] / "linked-dir").symlink_to(out["outside"], target_is_directory=True)
    model = out["outside"] / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return out


@pytest.fixture(scope="module")
def api(dirs: dict[str, Path]) -> Any:
    """A TestClient over an app that requires tokens, with a write token in its headers."""
    settings = Settings(data_dir=dirs["data"], data_roots=[dirs["root"]], auth="required", coordinator="external")
    upgrade(settings.resolved_db_url())
    with session_factory(make_engine(settings.resolved_db_url())).begin() as s:
        token = create_token(s, scope="write", name="w")
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def _post(api: TestClient, train: str | Path, evalf: str | Path | None = None, **spec: Any) -> Any:
    body = _spec(str(train), str(evalf or train)).model_dump(mode="json") | spec
    return api.post("/api/v1/jobs", json=body)


def _refusal(response: Any, loc: list[str]) -> str:
    """The one 422 message for ``loc``; it must list every allowed root and leak nothing about the file."""
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", *loc]
    msg = error["msg"]
    assert "outside the allowed data directories" in msg
    assert all(word not in msg for word in ("JSON", "does not exist", "not a file", "config.json")), msg
    return msg


def _roots(dirs: dict[str, Path]) -> list[str]:
    return [str(dirs["data"].resolve()), str(dirs["root"].resolve())]


def test_shadow_is_refused_and_existence_is_not_revealed(api: TestClient, dirs: dict[str, Path]) -> None:
    paths = ["/etc/shadow", "/etc/" + MISSING, str(dirs["outside"] / "good.json"), str(dirs["outside"] / MISSING)]
    messages = [_refusal(_post(api, p, dirs["root"] / "good.json"), ["task", "train_file"]) for p in paths]
    assert all(root in messages[0] for root in _roots(dirs))
    assert len({m.replace(p, "PATH") for m, p in zip(messages, paths)}) == 1, messages
    eval_msg = _refusal(_post(api, dirs["root"] / "good.json", "/etc/shadow"), ["task", "eval_file"])
    assert eval_msg == messages[0]


@pytest.mark.parametrize("escape", ["root/../outside/good.json", "root/link.json", "root/linked-dir/good.json"])
def test_dotdot_and_symlinks_out_of_a_root_are_refused(api: TestClient, dirs: dict[str, Path], escape: str) -> None:
    path = str(dirs["root"].parent / escape)
    msg = _refusal(_post(api, path), ["task", "train_file"])
    assert str(dirs["outside"]) not in msg  # the symlink's target is not revealed either


def test_base_model_directory_outside_the_roots_is_refused(api: TestClient, dirs: dict[str, Path]) -> None:
    good = dirs["root"] / "good.json"
    paths = [str(dirs["outside"] / "model"), str(dirs["outside"] / "nothing"), str(dirs["root"] / "linked-dir" / "model")]
    messages = [_refusal(_post(api, good, base_model=p), ["base_model"]) for p in paths]
    assert len({m.replace(p, "PATH") for m, p in zip(messages, paths)}) == 1, messages
    existing = messages[0]
    assert all(root in existing for root in _roots(dirs))
    # a spec that leaves its search space to the base's defaults is refused the same way, before
    # the directory's config is read for them
    unfilled = [_refusal(_post(api, good, base_model=p, search_space={}), ["base_model"]) for p in paths]
    assert unfilled == messages


@pytest.mark.parametrize("where", ["root", "data"])
def test_files_inside_a_data_root_or_the_data_dir_are_accepted(api: TestClient, dirs: dict[str, Path], where: str) -> None:
    assert _post(api, dirs[where] / "good.json").status_code == 201


def test_named_data_set_from_the_cache_is_accepted(api: TestClient) -> None:
    r = _post(api, "squad:train")
    assert r.status_code == 201, r.text


def test_registered_base_model_is_always_allowed(dirs: dict[str, Path]) -> None:
    settings = Settings(data_dir=dirs["data"], auth="required")
    assert validate_job(_spec(str(dirs["data"] / "good.json"), "squad:train"), settings) is False


def test_allowed_data_roots_rule(tmp_path: Path) -> None:
    """None (any path) only while auth is open and no data root is set."""
    assert Settings(data_dir=tmp_path).allowed_data_roots() is None
    assert Settings(data_dir=tmp_path, auth="open").allowed_data_roots() is None
    assert Settings(data_dir=tmp_path, auth="required").allowed_data_roots() == [tmp_path.resolve()]
    assert Settings(data_dir=tmp_path, host="0.0.0.0").allowed_data_roots() == [tmp_path.resolve()]
    roots = Settings(data_dir=tmp_path, data_roots=[tmp_path / "r" / "..", tmp_path / "s"]).allowed_data_roots()
    assert roots == [tmp_path.resolve(), (tmp_path / "s").resolve()]


def test_open_auth_without_roots_reads_any_path(dirs: dict[str, Path]) -> None:
    outside = str(dirs["outside"] / "good.json")
    assert validate_job(_spec(outside, outside), Settings(data_dir=dirs["data"], auth="open")) is False
