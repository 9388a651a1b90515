"""Issue 15 in a real browser (headless Debian Chromium): the real `lora-nb dashboard` (Voila, our template) AND a
real JupyterLab 4 server with ``Dashboard()`` in a notebook cell.

- Voila: the first-run card on an empty workspace; lazy tabs (a tab's box holds no panel until it is opened);
  the light/dark switch and ``?theme=dark``; a screenshot of every panel in both themes goes to
  test-artifacts/screenshots/ (kept as CI artifacts, explained in docs/dashboard.md).
- JupyterLab: ``jupyter lab`` as a subprocess (token, free port), a notebook opened and its cell run; the dashboard
  renders with its first-run card, *Try the demo* runs the flow to a finished CPU stand-in run, and under the
  JupyterLab Dark theme the cards follow Lab's ``--jp-*`` colours.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lora_nb
from lora_nb.progress.events import JobStatus
from support import CHROMIUM_ARGS, REPO, free_port, wait_for, wait_port

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed (apt-get install chromium)")]

SHOTS = Path(os.environ.get("LORA_NB_TEST_ARTIFACTS", REPO / "test-artifacts")) / "screenshots"
TABS = ["Datasets", "Tagging", "Captions", "Training", "Jobs", "LoRA tools", "Models"]
if (REPO / "widgets" / "runs.py").exists():      # the Runs tab, where its module is installed
    TABS.insert(5, "Runs")
BG_LUMA = """(sel) => { const e = document.querySelector(sel); let c = getComputedStyle(e).backgroundColor;
  const m = c.match(/[\\d.]+/g).map(Number); return 0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]; }"""
FILL_LUMA = BG_LUMA.replace("backgroundColor", "fill")   # an SVG shape's colour: its computed fill
BG_REDNESS = """(sel) => { const m = getComputedStyle(document.querySelector(sel)).backgroundColor.match(/[\\d.]+/g).map(Number);
  return m[0] - (m[1] + m[2]) / 2; }"""                    # how far a background leans to red (a danger button ~ 150+)
CHART = ".lnb-tab-jobs .lnb-loss-svg .lnb-chart-panel"   # the job monitor's loss chart (drawn before any job)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def voila(tmp_path_factory):
    root = tmp_path_factory.mktemp("look") / "ws"
    ws = lora_nb.Workspace(root)
    port = free_port()
    log = tmp_path_factory.mktemp("logs") / "dashboard.log"
    proc = subprocess.Popen([sys.executable, "-m", "lora_nb.cli", "-w", str(root), "dashboard", "--port", str(port), "--no-browser"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                            start_new_session=True)
    wait_port(proc, port, log)
    yield f"http://127.0.0.1:{port}/", ws
    os.killpg(proc.pid, 15)
    proc.wait(30)


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(120_000)
    page.goto(url)
    page.wait_for_selector(".lnb-dashboard", timeout=240_000)
    return page


def _tab(page, title: str) -> None:
    page.locator(".lnb-tabs .lm-TabBar-tab", has_text=title).first.click()


def _shoot_every_panel(page, theme: str) -> list[Path]:
    out = []
    for title in TABS:
        _tab(page, title)
        attr = {"LoRA tools": "lora"}.get(title, title.lower())
        page.wait_for_selector(f".lnb-tab-{attr} .lnb-next, .lnb-tab-{attr} .lnb-tab-error", state="attached", timeout=120_000)
        page.wait_for_timeout(400)
        path = SHOTS / f"{theme}-{title.lower().replace(' ', '-')}.png"
        page.screenshot(path=str(path), full_page=True)
        out.append(path)
    return out


def test_voila_first_run_card_and_lazy_tabs(voila, browser):
    url, ws = voila
    page = _open(browser, url)
    try:
        card = page.locator(".lnb-first-run")
        card.wait_for()
        assert "Try the demo" in card.inner_text() and "Import your images" in card.inner_text()
        assert "RAM" in page.locator(".lnb-header .lnb-sysinfo").inner_text()
        # only Datasets is built: the other tabs' boxes are empty until opened
        assert page.locator(".lnb-tab-datasets .lnb-datasets").count() == 1
        assert page.locator(".lnb-training").count() == 0 and page.locator(".lnb-models").count() == 0
        _tab(page, "Training")
        page.wait_for_selector(".lnb-tab-training .lnb-training")
        assert page.locator(".lnb-models").count() == 0
        assert page.locator(".lnb-tab-training .lnb-help").count() > 20          # help text beside the options
        # Import your images goes to the Datasets import
        page.locator(".lnb-first-import").click()
        page.wait_for_selector(".lnb-import-source input", state="visible")
        page.screenshot(path=str(SHOTS / "light-first-run.png"))
    finally:
        page.close()


def test_voila_light_and_dark_themes_with_screenshots_of_every_panel(voila, browser):
    url, ws = voila
    page = _open(browser, url + "?theme=light")
    try:
        assert page.evaluate("() => document.body.dataset.lnbTheme") == "light"
        light = page.evaluate(BG_LUMA, ".lnb-first-run")
        assert light > 200
        _shoot_every_panel(page, "light")
        assert page.evaluate(FILL_LUMA, CHART) > 200                # the loss chart follows the theme
        page.locator("#lnb-theme-switch").click()                 # the switch flips it at once, and is remembered
        assert page.evaluate("() => document.body.dataset.lnbTheme") == "dark"
    finally:
        page.close()
    page = _open(browser, url + "?theme=dark")
    try:
        assert page.evaluate("() => document.body.dataset.lnbTheme") == "dark"
        assert page.evaluate(BG_LUMA, ".lnb-first-run") < 80
        assert page.evaluate(BG_LUMA, "body") < 60
        paths = _shoot_every_panel(page, "dark")
        assert all(p.stat().st_size > 5000 for p in paths)
        assert page.evaluate(FILL_LUMA, CHART) < 80                 # no white chart on a dark page
        assert page.evaluate(FILL_LUMA, ".lnb-tab-jobs .lnb-loss-svg text") > 120    # its labels light
        stop = ".lnb-tab-jobs button.lnb-job-stop"                  # no job: Stop is disabled, and looks it
        assert page.locator(stop).first.is_disabled()
        assert page.evaluate(BG_REDNESS, stop) < 30, "a disabled Stop button still glows red in the dark theme"
    finally:
        page.close()


# -- JupyterLab 4 -------------------------------------------------------------------------------------------
CELL = """from lora_nb.widgets import Dashboard
import lora_nb
d = Dashboard(lora_nb.Workspace({root!r}))
d.demo.demo_options.update(n=4, size=(64, 64), epochs=1, steps_per_epoch=3, seconds_per_step=0.05)
d"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("lab")
    root = base / "ws"
    ws = lora_nb.Workspace(root)
    nbdir = base / "notebooks"
    nbdir.mkdir()
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c0", "metadata": {}, "outputs": [],
                     "source": CELL.format(root=str(root))}],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    (nbdir / "dash.ipynb").write_text(json.dumps(nb))
    settings = base / "lab-settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings").write_text(json.dumps({"theme": "JupyterLab Dark"}))
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    token = "lnb-test-token"
    port = free_port()
    log = base / "lab.log"
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(base / "lab-ws"),
               PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", JUPYTER_RUNTIME_DIR=str(base / "runtime"))
    proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={nbdir}",
                             "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                             "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True", *(["--allow-root"] if os.geteuid() == 0 else [])],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=nbdir)
    wait_port(proc, port, log)
    yield f"http://127.0.0.1:{port}/lab/tree/dash.ipynb?token={token}", ws
    os.killpg(proc.pid, 15)
    proc.wait(30)
    for job in ws.jobs.list(status=["queued", "starting", "running"]):
        job.stop(grace=2)


def test_jupyterlab_cell_renders_the_dashboard_dark_and_runs_the_demo(lab, browser):
    url, ws = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(180_000)
    try:
        page.goto(url)
        page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=240_000)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('notebook:run-all-cells')")
        try:
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status=idle]", timeout=120_000)   # the kernel is up
            for _ in range(6):    # 'idle' can show before the kernel's websocket is connected: run again until it runs
                page.wait_for_timeout(2000)
                page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
                page.keyboard.press("Shift+Enter")
                try:
                    page.wait_for_function("() => !document.querySelector('.jp-Cell .jp-InputPrompt').textContent.includes('[ ]')",
                                           timeout=15_000)
                    break
                except Exception:
                    continue
            page.wait_for_selector(".jp-OutputArea .lnb-dashboard", timeout=240_000)
        except Exception:
            page.screenshot(path=str(SHOTS / "lab-failed.png"), full_page=True)
            raise
        card = page.locator(".jp-OutputArea .lnb-first-run")
        card.wait_for()
        assert "Try the demo" in card.inner_text()
        assert page.locator(".jp-OutputArea .lnb-training").count() == 0          # lazy here too
        assert page.evaluate("() => document.body.dataset.jpThemeLight") == "false"
        assert page.evaluate(BG_LUMA, ".jp-OutputArea .lnb-first-run") < 80        # Lab's dark --jp-* colours
        page.screenshot(path=str(SHOTS / "lab-dark-first-run.png"))
        page.locator(".jp-OutputArea .lnb-demo-btn").click()
        run = wait_for(lambda: next((j for j in ws.jobs.list() if j.meta.get("demo")), None), timeout=240, poll=0.5, what="the demo run")
        page.wait_for_selector(f".jp-OutputArea .lnb-job-monitor .lnb-job-title:has-text('{run.id}')", timeout=120_000)
        assert run.wait(120) is JobStatus.SUCCEEDED
        page.wait_for_selector(".jp-OutputArea .lnb-job-status[data-status=succeeded]", timeout=120_000)
        hint = page.locator(".jp-OutputArea .lnb-tab-jobs .lnb-next")
        page.locator(".jp-OutputArea .lnb-tabs .lm-TabBar-tab", has_text="Datasets").first.click()
        page.locator(".jp-OutputArea .lnb-tabs .lm-TabBar-tab", has_text="Jobs").first.click()
        hint.wait_for(state="visible", timeout=60_000)                              # the next step after a finished run
        assert "finished run" in hint.inner_text()
        page.screenshot(path=str(SHOTS / "lab-dark-demo-finished.png"), full_page=True)
    finally:
        page.close()
