"""The dashboard of issue 15, without a browser: lazy tabs (a panel is built only when its tab is opened),
the first-run card, next-step buttons along the flow, the Runs entry only where its module exists, help
text on every training option, the compact header's chips, tag counts off the kernel's thread (with a
staleness guard, the grid usable meanwhile), and a 10,000-image gallery page in under a second."""
from __future__ import annotations

import io
import sys
import threading
import time
from collections import Counter

from PIL import Image

import lora_nb.widgets.dashboard as dash_mod
from lora_nb import TrainingConfig
from lora_nb.widgets import CaptionGrid, Dashboard, DatasetPanel, SystemHeader, TrainingPanel


def test_only_the_first_tab_is_built_until_another_is_opened(ws):
    for mod in ("lora_nb.widgets.training", "lora_nb.widgets.lora", "lora_nb.widgets.models"):
        sys.modules.pop(mod, None)
    d = Dashboard(ws, live=False)
    try:
        assert d.built() == ["Datasets"]
        assert [len(d.boxes[i].children) for i in range(1, len(d.boxes))] == [0] * (len(d.boxes) - 1)
        assert "lora_nb.widgets.training" not in sys.modules            # its import is deferred too
        d.tabs.selected_index = d.titles.index("Training")
        assert d.built() == ["Datasets", "Training"] and "lora_nb.widgets.training" in sys.modules
        assert type(d.boxes[d.titles.index("Training")].children[-1]).__name__ == "TrainingPanel"
        assert "Models" not in d.built()
        d.models                                                          # reading a panel builds it
        assert "Models" in d.built()
    finally:
        d.close()


def test_adding_a_tab_is_one_entry_and_runs_shows_only_where_its_module_exists(ws, monkeypatch):
    monkeypatch.setattr(dash_mod, "_runs_available", lambda: False)
    assert "Runs" not in [t for t, _, _ in dash_mod.tab_entries()]
    monkeypatch.setattr(dash_mod, "_runs_available", lambda: True)
    assert [t for t, _, _ in dash_mod.tab_entries()].index("Runs") == [t for t, _, _ in dash_mod.TABS].index("Jobs") + 1
    built = []
    monkeypatch.setattr(dash_mod, "TABS", dash_mod.TABS + [("Extra", "extra", lambda d: built.append(1) or __import__("ipywidgets").HTML("x"))])
    monkeypatch.setattr(dash_mod, "_runs_available", lambda: False)
    d = Dashboard(ws, live=False)
    try:
        assert d.titles[-1] == "Extra" and built == []
        d.go("Extra")
        assert built == [1] and d.built()[-1] == "Extra"
    finally:
        d.close()


def test_a_panel_that_cannot_build_says_why_in_its_tab(ws, monkeypatch):
    def broken(d):
        raise RuntimeError("no such engine")
    monkeypatch.setattr(dash_mod, "TABS", dash_mod.TABS + [("Broken", "broken", broken)])
    d = Dashboard(ws, live=False)
    try:
        d.go("Broken")
        box = d.boxes[d.titles.index("Broken")]
        assert "cannot open" in box.children[0].value and "no such engine" in box.children[0].value
        assert d.tabs.selected_index == d.titles.index("Broken")          # the dashboard goes on
    finally:
        d.close()


def test_first_run_card_on_an_empty_workspace_and_import_opens_the_datasets_import(ws):
    d = Dashboard(ws, live=False)
    try:
        assert d.first_run.layout.display == "" and d.first_run.demo is d.demo
        assert d.demo.button.description == "Try the demo"
        d.go("Training")
        d.first_run.import_button.click()
        assert d.tabs.selected_index == 0
        d.datasets.name_box.value = "mine"
        d.datasets.create_button.click()
        assert d.first_run.layout.display == "none"                       # not empty any more: the card goes
    finally:
        d.close()
    d2 = Dashboard(ws, live=False)
    try:
        assert d2.first_run.layout.display == "none"
    finally:
        d2.close()


def _png() -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(b, "PNG")
    return b.getvalue()


def test_each_step_shows_the_next_once_its_work_is_done(ws):
    d = Dashboard(ws, live=False)
    try:
        assert d.hints["Datasets"].layout.display == "none"               # nothing done yet
        ds = ws.datasets.create("flow")
        (ds.path / "a.png").write_bytes(_png())
        d.datasets.refresh(select="flow")
        hint = d.hints["Datasets"]
        assert hint.layout.display == "" and "1 images" in hint.text.value and hint.button.description == "Next: tag them"
        hint.button.click()
        assert d.titles[d.tabs.selected_index] == "Tagging"
        assert d.hints["Tagging"].layout.display == "none"                # not tagged yet
        (ds.path / "a.txt").write_text("red, square\n")
        d._tagging_done(None)
        assert d.hints["Tagging"].button.description == "Next: check the captions"
        d.hints["Tagging"].button.click()
        assert d.titles[d.tabs.selected_index] == "Captions" and d.hints["Captions"].target == "Training"
    finally:
        d.close()


def test_every_training_option_has_a_one_line_help_text(ws):
    props = TrainingConfig.ui_schema()["properties"]
    missing = [k for k, v in props.items() if not v.get("description")]
    assert missing == []
    assert all("\n" not in v["description"] and len(v["description"]) <= 160 for v in props.values())
    p = TrainingPanel(ws)
    p.runner.idle()
    f = p.fields["save_every_n_steps"]
    f.show("")
    assert "lnb-help" in f.error.value and "checkpoint" in f.error.value and f.widget.tooltip == f.help


def test_header_has_chips_for_the_gpu_ram_disk_and_the_running_job(ws):
    from support import standin

    h = SystemHeader(ws, interval=0)
    assert "lnb-chip" in h.value and "RAM" in h.value and "free" in h.value and "no job running" in h.value
    job = ws.jobs.submit_command(standin("--steps", "400", "--delay", "0.05"), name="hdr run", parser="kohya", kind="training",
                                 uses_gpu=False)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and "hdr run" not in h.value:
            h.refresh(gpu=False)
            time.sleep(0.2)
        assert "hdr run" in h.value and "lnb-chip-run" in h.value
    finally:
        job.stop(grace=2)
        h.close()


def test_tag_counts_come_from_a_background_thread_and_stale_results_are_dropped(ws, demo_ds, monkeypatch):
    from lora_nb.captions.api import Captions

    real = Captions.frequencies
    gate = threading.Event()
    calls: list[str] = []

    def slow(self, selection=None):
        calls.append(threading.current_thread().name)
        gate.wait(20)
        return real(self, selection)

    monkeypatch.setattr(Captions, "frequencies", slow)
    g = CaptionGrid(ws, dataset="demo")
    g.runner.idle()
    assert not any(getattr(b, "tag", None) for b in g.chip_buttons)     # still counting ...
    assert "counting tags" in g.filter_label.value
    g.go(1)                                                              # ... and the grid is usable meanwhile
    assert g.page == 1 and g.texts[0].value
    gen = g._tag_generation
    g._show_chips(gen - 1, [("stale", 99)])                              # an older request's answer is ignored
    assert not any(getattr(b, "tag", None) == "stale" for b in g.chip_buttons)
    gate.set()
    g.tag_runner.idle()
    assert calls and all(name.startswith("lnb-caption-tags") for name in calls)
    chips = {b.tag: b for b in g.chip_buttons if getattr(b, "tag", None)}
    assert chips["lnbdemo"].description == "lnbdemo (30)" and "counting" not in g.filter_label.value


def make_big(ws, name: str, n: int):
    ds = ws.datasets.create(name)
    data = _png()
    for i in range(n):
        (ds.path / f"{name}-{i:05d}.png").write_bytes(data)
        (ds.path / f"{name}-{i:05d}.txt").write_text(f"tag{i % 50}, red\n")
    return ds


def test_a_10000_image_dataset_opens_its_gallery_page_in_under_a_second(ws):
    make_big(ws, "big", 10_000)
    ws.datasets.create("empty")
    p = DatasetPanel(ws)
    p.runner.idle()
    p.select.value = "empty"
    p.runner.idle()
    t = time.perf_counter()
    p.select.value = "big"
    p.runner.idle()                          # thumbnails of the first page made and shown
    took = time.perf_counter() - t
    assert "10,000 images" in p.gallery.page_label.value and all(img.value for img in p.gallery.images)
    assert took < 1.0, took


FIRST_PAGE_MODELS = 170     # widget models an empty workspace's dashboard opens with (154 when this was written)


def test_the_first_page_opens_few_widget_models_and_the_gallery_cells_wait_for_images(ws):
    """Every widget model is a comm the browser must open and draw before the page is interactive: the first page
    keeps them few. The Datasets gallery's 20 re-used cells (about 100 models) are made the first time a dataset
    with images is shown, not for an empty workspace or an empty dataset."""
    from ipywidgets.widgets.widget import _instances

    before = set(_instances)
    d = Dashboard(ws, live=False)
    try:
        made = [w for k, w in list(_instances.items()) if k not in before]
        assert len(made) <= FIRST_PAGE_MODELS, (len(made), Counter(type(w).__name__ for w in made).most_common(8))
        g = d.datasets.gallery
        assert g.cells == [] and g.grid.children == () and "no images" in g.page_label.value
        ws.datasets.create("empty")
        d.datasets.refresh(select="empty")
        assert g.cells == []                                           # still nothing to show
        make_big(ws, "few", 25)
        d.datasets.refresh(select="few")
        d.datasets.runner.idle()
        assert len(g.cells) == 20 and list(g.grid.children) == g.cells and all(img.value for img in g.images)
        cells = list(g.cells)
        d.datasets.refresh(select="empty")
        d.datasets.refresh(select="few")
        assert g.cells == cells                                        # made once, then re-used
    finally:
        d.close()


def test_the_header_leaves_its_full_read_until_the_page_is_drawn(ws, monkeypatch):
    """The first paint (kernel thread) shows RAM and disk without loading the job manager; the refresh thread's
    first full read (GPU, jobs) waits for the browser's first presence ping, so it does not compete with drawing
    the first page."""
    from lora_nb.widgets.common import PRESENCE

    monkeypatch.setattr(PRESENCE, "timeout", None)        # no browser has pinged yet (restored after the test)
    monkeypatch.setattr(PRESENCE, "last", 0.0)
    h = SystemHeader(ws, interval=60)
    try:
        assert "RAM" in h.value and "jobs: checking" in h.value and "jobs" not in vars(ws)
        time.sleep(0.5)
        assert "jobs" not in vars(ws)                       # still waiting for the page
        PRESENCE.ping(interval=30.0)
        deadline = time.time() + 30
        while time.time() < deadline and "no job running" not in h.value:
            time.sleep(0.05)
        assert "no job running" in h.value and "jobs: checking" not in h.value
    finally:
        h.close()
