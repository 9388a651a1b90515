"""Run comparison in the real `lora-nb dashboard` (Voila) driven by headless Debian Chromium.

Two REAL finished runs of the STAND-IN sd-scripts (tests/engines/fake_sdscripts, recorded real output)
on the demo dataset, differing in network_dim; the Runs tab lists them, search narrows the table, and
Compare draws both loss curves and the one option that differs. Screenshot:
test-artifacts/browser/runs-compare.png (or $LORA_NB_TEST_ARTIFACTS).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import lora_nb
from lora_nb.config import TrainingConfig
from lora_nb.progress.events import JobStatus
from support import BROWSER_ARTIFACTS, CHROMIUM_ARGS, free_port, wait_port

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed (apt-get install chromium)")]

STANDIN_SDSCRIPTS = Path(__file__).resolve().parents[1] / "engines" / "fake_sdscripts"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from lora_nb.demo import make_dataset

    tmp = tmp_path_factory.mktemp("runs")
    root = tmp / "ws"
    ws = lora_nb.Workspace(root)
    ws.settings.set("kohya_dir", str(STANDIN_SDSCRIPTS))
    ws.settings.set("kohya_python", sys.executable)
    ws.settings.set("kohya_launcher", "python")
    make_dataset(ws, name="demo", n=8, size=(64, 64))
    model = tmp / "sd15.safetensors"
    model.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    os.environ["LORA_NB_STANDIN_SPEED"] = "0.01"
    jobs = [ws.jobs.submit_training(TrainingConfig(dataset="demo", pretrained_model_name_or_path=str(model), resolution="64",
                                                   min_bucket_reso=64, max_bucket_reso=128, train_batch_size=1, max_train_epochs=1,
                                                   mixed_precision="no", optimizer_type="AdamW", trigger_words=["lnbdemo"],
                                                   output_name=name, network_dim=dim))
            for name, dim in (("small", 4), ("large", 32))]
    for j in jobs:
        assert j.wait(120) is JobStatus.SUCCEEDED, j.error
    port = free_port()
    log_path = tmp / "dashboard.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "lora_nb.cli", "-w", str(root), "dashboard", "--port", str(port), "--no-browser"],
                            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"), start_new_session=True)
    wait_port(proc, port, log_path)
    yield f"http://127.0.0.1:{port}/", jobs
    os.killpg(proc.pid, 15)
    proc.wait(30)


def test_compare_two_runs_in_the_runs_tab(server):
    from playwright.sync_api import sync_playwright

    url, (small, large) = server
    BROWSER_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        page = b.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(url)
        page.wait_for_selector(".lnb-dashboard", timeout=240_000)
        page.locator(".lnb-tabs .lm-TabBar-tab", has_text="Runs").first.click()
        page.wait_for_selector(".lnb-runs-table tr[data-run]")
        assert page.locator(".lnb-runs-table tr[data-run]").count() == 2
        assert "small.safetensors" in page.locator(".lnb-runs-table").inner_text()
        search = page.locator(".lnb-runs-search input")
        search.fill("large")
        search.press("Enter")
        page.wait_for_function("() => document.querySelectorAll('.lnb-runs-table tr[data-run]').length === 1")
        search.fill("")
        search.press("Enter")
        page.wait_for_function("() => document.querySelectorAll('.lnb-runs-table tr[data-run]').length === 2")
        assert page.locator("button.lnb-runs-compare").is_disabled()
        page.locator(".lnb-runs-pick select").select_option(label=[f"small · succeeded · {small.id}", f"large · succeeded · {large.id}"])
        button = page.locator("button.lnb-runs-compare")
        page.wait_for_function("() => !document.querySelector('button.lnb-runs-compare').disabled")
        button.click()
        page.wait_for_selector(".lnb-compare-svg polyline", timeout=60_000)
        assert page.locator(".lnb-compare-svg polyline").count() == 2
        diff = page.locator(".lnb-compare-diff").inner_text()
        assert "network_dim" in diff and "32" in diff and "resolution" not in diff
        page.screenshot(path=str(BROWSER_ARTIFACTS / "runs-compare.png"), full_page=True)
        b.close()
