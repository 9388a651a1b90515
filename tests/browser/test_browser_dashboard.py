"""The real `lora-nb dashboard` (a Voila server) driven by headless Debian Chromium through Playwright.

One scenario, in order, as a user would: open the page, create a dataset, upload a multi-megabyte ZIP
through the chunked uploader, see thumbnails, edit a caption and find it on disk, run a bulk edit and
undo it, start a training run, watch the progress bar and loss chart move (updates sent from the job
follower's background thread), reload the page and find the same run still going, stop it.

The trainer is the STAND-IN ai-toolkit (tests/engines/fake_aitoolkit/run.py), a separate process that
behaves like ai-toolkit at the process level; everything else is real. Screenshots of each panel go to
test-artifacts/browser/ (or $LORA_NB_TEST_ARTIFACTS).
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lora_nb
from lora_nb import TrainingConfig
from lora_nb.progress.events import JobStatus
from support import BROWSER_ARTIFACTS, CHROMIUM_ARGS, free_port, wait_for, wait_port

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed (apt-get install chromium)")]

REPO = Path(__file__).resolve().parents[2]
FAKE_AITOOLKIT = REPO / "tests" / "engines" / "fake_aitoolkit"
ARTIFACTS = BROWSER_ARTIFACTS


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("dash") / "ws"
    ws = lora_nb.Workspace(root)
    ws.settings.set("aitoolkit_dir", str(FAKE_AITOOLKIT))
    ws.settings.set("aitoolkit_python", sys.executable)
    ws.presets.save("browser-flux", TrainingConfig(engine="ai-toolkit", model_family="flux", dataset="alice", resolution="512",
                                                    pretrained_model_name_or_path="black-forest-labs/FLUX.1-dev", max_train_epochs=None,
                                                    max_train_steps=400, save_every_n_steps=100, optimizer_type="AdamW",
                                                    output_name="browser", trigger_words=[]))
    port = free_port()
    env = dict(os.environ, FAKE_AITK_STEP_SECONDS="0.25", PYTHONUNBUFFERED="1")
    log = open(tmp_path_factory.mktemp("logs") / "dashboard.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "lora_nb.cli", "-w", str(root), "dashboard", "--port", str(port), "--no-browser"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    wait_port(proc, port, Path(log.name))
    yield url, ws
    os.killpg(proc.pid, 15)
    proc.wait(30)
    for job in ws.jobs.list(status=["queued", "starting", "running"]):
        job.stop(grace=2)


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)
        yield pg
        browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def tab(page, title: str) -> None:
    page.locator(".lnb-tabs .lm-TabBar-tab", has_text=title).first.click()


def wait_until(fn, timeout: float = 60, what: str = "condition"):
    return wait_for(fn, timeout=timeout, poll=0.25, what=what)


def noisy_zip(n: int = 10) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i in range(n):
            img = Image.fromarray(rng.integers(0, 256, (360, 480, 3), dtype=np.uint8))
            b = io.BytesIO()
            img.save(b, "PNG")
            z.writestr(f"img{i:02d}.png", b.getvalue())
            z.writestr(f"img{i:02d}.txt", f"alice, photo {i}\n")
    return buf.getvalue()


def test_the_whole_flow_in_a_browser(server, page, tmp_path):
    url, ws = server
    t0 = time.time()
    page.goto(url)
    page.wait_for_selector(".lnb-dashboard")
    interactive = time.time() - t0
    assert "RAM" in page.locator(".lnb-sysinfo").inner_text()
    shot(page, "1-datasets-empty")

    # create a dataset
    page.locator(".lnb-create-name input").fill("alice")
    page.locator(".lnb-create-btn").click()
    wait_until(lambda: "alice" in ws.datasets, what="the dataset to be created")

    # upload a multi-megabyte ZIP through the chunked uploader
    data = noisy_zip()
    assert len(data) > 4 * 2**20
    archive = tmp_path / "alice.zip"
    archive.write_bytes(data)
    page.locator(".lnb-upload input[type=file]").set_input_files(str(archive))
    wait_until(lambda: len(ws.datasets.get("alice").images()) == 10, timeout=120, what="the uploaded images")
    page.wait_for_selector(".lnb-gallery-cell img", timeout=60_000)
    wait_until(lambda: page.locator(".lnb-gallery-cell img").count() >= 10, what="ten thumbnails")
    assert not list((ws.tmp_dir / "uploads").glob(".upload-*")) if (ws.tmp_dir / "uploads").exists() else True
    shot(page, "2-datasets-gallery")

    # edit one caption in the grid and find it on disk
    tab(page, "Captions")
    page.wait_for_selector(".lnb-caption-text textarea")
    first = page.locator(".lnb-caption-text textarea").first
    first.fill("alice, edited in the browser")
    first.press("Tab")
    ds = ws.datasets.get("alice")
    wait_until(lambda: any(i.caption == "alice, edited in the browser" for i in ds.images()), what="the edited caption on disk")
    shot(page, "3-captions")

    # bulk edit (add a trigger word), then undo
    page.locator(".lnb-bulk-op select").select_option(label="Add trigger word(s)")
    page.locator(".lnb-bulk-arg1 input").fill("lnbtrig")
    page.locator(".lnb-bulk-apply").click()
    wait_until(lambda: all(i.caption.startswith("lnbtrig") for i in ds.images()), what="the bulk edit on disk")
    page.locator(".lnb-undo").click()
    wait_until(lambda: not any(i.caption.startswith("lnbtrig") for i in ds.images()), what="the undo on disk")
    assert any(i.caption == "alice, edited in the browser" for i in ds.images())

    # training: load the preset, start, watch it move
    tab(page, "Training")
    page.wait_for_selector(".lnb-preset-select select")
    page.locator(".lnb-preset-select select").select_option(label="browser-flux")
    page.locator(".lnb-preset-load").click()
    shot(page, "4-training")
    page.locator(".lnb-train-start").click()
    job = wait_until(lambda: (ws.jobs.list(kind="training") or [None])[-1], what="the training job")
    assert job.meta["expected_steps"] == 400                    # the preset's settings reached the run (steps, no epochs)
    page.wait_for_selector(".lnb-job-monitor .lnb-loss-svg", timeout=90_000)

    def last_step() -> float:
        svg = page.locator(".lnb-job-monitor .lnb-loss-svg").first
        return float(svg.get_attribute("data-last-step") or 0) if svg.count() else 0.0

    a = wait_until(last_step, timeout=90, what="a first loss point")
    wait_until(lambda: last_step() > a, timeout=60, what="the loss chart to move without any user action")
    bar = float(page.locator(".lnb-job-monitor .lnb-job-progress .progress-bar").first.evaluate("e => parseFloat(e.style.width) || 0"))
    assert job.status is JobStatus.RUNNING
    shot(page, "5-jobs-running")

    # reload: a new kernel attaches to the same run, still live
    page.reload()
    try:
        page.wait_for_selector(".lnb-dashboard", timeout=180_000)  # a new kernel starts: slow on a busy 2-core box
    except Exception:
        shot(page, "reload-failed")
        (ARTIFACTS / "reload-failed.html").write_text(page.content())
        raise
    tab(page, "Jobs")
    page.wait_for_selector(".lnb-job-status[data-status=running]", timeout=60_000)
    b = wait_until(last_step, timeout=60, what="the loss chart after the reload")
    wait_until(lambda: last_step() > b, timeout=60, what="live updates after the reload")
    bar2 = float(page.locator(".lnb-job-monitor .lnb-job-progress .progress-bar").first.evaluate("e => parseFloat(e.style.width) || 0"))
    assert bar2 >= bar
    shot(page, "6-jobs-after-reload")

    # stop it
    page.locator(".lnb-job-stop").click()
    assert job.wait(60) is JobStatus.STOPPED
    page.wait_for_selector(".lnb-job-status[data-status=stopped]", timeout=30_000)
    shot(page, "7-jobs-stopped")
    for title, name in (("Tagging", "8-tagging"), ("LoRA tools", "9-lora"), ("Models", "10-models")):
        tab(page, title)
        page.wait_for_timeout(800)
        shot(page, name)
    (ARTIFACTS / "timings.txt").write_text(f"time to interactive dashboard: {interactive:.1f} s\n")


def test_a_cancelled_upload_leaves_nothing_behind(server, page, tmp_path):
    """Cancel in the middle of a 200 MB upload (a sparse file: only the slices sent before Cancel are
    ever written): the part file is removed, nothing lands in the dataset, and the uploader still works."""
    url, ws = server
    tab(page, "Datasets")
    big = tmp_path / "huge.zip"
    with open(big, "wb") as f:
        f.truncate(200 * 2**20)
    status = page.locator(".lnb-upload .lnb-upload-status").first
    page.locator(".lnb-upload input[type=file]").set_input_files(str(big))
    page.wait_for_function("() => { const b = document.querySelector('.lnb-upload progress'); return b && b.value > 0; }")
    page.locator(".lnb-upload .lnb-upload-cancel").first.click()
    wait_until(lambda: "Cancelled huge.zip" in status.inner_text(), what="the cancelled status")
    uploads = ws.tmp_dir / "uploads"
    wait_until(lambda: not list(uploads.glob(".upload-*")), what="the part file to be removed")
    assert not (uploads / "huge.zip").exists() and not any(p.name.startswith("huge") for p in ws.datasets.get("alice").path.rglob("*"))
    shot(page, "11-upload-cancelled")
    # the same widget takes the next file
    small = tmp_path / "one.zip"
    with zipfile.ZipFile(small, "w") as z:
        b = io.BytesIO()
        Image.new("RGB", (64, 64), (10, 200, 30)).save(b, "PNG")
        z.writestr("after_cancel.png", b.getvalue())
    page.locator(".lnb-upload input[type=file]").set_input_files(str(small))
    wait_until(lambda: any(i.path.name == "after_cancel.png" for i in ws.datasets.get("alice").images()), timeout=60,
               what="the upload after a cancel")
