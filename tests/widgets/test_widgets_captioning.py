"""CaptioningPanel (the captioning section of the Tagging panel), driven without a browser: set values, click, wait
for the jobs. The models are small RANDOM Florence-2 / JoyCaption models of the real architectures (the session
fixtures ``florence`` and ``joy`` of tests/conftest.py): real transformers generate in real subprocess jobs, real
caption files, real undo journal."""
from __future__ import annotations

import shutil

from lora_nb.demo import make_dataset
from lora_nb.progress.events import JobStatus
from lora_nb.widgets import TaggingPanel
from lora_nb.widgets.captioning import CaptioningPanel
from support import wait_for


def _wait_final(p, job, timeout=180):
    assert job.wait(timeout) in (JobStatus.SUCCEEDED, JobStatus.STOPPED, JobStatus.FAILED), job.status
    wait_for(lambda: p.active is None, timeout=20)          # the panel's on_final has run
    p.runner.idle()


def test_preview_on_4_images_then_caption_all_then_undo(ws, florence):
    ds = make_dataset(ws, name="raw", n=6, size=(64, 64), captions=False)
    p = CaptioningPanel(ws, dataset="raw")
    p.custom.value = str(florence)
    p.mode.value = "detailed"
    p.max_tokens.value = 6
    p.trigger.value = "ohwx"
    p.batch.value = 3
    p.preview_button.click()
    assert p.banner.kind == "info", p.banner.text
    assert p.start_button.disabled and p.preview_button.disabled and not p.stop_button.disabled   # one job at a time
    _wait_final(p, p.preview_job)
    assert p.preview_job.status is JobStatus.SUCCEEDED, p.preview_job.error
    shown = [c for c in p.cards if c.layout.display != "none"]
    assert len(shown) == 4 and p.preview_box.layout.display != "none"
    for card in shown:
        image, text = card.children
        assert image.value[:2] == b"\xff\xd8"                            # a JPEG thumbnail of the image
        assert "ohwx, " in text.value
    assert all(i.caption is None for i in ds.images())                   # a preview writes nothing
    assert p.undo_button.disabled and "no captioning job" in p.undo_button.tooltip

    p.start_button.click()
    job = p.job
    assert job is not None and job.meta["preview"] is False
    _wait_final(p, job)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.progress.rate_unit == "img/s" and job.progress.rate and (job.progress.step, job.progress.total_steps) == (6, 6)
    assert "img/s" in p.line.label.value and "6/6" in p.line.label.value and p.line.bar.value == 1.0
    captions = [i.caption for i in ds.images()]
    assert all(c and c.startswith("ohwx, ") for c in captions)
    preview = [c.children[1].value for c in shown]
    assert all(caption.split(", ", 1)[1] in html for caption, html in zip(captions, preview))   # the preview showed them
    assert not p.undo_button.disabled and p.stop_button.disabled

    p.undo_button.click()
    p.runner.idle()
    assert all(i.caption is None for i in ds.images())
    assert p.undo_button.disabled and "already undone" in p.undo_button.tooltip and "6 captions" in p.banner.text


def test_stop_ends_the_job_with_whole_captions_and_undo_is_offered(ws, florence, tmp_path):
    ds = make_dataset(ws, name="many", n=40, size=(64, 64), captions=False)
    p = CaptioningPanel(ws, dataset="many")
    p.custom.value = str(florence)
    p.max_tokens.value = 40
    p.batch.value = 1
    p.start_button.click()
    wait_for(lambda: (p.job.progress.step or 0) >= 2, timeout=180)
    # the line is redrawn at a bounded rate from its own thread: it catches up with the job shortly after
    wait_for(lambda: "ETA" in p.line.label.value or p.job.status.is_final, timeout=30, what="the job line shows the ETA")
    p.stop_button.click()
    _wait_final(p, p.job)
    assert p.job.status is JobStatus.STOPPED
    written = [i for i in ds.images() if i.caption_path.exists()]
    assert 0 < len(written) < 40 and all(i.caption and "\n" not in i.caption for i in written)
    assert "Captioning ended stopped" in p.banner.text
    assert not p.undo_button.disabled                                     # the captions it wrote are one undo step
    ds.captions.add_trigger("zz")                                          # another edit comes after the job ...
    p._undo_state()
    assert p.undo_button.disabled and "is 'add_trigger zz" in p.undo_button.tooltip   # ... so Undo would not undo the job


def test_controls_that_cannot_apply_are_disabled_with_the_reason(ws, florence, joy):
    make_dataset(ws, name="raw", n=2, size=(64, 64), captions=False)
    p = CaptioningPanel(ws, dataset="raw")
    labels = dict((v, k) for k, v in p.model.options)
    assert "19 GB VRAM" in labels["joycaption-beta-one"] and "3 GB VRAM" in labels["florence-2-large"]
    p.runner.idle()
    assert "3 GB of GPU memory" in p.model_note.value and "GPU" in p.model_note.value
    assert p.length.disabled and p.prompt.disabled and "Florence-2 takes a task" in p.applies.value
    assert [v for _, v in p.mode.options] == ["more_detailed", "detailed", "caption"]
    assert "length" not in p.options() and "prompt" not in p.options()
    p.custom.value = str(joy)
    assert not p.length.disabled and not p.prompt.disabled and p.applies.value == ""
    assert p.mode.value == "descriptive" and "booru_list" in [v for _, v in p.mode.options]
    p.length.value, p.prompt.value = "short", "Describe it in a {length} way."
    assert p.options()["length"] == "short" and p.options()["prompt"] == "Describe it in a {length} way."
    assert p.tagger.disabled and p.tags_position.disabled and p.tags_threshold.disabled and "with_tags" not in p.options()
    p.with_tags.value = True
    assert not p.tagger.disabled and p.options()["with_tags"] == "wd-vit-tagger-v3"
    assert p.stop_button.disabled and p.undo_button.disabled
    # the section is part of the Tagging panel and follows its dataset choice
    make_dataset(ws, name="other", n=1, size=(64, 64), captions=False)
    shutil.copytree(florence, ws.models_dir / "captioners" / "my-florence")
    t = TaggingPanel(ws, dataset="other")
    assert t.captioning.dataset is t.dataset and t.captioning in t.children
    assert str(ws.models_dir / "captioners" / "my-florence") in [v for _, v in t.captioning.model.options]


def test_tags_plus_sentence_preview(ws, joy, tmp_path):
    from lora_nb.tagging.tiny import build_tiny_tagger

    tagger = build_tiny_tagger(tmp_path / "tagger", size=32)
    make_dataset(ws, name="raw", n=4, size=(64, 64), captions=False)
    p = CaptioningPanel(ws, dataset="raw")
    p.custom.value = str(joy)
    p.max_tokens.value = 6
    p.with_tags.value = True
    p.tagger.value = str(tagger)
    p.tags_threshold.value = 0.0                            # the random tagger's scores are low: keep every tag
    p.preview_button.click()
    _wait_final(p, p.preview_job)
    assert p.preview_job.status is JobStatus.SUCCEEDED, p.preview_job.error
    texts = [c.children[1].value for c in p.cards]
    assert all('lnb-cap-preview-text" style="font-size:12px">1girl, ' in t for t in texts)   # WD14 tags first, then the sentence


def test_bad_input_is_one_sentence_and_queues_nothing(ws, florence, tmp_path):
    p = CaptioningPanel(ws)
    p.start_button.click()
    assert p.banner.kind == "error" and "No dataset is selected" in p.banner.text
    make_dataset(ws, name="raw", n=2, size=(64, 64), captions=False)
    p.refresh()
    assert p.dataset.value == "raw"
    p.custom.value = str(tmp_path / "nothing-here")
    p.preview_button.click()
    assert p.banner.kind == "error" and "has no config.json" in p.banner.text and "\n" not in p.banner.text
    p.custom.value = str(florence)
    p.max_length.value = 5
    p.start_button.click()
    assert p.banner.kind == "error" and "max_length" in p.banner.text
    p.max_length.value = 0
    p.undo_button.disabled = False                          # even if clicked somehow, Undo refuses with the reason
    p.undo_button.click()
    assert "Nothing to undo" in p.banner.text
    assert ws.jobs.list() == []


def test_prompt_presets_save_and_load(ws, joy):
    p = CaptioningPanel(ws)
    p.custom.value = str(joy)
    p.mode.value = "booru_list"
    p.length.value = "very short"
    p.prompt.value = "List {length} tags."
    p.trigger.value = "ohwx, style"
    p.existing.value = "append"
    p.max_length.value = 300
    p.save_button.click()
    assert p.banner.kind == "error" and "no name" in p.banner.text
    p.preset_name.value = "flux-tags"
    p.save_button.click()
    assert p.banner.kind == "info" and p.preset.options == ("flux-tags",)
    q = CaptioningPanel(ws)
    q.custom.value = str(joy)
    assert q.preset.options == ("flux-tags",)
    q.preset.value = "flux-tags"
    q.load_button.click()
    assert (q.mode.value, q.length.value, q.prompt.value, q.trigger.value, q.existing.value, q.max_length.value) == (
        "booru_list", "very short", "List {length} tags.", "ohwx, style", "append", 300)
    assert q.options() == p.options()
    q.custom.value = ""                                     # back to florence-2-large: booru_list is not one of its modes
    q.load_button.click()
    assert q.banner.kind == "error" and "mode 'booru_list'" in q.banner.text


def test_without_the_captioning_modules_the_section_says_why(ws, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def broken(name, *a, **kw):
        if name.startswith("lora_nb.tagging.caption"):
            raise ImportError("transformers is not installed")
        return real_import(name, *a, **kw)
    monkeypatch.setattr(builtins, "__import__", broken)
    t = TaggingPanel(ws)
    c = t.captioning
    assert c.banner.text == "Captioning is unavailable: transformers is not installed." and len(c.children) == 2
    t.refresh()                                             # nothing to refresh, no error
    assert not t.start_button.disabled                      # WD14 tagging is unaffected
