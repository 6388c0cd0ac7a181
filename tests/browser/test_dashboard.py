"""The dashboard in real headless Chromium (Debian's), against the real service and a real tiny search.

Screenshots of the job and trial pages are saved under each test's tmp_path (CI keeps them).
"""

from __future__ import annotations

import hashlib
import io
import threading
import uuid
import zipfile
from pathlib import Path
from typing import Any, Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest

from api.server import free_port
from tests.browser.conftest import LAUNCH_ARGS, chromium_path, job_spec

pytestmark = pytest.mark.browser
TARGET = "native"
CHROMIUM = chromium_path()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A persistent Chromium context on a fresh user-data-dir; skipped only when chromium is absent."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium): `apt-get install -y chromium` (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=LAUNCH_ARGS,
            viewport={"width": 1400, "height": 1000},
            accept_downloads=True,
        )
        context.set_default_timeout(30_000)
        yield context
        context.close()


class Page:
    """A page that records its JavaScript errors and the API requests it makes."""

    def __init__(self, context: Any, base: str) -> None:
        self.page = context.new_page()
        self.base = base
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("response", lambda r: self.errors.append(f"{r.status} {r.url}") if r.status >= 400 and r.status != 401 else None)

    def goto(self, path: str) -> Any:
        self.page.goto(self.base + path)
        return self.page

    def close(self) -> None:
        self.page.close()
        assert not self.errors, f"JavaScript errors on the page: {self.errors}"
        outside = [u for u in self.requests if not u.startswith((self.base, "data:", "blob:"))]
        assert not outside, f"the dashboard must work offline, but asked for {outside}"


@pytest.fixture
def pages(browser, service) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    client, _, token = service
    opened: list[Page] = []

    def open_page(path: str, *, with_token: bool = True) -> Page:
        p = Page(browser, str(client.base_url).rstrip("/"))
        opened.append(p)
        p.goto("/static/style.css")  # same origin, so localStorage is the dashboard's
        p.page.evaluate("t => t ? localStorage.setItem('hwnas-token', t) : localStorage.removeItem('hwnas-token')", token if with_token else "")
        p.goto(path)
        return p

    yield open_page
    for p in opened:
        p.close()


def api_points(client, job_id: str, target: str = TARGET) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The trials the API says belong on the target's scatter: completed, with F1 and an INT8 measurement there."""
    trials = client.get(f"/api/v1/jobs/{job_id}/trials", params={"state": "completed", "target": target}).json()
    return [t for t in trials if t["f1"] is not None and any(m["target"] == target and m["precision"] == "int8" for m in t["measurements"])]


PLOTTED = """(sel) => { const gd = document.querySelector(sel);
  return gd && gd.data ? gd.data.filter(t => t.meta === 'trials').reduce((n, t) => n + t.x.length, 0) : -1; }"""


def test_jobs_page_asks_for_a_token_then_lists_the_running_job(pages, service, live_job) -> None:  # type: ignore[no-untyped-def]
    p = pages("/", with_token=False)
    page = p.page
    page.wait_for_selector("#auth-msg:not([hidden])")
    assert "needs an API token" in page.inner_text("#auth-msg")
    page.fill("#token", service[2])
    page.click("#auth button[type=submit]")
    row = page.wait_for_selector(f"tr[data-job='{live_job}']")
    assert "dashboard tiny search" in row.inner_text() and "native" in row.inner_text()
    assert page.is_hidden("#auth-msg")


def test_job_page_updates_live_during_the_search(pages, service, live_job, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = service
    p = pages(f"/jobs/{live_job}")
    page = p.page
    page.wait_for_selector("body[data-refreshes]")
    page.evaluate("() => { window.__sameDocument = true; }")  # gone if the page reloads
    first = page.evaluate(PLOTTED, f"#plot-{TARGET}")
    assert client.get(f"/api/v1/jobs/{live_job}").json()["status"] in ("queued", "running"), "the search ended before the page could watch it"
    page.wait_for_selector("#live.state-live", timeout=30_000)  # the event stream is connected

    # a running trial shows its phase and progress (stored by the coordinator, pushed by the event stream)
    page.wait_for_selector("#running li", timeout=600_000)
    assert "trial" in page.inner_text("#running")

    # a trial completes: the scatter grows without a reload
    page.wait_for_function(f"() => ({PLOTTED})('#plot-{TARGET}') > {first}", timeout=600_000, polling=500)
    page.screenshot(path=str(tmp_path / "job-page-running.png"), full_page=True)
    assert page.evaluate("() => window.__sameDocument === true")

    # the search finishes: the page says so, still without a reload
    page.wait_for_function("() => document.querySelector('#job-status .badge')?.textContent === 'completed'", timeout=900_000, polling=1000)
    page.wait_for_selector("#live.state-finished")
    assert page.evaluate("() => window.__sameDocument === true")
    assert any("/api/v1/events" in u for u in p.requests), "the page must follow the server-sent events"
    page.screenshot(path=str(tmp_path / "job-page-finished.png"), full_page=True)

    # as many points as the API has trials on the target, and the front is the API's front
    points = api_points(client, live_job)
    front = client.get(f"/api/v1/jobs/{live_job}/pareto", params={"target": TARGET}).json()["trials"]
    assert points and page.evaluate(PLOTTED, f"#plot-{TARGET}") == len(points)
    plot = page.locator(f"#plot-{TARGET}")
    assert plot.get_attribute("data-points") == str(len(points)) and plot.get_attribute("data-front") == str(len(front))
    traces = page.evaluate(f"() => document.querySelector('#plot-{TARGET}').data.map(t => [t.name, t.customdata || null, t.marker.opacity ?? 1])")
    by_name = {name: (numbers, opacity) for name, numbers, opacity in traces}
    assert sorted(by_name["Pareto front"][0]) == sorted(t["number"] for t in front)
    assert by_name["dominated trials"][1] < 1  # faded
    assert {"teacher FP32", "teacher INT8"} <= set(by_name), by_name.keys()
    # the job's F1 constraint (a share of the teacher's FP32 F1) is drawn where the API puts it
    floor = client.get(f"/api/v1/jobs/{live_job}/pareto", params={"target": TARGET}).json()["constraint"]["min_f1"]
    drawn = page.evaluate(f"() => document.querySelector('#plot-{TARGET}').layout.shapes.filter(s => s.name === 'min_f1').map(s => s.y0)")
    assert floor is not None and drawn == [pytest.approx(floor)]
    assert float(page.input_value("#min-f1")) == pytest.approx(floor, abs=0.01)

    # and no polling: a finished job's page makes no more API requests
    p.requests.clear()
    page.wait_for_timeout(3000)
    assert not [u for u in p.requests if "/api/" in u], p.requests


def test_front_can_be_shown_as_deployed_or_at_fixed_length(pages, service, finished_job) -> None:  # type: ignore[no-untyped-def]
    """The scatter's speed is each trial's chosen deployment by default; "at fixed length" plots the fixed-length
    figures and draws the API's front for that view (``pareto?view=fixed``)."""
    client, _, _ = service
    job_id = finished_job["id"]
    page = pages(f"/jobs/{job_id}").page
    page.wait_for_selector("body[data-refreshes]")
    xs = f"() => Object.fromEntries(document.querySelector('#plot-{TARGET}').data.filter(t => t.name === 'dominated trials' || t.name === 'Pareto front').flatMap(t => (t.customdata || []).map((n, i) => [n, t.x[i]])))"
    trials = {t["number"]: t for t in client.get(f"/api/v1/jobs/{job_id}/trials").json() if t["state"] == "completed"}
    speed = "throughput_sps" if page.input_value("#xaxis") == "throughput" else "p90_ms"
    deployed = page.evaluate(xs)
    assert deployed and all(x == pytest.approx(trials[int(n)]["measurements"][0][speed]) for n, x in deployed.items())
    before = int(page.get_attribute("body", "data-refreshes"))
    page.select_option("#view", "fixed")
    page.wait_for_function(f"() => Number(document.body.dataset.refreshes) > {before}")
    fixed = page.evaluate(xs)
    assert all(x == pytest.approx(trials[int(n)]["measurements"][0]["deployment"]["fixed_length"][speed]) for n, x in fixed.items())
    front = client.get(f"/api/v1/jobs/{job_id}/pareto", params={"target": TARGET, "view": "fixed"}).json()["trials"]
    assert page.locator(f"#plot-{TARGET}").get_attribute("data-front") == str(len(front))
    assert "at fixed length" in page.evaluate(f"() => document.querySelector('#plot-{TARGET}').layout.xaxis.title.text")


def test_trial_table_sorts_like_the_api(pages, service, finished_job) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = service
    page = pages(f"/jobs/{finished_job['id']}").page
    page.wait_for_selector("body[data-refreshes]")
    rows = lambda: [int(n) for n in page.eval_on_selector_all("#trials tbody tr", "rs => rs.map(r => r.dataset.number)")]  # noqa: E731
    assert rows() == sorted(rows())
    page.click("#trials th[data-key='f1']")  # most accurate first
    api = [t["number"] for t in client.get(f"/api/v1/jobs/{finished_job['id']}/trials", params={"sort": "-f1"}).json()]
    assert rows() == api
    page.click(f"#trials th[data-key='p90:{TARGET}']")
    assert rows() == [t["number"] for t in client.get(f"/api/v1/jobs/{finished_job['id']}/trials", params={"sort": "-p90_ms"}).json()]
    page.click(f"#trials th[data-key='p90:{TARGET}']")  # again: ascending
    assert rows() == [t["number"] for t in client.get(f"/api/v1/jobs/{finished_job['id']}/trials", params={"sort": "p90_ms"}).json()]


def test_clicking_a_point_opens_that_trial_and_downloads_its_zip(pages, service, finished_job, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = service
    job_id = finished_job["id"]
    page = pages(f"/jobs/{job_id}").page
    page.wait_for_selector("body[data-refreshes]")
    plot = page.locator(f"#plot-{TARGET}")
    plot.scroll_into_view_if_needed()
    front = client.get(f"/api/v1/jobs/{job_id}/pareto", params={"target": TARGET}).json()["trials"]
    wanted = front[-1]["number"]  # the most accurate front member
    spot = page.evaluate(
        """([sel, n]) => { const gd = document.querySelector(sel), fl = gd._fullLayout, r = gd.getBoundingClientRect();
             const tr = gd.data.find(t => t.name === 'Pareto front'), i = tr.customdata.indexOf(n);
             return {x: r.left + fl.xaxis._offset + fl.xaxis.l2p(tr.x[i]), y: r.top + fl.yaxis._offset + fl.yaxis.l2p(tr.y[i])}; }""",
        [f"#plot-{TARGET}", wanted],
    )
    page.mouse.move(spot["x"], spot["y"])
    page.mouse.click(spot["x"], spot["y"])
    page.wait_for_url(f"**/jobs/{job_id}/trials/*")
    opened = int(page.url.rsplit("/", 1)[1])
    trial = client.get(f"/api/v1/jobs/{job_id}/trials/{opened}").json()
    wanted_trial = next(t for t in front if t["number"] == wanted)
    # the trial under the pointer: the one aimed at, or one drawn on the very same spot
    assert opened == wanted or (trial["f1"], trial["measurements"][0]["p90_ms"]) == pytest.approx(
        (wanted_trial["f1"], wanted_trial["measurements"][0]["p90_ms"]), rel=0.02
    )

    page.wait_for_selector("body[data-loaded]")
    assert page.inner_text("#number") == str(opened)
    assert page.evaluate("() => document.getElementById('arch').data.map(t => t.name)") == ["attention heads", "FFN width"]
    kept = page.evaluate("() => document.getElementById('arch').data[0].text.filter(t => t !== 'dropped').map(Number)")
    assert kept == trial["config"]["heads"]
    measured = page.inner_text(f".measurement[data-target='{TARGET}']")
    assert "native: measured on this target's own CPU" in measured and f"p90 {trial['measurements'][0]['p90_ms']:.3f} ms" in measured
    deployment = trial["measurements"][0]["deployment"]  # the sweep's choice, and why, as the API states it
    assert deployment["reason"] in measured and f"at fixed length {deployment['fixed_length']['seq_len']}" in measured
    assert '"format": "openvino-ir"' in page.inner_text("#card")
    page.screenshot(path=str(tmp_path / "trial-page.png"), full_page=True)

    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    page.wait_for_function("() => document.getElementById('download-msg').textContent.includes('verified')")
    assert saved.name == f"hwnas-{job_id[:8]}-trial{opened}-int8.zip"
    served = client.get(f"/api/v1/jobs/{job_id}/trials/{opened}/model")
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == served.headers["X-Checksum-SHA256"]
    with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as zf:
        assert {"openvino_model.xml", "openvino_model.bin", "config.json", "model_card.json"} <= set(zf.namelist())


def test_failed_trials_are_listed_with_their_reason(pages, service, tiny_qa_model, squad_files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A job whose only trial failed (written to the store the way the coordinator does)."""
    from nas.spec import JobSpec
    from nas.store import repo
    from nas.store.db import make_engine, session_factory

    _, settings, _ = service
    job_id = uuid.uuid4().hex
    reason = "OpenVINO could not compile the IR: Exception from src/inference: unsupported shape"
    engine = make_engine(settings.resolved_db_url())
    with session_factory(engine).begin() as s:
        spec = JobSpec.model_validate(job_spec(tiny_qa_model, *squad_files)).model_dump(mode="json")
        repo.create_job(s, job_id=job_id, spec=spec, synthetic=False)
        repo.update_job(s, job_id, status="failed", stage="search", error="every trial failed")
        repo.start_trial(s, job_id, number=0, optuna_trial_id=-1, config={"layers": [0, 2], "heads": [2, 4], "ffn": [32, 128]})
    with session_factory(engine).begin() as s:
        repo.fail_trial(s, job_id, 0, reason)
    engine.dispose()

    page = pages(f"/jobs/{job_id}").page
    page.wait_for_selector("body[data-refreshes]")
    assert f"trial 0: {reason}" in page.inner_text("#failed")
    assert page.get_attribute("#trials tbody tr", "class") == "failed"
    assert "every trial failed" in page.inner_text("#job-error")
    page.screenshot(path=str(tmp_path / "job-page-failed.png"), full_page=True)
    page.click("#failed a")
    page.wait_for_selector("body[data-loaded]")
    assert reason in page.inner_text("#trial-error")
    assert page.is_disabled("#download")
    assert page.evaluate("() => document.getElementById('arch').data[0].text") == ["2", "dropped", "4"]


def test_submit_form_sends_a_yaml_spec_and_shows_the_bad_field(pages, tiny_qa_model, squad_files) -> None:  # type: ignore[no-untyped-def]
    import yaml

    p = pages("/")
    page = p.page
    page.wait_for_selector("body[data-loaded]")
    page.click("#submit-box summary")
    bad = job_spec(tiny_qa_model, *squad_files) | {"budget": {"trials": 0}}
    page.fill("#spec", yaml.safe_dump(bad))
    page.click("#submit button[type=submit]")
    page.wait_for_selector("#submit-msg.error-text")
    message = page.inner_text("#submit-msg")
    assert "422" in message and "budget" in message
    page.fill("#spec", "name: [unclosed")
    page.click("#submit button[type=submit]")
    page.wait_for_function("() => document.getElementById('submit-msg').textContent.includes('not valid YAML')")
    p.errors = [e for e in p.errors if not e.startswith("422 ")]  # the two refusals asked for


def test_teacher_progress_bar_moves_while_the_teacher_trains(pages, service, tiny_qa_model, squad_files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A base without a QA head is fine-tuned first: the job page's stage bar follows its steps, live."""
    import json
    import shutil
    import time

    client, settings, _ = service
    base = settings.data_dir / "bases" / f"tiny-bert-no-head-{uuid.uuid4().hex[:6]}"  # the data dir is an allowed root
    shutil.copytree(tiny_qa_model, base)
    config = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**config, "architectures": ["BertModel"]}))
    spec = job_spec(base, *squad_files) | {
        "name": "teacher progress",
        "teacher": {"max_steps": 400, "batch_size": 16, "learning_rate": 1e-4, "max_train_examples": 2000},
    }
    r = client.post("/api/v1/jobs", json=spec)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    try:
        p = pages(f"/jobs/{job_id}")
        page = p.page
        page.wait_for_selector("#stage-progress:not([hidden])", timeout=600_000)
        seen: list[int] = []
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            value = page.evaluate("() => { const b = document.querySelector('#stage-progress'); "
                                  "return b.hidden || b.dataset.stage !== 'teacher' ? null : Number(b.dataset.step || 0); }")  # fmt: skip
            if value:
                seen.append(value)
            if len(set(seen)) >= 3:
                break
            page.wait_for_timeout(300)
        assert len(set(seen)) >= 3 and seen == sorted(seen), f"the teacher's bar did not move forward: {seen}"
        text = page.inner_text("#stage-progress-text")
        assert "teacher: fine-tuning" in text and "/400 steps" in text and "loss" in text and "ETA" in text, text
        width = page.evaluate("() => parseFloat(document.querySelector('#stage-progress-bar').style.width)")
        assert 0 < width <= 100
        page.screenshot(path=str(tmp_path / "teacher-progress.png"), full_page=True)
        # the same figures through the API (any replica: they are stored with the job)
        sp = client.get(f"/api/v1/jobs/{job_id}").json()["stage_progress"]
        assert sp is None or (sp["stage"] == "teacher" and sp["total"] == 400 and sp["unit"] == "steps")
    finally:
        client.post(f"/api/v1/jobs/{job_id}/cancel")


# optuna-dashboard reads hwnas's database: its own app, served over HTTP, finds the job's study and trials. In this
# file, not its own, so that it reads the job the browser tests watched (one job per test process, `--dist loadfile`).
class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def optuna_dashboard_url(service, finished_job) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """``optuna-dashboard <db-url>`` as its WSGI app on the service's database, on a loopback port."""
    import optuna
    import optuna_dashboard

    _, settings, _ = service
    storage = optuna.storages.RDBStorage(settings.resolved_db_url())
    server = make_server("127.0.0.1", free_port(), optuna_dashboard.wsgi(storage), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="optuna-dashboard", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        storage.remove_session()


def test_optuna_dashboard_finds_the_study_and_its_trials(optuna_dashboard_url, service, finished_job) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = service
    job_id = finished_job["id"]
    with httpx.Client(base_url=optuna_dashboard_url, timeout=60) as od:
        assert od.get("/dashboard/").status_code == 200  # its single-page app is served too
        studies = od.get("/api/studies").raise_for_status().json()["study_summaries"]
        study = next(s for s in studies if s["study_name"] == finished_job["study_name"])
        assert study["directions"] == ["maximize", "minimize"]
        detail = od.get(f"/api/studies/{study['study_id']}").raise_for_status().json()

    assert detail["name"] == f"hwnas-{job_id}"
    assert detail["objective_names"] == ["F1", "p90 latency native (ms)"]
    assert detail["user_attrs"] == [{"key": "hwnas:job_id", "value": job_id}] or {"key": "hwnas:job_id", "value": job_id} in detail["user_attrs"]

    ours = {t["number"]: t for t in client.get(f"/api/v1/jobs/{job_id}/trials").json()}
    theirs = {t["number"]: t for t in detail["trials"]}
    assert set(theirs) == set(ours)
    for number, t in ours.items():
        o = theirs[number]
        attrs = {a["key"]: a["value"] for a in o["user_attrs"]}
        assert "hwnas:config" in attrs
        if t["state"] == "completed":
            assert o["state"] == "Complete"
            assert o["values"][0] == pytest.approx(t["f1"])
            p90 = next(m["p90_ms"] for m in t["measurements"] if m["target"] == "native" and m["precision"] == "int8")
            assert o["values"][1] == pytest.approx(p90)
            assert float(attrs["hwnas:native:throughput_sps"]) == pytest.approx(t["measurements"][0]["throughput_sps"])
        else:
            assert o["state"] == "Fail" and attrs.get("hwnas:error")
    # its Pareto front is ours
    front = client.get(f"/api/v1/jobs/{job_id}/pareto", params={"target": "native"}).json()["trials"]
    assert {t["number"] for t in detail["best_trials"]} >= {t["number"] for t in front}
