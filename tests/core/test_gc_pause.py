"""gc_paused: the collector is off inside, back on after (also on errors and when nested), and never
turned on by a pause that found it off. Bulk caption work runs under it and leaves it as it was."""
from __future__ import annotations

import gc
import threading

import pytest

from lora_nb.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def _gc_on():
    gc.enable()
    yield
    gc.enable()


def test_nested_pauses_restore_only_at_the_outermost_end():
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_inside_still_restores_the_collector():
    with pytest.raises(ZeroDivisionError):
        with gc_paused():
            1 / 0
    assert gc.isenabled()


def test_a_collector_the_user_turned_off_stays_off():
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_overlapping_pauses_in_two_threads_end_with_the_collector_on():
    inside, release = threading.Event(), threading.Event()

    def other():
        with gc_paused():
            inside.set()
            release.wait(5)

    t = threading.Thread(target=other)
    t.start()
    inside.wait(5)
    with gc_paused():
        release.set()
        t.join(5)
        assert not gc.isenabled()       # the other thread's pause ended; this one is still running
    assert gc.isenabled()


def test_bulk_caption_work_leaves_the_collector_as_it_was(tmp_path):
    import lora_nb
    ws = lora_nb.Workspace(tmp_path / "ws")
    ds = ws.datasets.create("d")
    ds.add_images([("a.png", _png())])
    ds.captions.set("a.png", "cat")
    assert ds.captions.add_trigger("ohwx").changed == 1
    assert gc.isenabled()
    assert ds.captions.undo().changed == 1
    assert gc.isenabled()
    ds.captions.add_trigger("ohwx")
    assert ds.captions.frequencies() == {"ohwx": 1, "cat": 1}
    assert gc.isenabled()


def _png() -> bytes:
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, "PNG")
    return buf.getvalue()
