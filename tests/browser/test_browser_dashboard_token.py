"""The dashboard's token, on the real `lora-nb dashboard` (a Voila server) driven by headless Debian Chromium.

Voila's own behaviour (jupyter_server's token login) is asserted as it is: a visit without the token, or with
a wrong one, is redirected (302) to the server's login page, which asks for the token; no dashboard is
rendered and no kernel is started for it. A kernel API call without the token is refused (403). The run
outputs under /voila/files/ are behind the token as well (Voila serves them with an unauthenticated handler;
lora_nb.widgets.voila_serve puts it behind the login). A visit with ?token= renders the dashboard, and its
cookie then fetches a run output. The token given in $LORA_NB_TOKEN is printed in the URL to the terminal
and nowhere else: not on the server's command line, not in its kernel's environment.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

import lora_nb
from support import BROWSER_ARTIFACTS, CHROMIUM_ARGS, free_port, wait_for, wait_port

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed (apt-get install chromium)")]

TOKEN = "lnb-tok-7f3a9c2e5b1d4e6f"
RUN = "20260101-000000-abcd"
LORA = f"runs/{RUN}/output/alice.safetensors"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("token") / "ws"
    lora_nb.Workspace(root)
    out = root / "runs" / RUN / "output"
    out.mkdir(parents=True)
    (out / "alice.safetensors").write_bytes(b"lora bytes")
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1", LORA_NB_TOKEN=TOKEN)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    log_path = tmp_path_factory.mktemp("logs") / "dashboard.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "lora_nb.cli", "-w", str(root), "dashboard", "--port", str(port), "--no-browser"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    wait_port(proc, port, log_path)
    yield f"http://127.0.0.1:{port}", proc, log_path
    os.killpg(proc.pid, 15)
    proc.wait(30)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    BROWSER_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def kernels(proc) -> list[psutil.Process]:
    """The server's kernels: its ipykernel child processes."""
    return [c for c in psutil.Process(proc.pid).children(recursive=True) if "ipykernel" in " ".join(c.cmdline())]


def test_without_the_token_the_login_page_and_nothing_else(server, browser):
    base, proc, _ = server
    ctx = browser.new_context(viewport={"width": 1200, "height": 800})
    page = ctx.new_page()
    for url in (f"{base}/", f"{base}/?token=wrong-{TOKEN}"):
        first = ctx.request.get(url, max_redirects=0)
        assert first.status == 302 and "/login?next=" in first.headers["location"], (first.status, first.headers)
        page.goto(url)
        assert "/login?next=" in page.url
        assert page.locator("input[type=password]").count() >= 1       # the server asks for the token
        assert page.locator(".lnb-dashboard").count() == 0
        assert "lora-nb" not in page.title()
    page.screenshot(path=str(BROWSER_ARTIFACTS / "dashboard-token-refused.png"), full_page=True)
    # a run output is behind the token too (without lora_nb.widgets.voila_serve Voila would send the bytes)
    files = ctx.request.get(f"{base}/voila/files/{LORA}", max_redirects=0)
    assert files.status == 302 and "/login?next=" in files.headers["location"]
    assert ctx.request.get(f"{base}/voila/files/{LORA}?token=wrong", max_redirects=0).status == 302
    # the kernel API refuses (jupyter_server's 403 for a request without the token)
    assert ctx.request.post(f"{base}/api/kernels", max_redirects=0).status == 403
    time.sleep(1)
    assert kernels(proc) == [], "a visit without the token started a kernel"
    ctx.close()


def test_with_the_token_the_dashboard_is_served(server, browser):
    base, proc, log_path = server
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(240_000)     # a new kernel on a busy 2-core box
    page.goto(f"{base}/?token={TOKEN}")
    page.wait_for_selector(".lnb-dashboard")
    page.wait_for_selector("text=Datasets")
    assert "/login" not in page.url
    page.screenshot(path=str(BROWSER_ARTIFACTS / "dashboard-token-served.png"), full_page=False)
    wait_for(lambda: len(kernels(proc)) == 1, timeout=30)
    # the page's cookie (set by the token login) fetches a run output; the header form works without a cookie
    got = ctx.request.get(f"{base}/voila/files/{LORA}")
    assert got.status == 200 and got.body() == b"lora bytes"
    req = urllib.request.Request(f"{base}/voila/files/{LORA}", headers={"Authorization": f"token {TOKEN}"})
    assert urllib.request.urlopen(req, timeout=30).read() == b"lora bytes"
    with pytest.raises(urllib.error.HTTPError) as denied:   # the database stays off limits, token or not
        urllib.request.urlopen(urllib.request.Request(f"{base}/voila/files/lora_nb.db", headers={"Authorization": f"token {TOKEN}"}), timeout=30)
    assert denied.value.code == 403
    # the token: printed once, in the URL for the terminal; never on a command line nor in a kernel's environment
    printed = Path(log_path).read_text()
    assert f"http://127.0.0.1:{base.rsplit(':', 1)[1]}/?token={TOKEN}" in printed and printed.count(TOKEN) == 1
    server_proc = psutil.Process(proc.pid)
    assert TOKEN not in " ".join(server_proc.cmdline()) and "lora_nb.widgets.voila_serve" in server_proc.cmdline()
    for k in kernels(proc):
        assert TOKEN not in " ".join(k.cmdline())
        assert TOKEN not in "".join(f"{n}={v}" for n, v in k.environ().items())
    ctx.close()
