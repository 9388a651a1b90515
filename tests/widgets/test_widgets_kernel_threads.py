"""Widget updates made from a background thread leave a real ipykernel as comm messages on IOPub
(the path a browser receives them on; broken in ipykernel 7.0.x). A real kernel is started with
jupyter_client; no browser is involved (the browser suite checks the page itself)."""
from __future__ import annotations

import queue
import time

import pytest

CODE = """
import threading, time, ipywidgets as W
from lora_nb.widgets.common import Throttle
bar = W.IntProgress(value=0, max=100)
state = {"v": 0}
def draw():
    bar.value = state["v"]
t = Throttle(draw, rate=20)
def work():
    for i in range(1, 101):
        state["v"] = i
        t.trigger()
        time.sleep(0.005)
    time.sleep(0.2)
threading.Thread(target=work, daemon=True).start()
"""


def test_updates_from_a_thread_reach_iopub():
    jupyter_client = pytest.importorskip("jupyter_client")
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="python3")
    try:
        kc.execute(CODE)
        values, deadline = [], time.monotonic() + 30
        while time.monotonic() < deadline and (not values or values[-1] != 100):
            try:
                msg = kc.get_iopub_msg(timeout=1)
            except queue.Empty:
                continue
            if msg["msg_type"] == "error":
                pytest.fail("\n".join(msg["content"]["traceback"]))
            if msg["msg_type"] == "comm_msg":
                state = msg["content"]["data"].get("state", {})
                if "value" in state:
                    values.append(state["value"])
        assert values and values[-1] == 100, values       # the last state always arrives
        assert 2 <= len(values) <= 40, values               # and at a bounded rate (20/s over ~0.6 s), not 100 messages
        assert values == sorted(values)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
