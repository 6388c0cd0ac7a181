"""The dashboard's pages and assets as HTTP resources (no browser): all served by hwnas, nothing from a CDN."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.routes.dashboard import STATIC, plotly_js
from nas.config import Settings

PAGES = ["/", "/jobs/0123abcd", "/jobs/0123abcd/trials/3"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    # no lifespan: the pages and assets need neither the store nor the coordinator
    return TestClient(create_app(Settings(data_dir=tmp_path_factory.mktemp("pages"))))


@pytest.mark.parametrize("path", PAGES)
def test_every_script_and_style_sheet_of_a_page_is_served_by_hwnas(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', r.text)
    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by hwnas"
        assert client.get(asset).status_code == 200, asset


def test_no_asset_reaches_outside() -> None:
    for f in sorted(STATIC.iterdir()):
        text = f.read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")  # a namespace name, not a fetch
        assert not re.search(r"https?://|//cdn|@import", text), f"{f.name} refers to something outside hwnas"


def test_plotly_js_is_the_plotly_package_bundle(client: TestClient) -> None:
    r = client.get("/vendor/plotly.min.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.content == Path(plotly_js()).read_bytes() and len(r.content) > 1_000_000


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("name: a\nbudget: {trials: 2}\n", {"name": "a", "budget": {"trials": 2}}), ('{"name": "a", "targets": ["native"]}', {"name": "a", "targets": ["native"]})],
)
def test_submit_form_parses_yaml_and_json(client: TestClient, text: str, parsed: dict) -> None:  # type: ignore[type-arg]
    r = client.post("/ui/spec", content=text, headers={"Content-Type": "text/plain"})
    assert r.status_code == 200 and r.json() == parsed


@pytest.mark.parametrize("text", ["name: [unclosed", "- a list", "just text"])
def test_submit_form_refuses_what_is_not_a_spec_mapping(client: TestClient, text: str) -> None:
    r = client.post("/ui/spec", content=text, headers={"Content-Type": "text/plain"})
    assert r.status_code == 422 and r.json()["detail"]
