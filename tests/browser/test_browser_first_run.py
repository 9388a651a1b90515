"""A new user's first visit (issue 18), in the real `lora-nb dashboard` driven by headless Debian Chromium:
a fresh workspace, no engine, no GPU, no internet.

- the first page: the document scrolls (a full-page capture shows whole panels), no label is cut, every
  dropdown shows a choice, controls that cannot apply are disabled (and look it), the Training tab says
  that training needs a GPU and defaults to what can run, Start's error appears beside the button, in view;
- Install runs the install job and shows why it failed (git is kept off the network: GIT_ALLOW_PROTOCOL=file);
- Try the demo: a dataset tagged by the small local tagger and the CPU stand-in run, monitored in the
  Jobs tab, whose log shows text, not protocol lines, with the newest line in view;
- a closed tab's kernel is culled within seconds (short cull times for the test), while a running job
  goes on.

Screenshots go to test-artifacts/browser/first-run-*.png (or $LORA_NB_TEST_ARTIFACTS).
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import lora_nb
import lora_nb.system
from lora_nb.progress.events import JobStatus
from support import BROWSER_ARTIFACTS, CHROMIUM_ARGS, free_port, standin, wait_for, wait_port

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed (apt-get install chromium)")]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = BROWSER_ARTIFACTS
CULL_IDLE = 8          # seconds: short, so the test sees a closed tab's kernel go
TABS = ["Datasets", "Tagging", "Captions", "Training", "Jobs", "LoRA tools", "Models"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("first") / "ws"
    ws = lora_nb.Workspace(root)
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1", GIT_ALLOW_PROTOCOL="file", HF_HUB_OFFLINE="1",
               HF_HOME=str(tmp_path_factory.mktemp("hf")))
    env.pop("CUDA_VISIBLE_DEVICES", None)
    log_path = tmp_path_factory.mktemp("logs") / "dashboard.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "lora_nb.cli", "-w", str(root), "dashboard", "--port", str(port), "--no-browser",
                             "--cull-idle", str(CULL_IDLE), "--cull-interval", "1"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    wait_port(proc, port, log_path)
    yield f"http://127.0.0.1:{port}/", ws, proc, log_path
    os.killpg(proc.pid, 15)
    proc.wait(30)
    for job in ws.jobs.list(status=["queued", "starting", "running"]):
        job.stop(grace=2)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(120_000)
    page.goto(url)
    page.wait_for_selector(".lnb-dashboard", timeout=240_000)     # a new kernel on a busy 2-core box
    return page


@pytest.fixture(scope="module")
def page(server, browser):
    pg = open_page(browser, server[0])
    yield pg
    pg.close()


def tab(page, title: str) -> None:
    page.locator(".lnb-tabs .lm-TabBar-tab", has_text=title).first.click()
    page.wait_for_timeout(600)


def shot(page, name: str) -> Path:
    path = ARTIFACTS / f"first-run-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def png_height(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(24)
    return struct.unpack(">I", head[20:24])[0]


def kernels(proc) -> list[int]:
    out = []
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "ipykernel" in " ".join(child.cmdline()):
                out.append(child.pid)
        except psutil.Error:
            pass
    return out


TRUNCATED = """() => Array.from(document.querySelectorAll('.lnb-dashboard .widget-label, .lnb-dashboard .widget-label-basic'))
    .filter(l => l.offsetParent !== null && l.textContent.trim() && l.scrollWidth > l.clientWidth + 1).map(l => l.textContent)"""
EMPTY_DROPDOWNS = """() => Array.from(document.querySelectorAll('.lnb-dashboard select'))
    .filter(s => s.offsetParent !== null && !s.multiple && s.size <= 1 && s.options.length > 0
            && (s.selectedIndex < 0 || !s.options[s.selectedIndex].text.trim()))
    .map(s => (s.closest('.widget-inline-hbox') || s.parentElement).textContent.trim() || s.outerHTML.slice(0, 80))"""
IN_VIEW = """(el) => { const r = el.getBoundingClientRect();
    return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0 && r.right <= window.innerWidth; }"""


def test_the_document_scrolls_so_a_capture_shows_whole_panels(server, page):
    tab(page, "Training")
    page.wait_for_selector(".lnb-train-start")
    doc = page.evaluate("() => ({h: document.scrollingElement.scrollHeight, inner: window.innerHeight})")
    assert doc["h"] > doc["inner"] + 300, doc                               # the long form makes the page long
    inner_scrollers = page.evaluate("""() => { const out = []; let e = document.querySelector('.lnb-dashboard').parentElement;
        while (e && e !== document.body) { const s = getComputedStyle(e);
          if (e.scrollHeight > e.clientHeight + 1 && ['auto', 'scroll', 'hidden'].includes(s.overflowY)) out.push(e.id || e.className);
          e = e.parentElement; } return out; }""")
    assert inner_scrollers == []
    assert png_height(shot(page, "training")) >= doc["h"] - 5                # the full-page capture holds all of it


def test_without_a_gpu_it_is_said_plainly_and_the_form_defaults_to_what_can_run(server, page):
    tab(page, "Training")
    page.wait_for_selector(".lnb-train-hardware div")
    note = page.locator(".lnb-train-hardware").inner_text()
    if not lora_nb.system.gpus():
        assert "No NVIDIA GPU was found" in note and "Try the demo" in note
        assert page.locator(".lnb-field-optimizer_type select").input_value() == "AdamW"
        assert page.locator(".lnb-field-mixed_precision select").input_value() == "no"
    else:
        assert lora_nb.system.gpus()[0]["name"] in note
    # the engine line says what to do in the panel, not in Python
    page.wait_for_function("() => document.querySelector('.lnb-engine-status').innerText.includes('Install kohya')")
    assert "ws.settings" not in page.locator(".lnb-engine-status").inner_text()
    assert page.locator(".lnb-engine-path input").is_visible() and page.locator(".lnb-engine-install").is_enabled()


def test_start_shows_its_error_beside_the_button_in_view(server, page):
    tab(page, "Training")
    page.evaluate("() => window.scrollTo(0, 0)")
    page.locator(".lnb-train-start").click()
    notice = page.locator(".lnb-train-start-error .lnb-notice-text.lnb-error")
    notice.wait_for(timeout=30_000)
    assert notice.inner_text().startswith("kohya cannot run here")
    page.wait_for_function(f"() => ({IN_VIEW})(document.querySelector('.lnb-train-start-error .lnb-notice-text'))")
    start_box = page.locator(".lnb-train-start").bounding_box()
    notice_box = notice.bounding_box()
    assert abs(notice_box["y"] - start_box["y"]) < 40                      # on the Start button's line
    page.screenshot(path=str(ARTIFACTS / "first-run-start-error.png"))      # the viewport the user sees


def test_controls_that_cannot_apply_are_disabled_and_look_it(server, page):
    tab(page, "Datasets")
    assert page.locator(".lnb-delete-btn").is_disabled() and page.locator(".lnb-rename-btn").is_disabled()
    assert "Rename to" in page.locator(".lnb-rename-name").inner_text()
    cancel = page.locator(".lnb-upload-cancel")
    assert cancel.is_disabled() and float(cancel.evaluate("e => getComputedStyle(e).opacity")) < 0.7
    shot(page, "datasets")


def test_no_label_is_cut_and_no_dropdown_is_empty(server, page):
    for title in TABS:
        tab(page, title)
        assert page.evaluate(TRUNCATED) == [], title
        assert page.evaluate(EMPTY_DROPDOWNS) == [], title
    tab(page, "Models")
    assert page.locator(".lnb-models-family select").input_value()
    assert page.locator(".lnb-models-starter select").evaluate("s => s.options[s.selectedIndex].text.trim()")
    assert page.locator(".lnb-models-source input").input_value().startswith("hf:")
    shot(page, "models")
    tab(page, "LoRA tools")
    assert page.locator(".lnb-lora-method select").evaluate("s => s.options[s.selectedIndex].text.replace(/\\u00a0/g, ' ')") == "fixed rank"
    shot(page, "lora")
    tab(page, "Tagging")
    page.wait_for_selector(".lnb-tag-availability", timeout=30_000)
    assert "HF_HUB_OFFLINE is set" in page.locator(".lnb-tag-model-note").inner_text()   # said before starting
    shot(page, "tagging")


def test_install_shows_the_install_job_and_why_it_failed(server, page):
    url, ws, proc, _ = server
    tab(page, "Training")
    page.locator(".lnb-engine-install").click()
    page.wait_for_selector(".lnb-engine-install-progress .lnb-job-line-text")
    job = wait_for(lambda: next((j for j in ws.jobs.list() if j.name == "install kohya"), None), timeout=60, what="the install job")
    assert job.wait(120) is JobStatus.FAILED
    page.wait_for_function("() => document.querySelector('.lnb-engine-message').innerText.includes('Installing kohya failed')",
                           timeout=60_000)
    line = page.locator(".lnb-engine-install-progress").inner_text()
    assert "failed" in line and "not allowed" in line and "exit code 1." not in line
    page.locator(".lnb-engine-install").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "first-run-install-failed.png"))


def test_try_the_demo_from_the_page(server, page):
    url, ws, proc, _ = server
    tab(page, "Datasets")
    page.locator(".lnb-demo-btn").click()
    wait_until = lambda fn, t, what: wait_for(fn, timeout=t, poll=0.25, what=what)  # noqa: E731
    run = wait_until(lambda: next((j for j in ws.jobs.list() if j.meta.get("demo")), None), 180, "the demo run")
    ds = ws.datasets.get("demo")
    tagging = next(j for j in ws.jobs.list() if j.name == "tag demo")
    assert tagging.status is JobStatus.SUCCEEDED
    assert all(i.caption and i.caption.startswith("lnbdemo, ") for i in ds.images())
    # the page went to the Jobs tab and follows the run
    page.wait_for_selector(f".lnb-job-monitor .lnb-job-title:has-text('{run.id}')", timeout=60_000)
    page.wait_for_selector(".lnb-job-status[data-status=succeeded]", timeout=120_000)
    assert run.wait(30) is JobStatus.SUCCEEDED
    log = page.locator(".lnb-log-tail")
    page.wait_for_function("() => document.querySelector('.lnb-log-tail pre').innerText.includes('lnbdemo')", timeout=30_000)
    text = log.inner_text()
    assert "@@lora-nb" not in text and '"event"' not in text
    last = [line for line in text.splitlines() if line.strip()][-1]
    # the newest line is inside the visible part of the log box
    visible = page.evaluate("""(last) => { const box = document.querySelector('.lnb-log-box'); const pre = box.querySelector('pre');
        const range = document.createRange(); const node = pre.firstChild; const i = node.textContent.lastIndexOf(last);
        range.setStart(node, i); range.setEnd(node, i + last.length); const r = range.getBoundingClientRect(), b = box.getBoundingClientRect();
        return r.top >= b.top - 1 && r.bottom <= b.bottom + 1; }""", last)
    assert visible, last
    assert "newest at the bottom" in page.locator(".lnb-job-monitor").inner_text()
    shot(page, "demo-jobs")
    tab(page, "Captions")
    page.wait_for_selector(".lnb-caption-text textarea")
    assert page.locator(".lnb-undo").is_enabled()               # the tagging run is one undo step
    shot(page, "demo-captions")


def test_a_closed_tab_is_culled_and_running_jobs_go_on(server, browser):
    url, ws, proc, log_path = server
    job = ws.jobs.submit_command(standin("--steps", "100000", "--delay", "0.2"), name="long run", parser="kohya", kind="training",
                                 uses_gpu=False)
    wait_for(lambda: job.status is JobStatus.RUNNING, timeout=60)
    before = set(kernels(proc))
    visit = open_page(browser, url)
    tab(visit, "Jobs")
    visit.wait_for_selector(".lnb-job-status[data-status=running]", timeout=60_000)
    mine = set(kernels(proc)) - before
    assert len(mine) == 1, (before, mine)
    time.sleep(CULL_IDLE + 4)                      # an open page is never culled, however long it stays
    assert mine <= set(kernels(proc))
    visit.close()                                  # no beforeunload: like a crashed tab or a lost connection
    start = time.time()
    wait_for(lambda: not (mine & set(kernels(proc))), timeout=CULL_IDLE + 60, poll=0.5, what="the closed tab's kernel to be culled")
    culled_after = time.time() - start
    assert "Culling 'idle' kernel" in log_path.read_text()
    assert job.status is JobStatus.RUNNING and job.snapshot().status is JobStatus.RUNNING   # the job belongs to its supervisor
    step = job.progress.step or 0
    wait_for(lambda: (job.progress.step or 0) > step, timeout=30, what="the job to go on")
    job.stop(grace=5)
    (ARTIFACTS / "first-run-cull.txt").write_text(f"closed tab's kernel culled {culled_after:.1f} s after close "
                                                  f"(cull idle {CULL_IDLE} s, interval 1 s)\n")
