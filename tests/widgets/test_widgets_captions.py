"""CaptionGrid: editing, selection, bulk toolbar with preview, undo, tag chips."""
from __future__ import annotations

from lora_nb.widgets import CaptionGrid


def _grid(ws, **kw):
    g = CaptionGrid(ws, dataset="demo", **kw)
    g.runner.idle()
    return g


def test_editing_a_caption_writes_the_file(ws, demo_ds):
    g = _grid(ws, page_size=8)
    first = g._visible()[0]
    assert g.texts[0].value == demo_ds.captions.get(first)
    g.texts[0].value = "lnbdemo, edited by hand"
    cap = demo_ds.captions.path_for(first)
    assert cap.read_text() == "lnbdemo, edited by hand" and "Saved" in g.banner.text
    g.next_button.click()
    g.prev_button.click()
    assert g.texts[0].value == "lnbdemo, edited by hand"


def test_cells_are_reused_across_pages(ws, demo_ds):
    g = _grid(ws, page_size=8)
    texts = list(g.texts)
    assert g.pages == 4
    g.go(3)
    g.runner.idle()
    assert g.texts == texts and sum(c.layout.display != "none" for c in g.cells) == 6
    assert all(img.value[:2] == b"\xff\xd8" for img in g.images[:6])


def test_bulk_preview_apply_and_undo(ws, demo_ds):
    g = _grid(ws)
    before = {str(i.path): i.caption for i in demo_ds.images()}
    g.op.value = "add_trigger"
    g.arg1.value = "mytrigger"
    g.where.value = "end"
    g.runner.idle()
    assert g.preview_label.value == "would change 30 of 30 captions" and g.preview_count == 30
    assert all(demo_ds.captions.get(p) == c for p, c in before.items())      # a preview changes nothing
    g.apply_button.click()
    assert all(demo_ds.captions.get(p).endswith(", mytrigger") for p in before)
    assert "changed 30 of 30" in g.banner.text and g.texts[0].value.endswith("mytrigger")
    g.runner.idle()
    assert g.preview_label.value == "would change 0 of 30 captions"            # idempotent
    g.undo_button.click()
    assert {p: demo_ds.captions.get(p) for p in before} == before and "restored 30" in g.banner.text
    g.undo_button.click()
    assert g.banner.kind == "error" and "no caption edit to undo" in g.banner.text


def test_bulk_applies_to_the_selection_only(ws, demo_ds):
    g = _grid(ws, page_size=6)
    g.checks[0].value = True
    g.checks[2].value = True
    assert "2 selected" in g.selection_label.value
    chosen = [g._visible()[0], g._visible()[2]]
    g.op.value = "replace"
    g.arg1.value = "lnbdemo"
    g.arg2.value = "zzz"
    g.runner.idle()
    assert g.preview_label.value == "would change 2 of 2 captions"
    g.apply_button.click()
    changed = [i for i in demo_ds.images() if i.caption.startswith("zzz")]
    assert sorted(str(i.path) for i in changed) == sorted(chosen)
    g.select_none_button.click()
    assert g.selected == set() and g.scope() is None
    g.select_all_button.click()
    assert len(g.selected) == 30


def test_tag_chips_filter_the_grid(ws, demo_ds):
    g = _grid(ws)
    g.tag_runner.idle()                                           # tag counts come from a background thread
    chips = {b.tag: b for b in g.chip_buttons if getattr(b, "tag", None)}
    assert chips["lnbdemo"].description == "lnbdemo (30)"
    bg = next(t for t in chips if t.endswith("background"))
    n = int(chips[bg].description.rsplit("(", 1)[1].rstrip(")"))
    chips[bg].value = True
    assert len(g.files) == n < 30 and all(bg in demo_ds.captions.get(f) for f in g.files)
    assert g.scope() == g.files                                   # bulk edits follow the filter
    g.clear_filter_button.click()
    assert len(g.files) == 30 and not chips[bg].value


def test_bad_bulk_input_is_one_sentence(ws, demo_ds):
    g = _grid(ws)
    g.op.value = "remove"
    g.arg1.value = ""
    g.runner.idle()
    assert "type the tags to see how many captions change" in g.preview_label.value and g.preview_count is None
    g.apply_button.click()
    assert g.banner.kind == "error" and g.banner.text == "No tags were given. Type the tags, comma separated."
    g.op.value = "sort"
    g.arg1.value = "two"
    g.apply_button.click()
    assert "whole number" in g.banner.text
