"""Shared widget helpers: the rate limiter, the one-sentence banner, the background runner."""
from __future__ import annotations

import threading
import time


from lora_nb.errors import InvalidName
from lora_nb.widgets.common import ErrorBanner, Runner, Throttle, fmt_bytes, fmt_duration, one_sentence


def test_throttle_bounds_the_rate_and_always_draws_the_last_state():
    seen = []
    state = {"v": 0}
    t = Throttle(lambda: seen.append(state["v"]), rate=10)
    start = time.monotonic()
    threads = []
    for k in range(4):      # four threads hammering it, like a follower plus timers
        def hammer(k=k):
            for i in range(500):
                state["v"] = k * 1000 + i
                t.trigger()
                time.sleep(0.0005)
        threads.append(threading.Thread(target=hammer))
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    state["v"] = "final"
    t.trigger()
    time.sleep(0.25)
    elapsed = time.monotonic() - start
    assert seen[-1] == "final"
    assert len(seen) <= elapsed * 10 + 2, (len(seen), elapsed)
    assert len(seen) >= 2


def test_throttle_keeps_running_after_a_drawing_error():
    calls = []

    def draw():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("widget gone")
    t = Throttle(draw, rate=100)
    t.trigger()
    time.sleep(0.02)
    t.trigger()
    t.flush()
    assert len(calls) == 2 and isinstance(t.errors[0], RuntimeError)


def test_banner_shows_one_sentence_never_a_traceback():
    b = ErrorBanner()
    b.error(InvalidName("'../x' is not a valid dataset name.", fix="Use letters and digits."))
    assert b.text == "'../x' is not a valid dataset name. Use letters and digits." and b.kind == "error"
    b.error(RuntimeError("boom\nTraceback (most recent call last):\n  File x"))
    assert b.text == "RuntimeError: boom"
    b2 = ErrorBanner()
    b2.error("<script>alert(1)</script>")
    assert "<script>" not in b2.value and "&lt;script&gt;" in b2.value
    b.clear()
    assert b.value == "" and b.text == ""


def test_guard_catches_handler_errors_into_the_banner():
    b = ErrorBanner()

    @b.guard
    def handler(_):
        raise ValueError("Type a name first.")
    assert handler(None) is None
    assert b.text == "Type a name first."


def test_runner_reports_errors_and_waits():
    b = ErrorBanner()
    r = Runner(b)
    out = []
    r.submit(lambda: 41 + 1, on_done=out.append)
    r.submit(lambda: 1 / 0)
    r.idle(5)
    assert out == [42] and b.text.startswith("ZeroDivisionError")


def test_formatting():
    assert fmt_bytes(None) == "?" and fmt_bytes(10) == "10 B" and fmt_bytes(3 * 1024**3) == "3.0 GB"
    assert fmt_duration(3725) == "1:02:05" and fmt_duration(65) == "1:05" and fmt_duration(None) == "?"
    assert one_sentence("") == "Something went wrong."


def test_lora_nb_core_still_imports_no_ipywidgets():
    import subprocess
    import sys

    code = ("import sys, lora_nb, lora_nb.system, lora_nb.jobs.manager, lora_nb.datasets; "
            "print(any(m.split('.')[0] in ('ipywidgets', 'IPython') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_runner_latest_keeps_only_the_newest_request():
    r = Runner(ErrorBanner())
    gate = threading.Event()
    ran = []
    r.submit(gate.wait, 5)                     # the worker is busy
    for i in range(50):                        # e.g. 50 keystrokes in the search box
        r.latest("preview", ran.append, i)
    gate.set()
    r.idle(5)
    assert ran == [49]
    r.latest("preview", lambda: 1 / 0)
    r.idle(5)
    assert r.banner.text.startswith("ZeroDivisionError")
