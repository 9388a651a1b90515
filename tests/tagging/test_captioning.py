"""Natural-language captioning jobs (Florence-2, JoyCaption) on small RANDOM models of the real architectures
(lora_nb.tagging.caption_tiny): real transformers generate, real subprocess jobs, real caption files and undo.
The models are the session fixtures ``florence`` and ``joy`` of tests/conftest.py (the widget tests use them too)."""
from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from fake_hub_files import FakeHub  # noqa: E402  (tests/ is on sys.path)
from lora_nb import demo
from lora_nb.errors import ConfigError, TaggerError
from lora_nb.progress.events import JobStatus
from lora_nb.tagging.caption_dataset import read_preview
from lora_nb.tagging.caption_options import CaptionOptions, PromptPresets, finish_caption
from lora_nb.tagging.captioner import Captioner, caption_images
from lora_nb.tagging.tiny import build_tiny_tagger
from support import wait_for


def _images(folder, n):
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"{i:03d}.png"
        Image.new("RGB", (60 + i, 50), (i * 40 % 256, 80, 200)).save(p)
        out.append(str(p))
    return out


def test_batched_generate_equals_one_at_a_time(joy, tmp_path):
    paths = _images(tmp_path / "im", 5) + [str(tmp_path / "broken.png")]
    (tmp_path / "broken.png").write_bytes(b"nope")
    batched = caption_images(paths, str(joy), max_new_tokens=8, batch_size=4)
    single = caption_images(paths, str(joy), max_new_tokens=8, batch_size=1)
    assert [r.text for r in batched] == [r.text for r in single]
    assert all(r.text for r in batched[:5]) and "not a readable image" in batched[5].error


def test_modes_and_lengths_make_the_prompt(joy, florence):
    c = Captioner(str(joy), CaptionOptions(mode="booru_list", length="short"))
    assert c.prompt == "Write a short list of Booru-like tags for this image." and c.max_new_tokens == 80
    assert "<image>" in c.text and c.text.endswith("assistant<|end_header_id|>\n\n")
    c = Captioner(str(joy), CaptionOptions(prompt="Describe it in a {length} way.", length="long"))
    assert c.prompt == "Describe it in a long way."
    f = Captioner(str(florence), CaptionOptions(mode="detailed"))
    assert f.prompt == "<DETAILED_CAPTION>" and f.device == "cpu"
    with pytest.raises(TaggerError, match="Florence-2 has no mode 'booru_list'"):
        Captioner(str(florence), CaptionOptions(mode="booru_list"))
    with pytest.raises(TaggerError, match="JoyCaption has no mode 'detailed'"):
        Captioner(str(joy), CaptionOptions(mode="detailed"))


def test_caption_job_writes_sentences_policies_and_one_undo_step(ws, florence):
    ds = demo.make_dataset(ws, n=5, size=(64, 64), captions=False)
    first, second = ds.images()[:2]
    ds.captions.set(first, "hand written")
    ds.captions.set(second, "keep me")
    job = ds.caption(model=str(florence), trigger_words="ohwx", max_new_tokens=8, batch_size=2)
    assert job.wait(180) is JobStatus.SUCCEEDED, job.error
    assert (job.progress.step, job.progress.total_steps, job.progress.rate_unit) == (5, 5, "img/s")
    items = ds.images()
    assert all(i.caption.startswith("ohwx, ") and len(i.caption) > 10 for i in items)
    assert all(i.caption_path.read_bytes().count(b"\n") == 1 for i in items)
    assert "captioned 5 images" in " ".join(job.log_tail(50))
    assert ds.captions.undo().changed == 5                       # one undo step for the whole job
    assert ds.captions.get(first) == "hand written" and all(i.caption is None for i in ds.images()[2:])
    job = ds.caption(model=str(florence), max_new_tokens=6, existing="skip")
    assert job.wait(180) is JobStatus.SUCCEEDED, job.error
    assert ds.captions.get(first) == "hand written" and ds.captions.get(second) == "keep me"
    assert all(i.caption for i in ds.images()[2:])
    job = ds.caption(model=str(florence), max_new_tokens=6, existing="append", trigger_words=["ohwx"])
    assert job.wait(180) is JobStatus.SUCCEEDED, job.error
    assert ds.captions.get(first).startswith("ohwx, hand written, ") and len(ds.captions.get(first)) > 25


def test_tags_plus_sentence_and_max_length(ws, joy, tmp_path):
    tagger = build_tiny_tagger(tmp_path / "tagger", size=32)
    ds = demo.make_dataset(ws, n=2, size=(64, 64), captions=False)
    job = ds.caption(model=str(joy), with_tags=str(tagger), tags_threshold=0.0, max_new_tokens=10, max_length=200)
    assert job.wait(180) is JobStatus.SUCCEEDED, job.error
    for item in ds.images():
        parts = [t.strip() for t in item.caption.split(",")]
        assert parts[0] == "1girl" and len(parts) >= 10 and len(item.caption) <= 200   # WD14 tags first, capped at 200
    assert finish_caption("One. Two three four five six.", ["t"], max_length=12) == "t, One."
    assert finish_caption("alpha beta gamma delta", [], max_length=14) == "alpha beta"


def test_preview_writes_nothing(ws, florence):
    ds = demo.make_dataset(ws, n=6, size=(64, 64), captions=False)
    job = ds.preview_captions(model=str(florence), n=4, max_new_tokens=6, trigger_words="ohwx")
    assert job.wait(180) is JobStatus.SUCCEEDED, job.error
    shown = read_preview(job)
    assert len(shown) == 4 and all(text.startswith("ohwx, ") for _, text in shown)
    assert all(i.caption is None for i in ds.images())


def test_a_stopped_job_leaves_every_caption_whole(ws, florence, tmp_path):
    ds = ws.datasets.create("many")
    for p in _images(tmp_path / "src", 80):
        ds.add_images([(p.rsplit("/", 1)[1], open(p, "rb").read())])
    job = ds.caption(model=str(florence), max_new_tokens=40, batch_size=1, workers=1)
    wait_for(lambda: (job.progress.step or 0) >= 3, timeout=180)
    job.stop()
    assert job.wait(60) is JobStatus.STOPPED
    written = [i for i in ds.images() if i.caption_path.exists()]
    assert 0 < len(written) < 80
    full = caption_images([str(written[0].path)], str(florence), max_new_tokens=40)[0].text
    assert all(i.caption == full for i in written)                  # each one the whole generated caption
    assert not list(ds.path.rglob("*.tmp"))
    assert ds.captions.undo().changed == len(written)


def test_bad_requests_are_refused_before_queueing(ws, florence, tmp_path):
    ds = demo.make_dataset(ws, n=2, size=(64, 64), captions=False)
    with pytest.raises(TaggerError, match="neither a known captioner"):
        ds.caption(model="not-a-captioner")
    with pytest.raises(TaggerError, match="has no config.json"):
        ds.caption(model=str(tmp_path))
    with pytest.raises(ConfigError, match="existing"):
        ds.caption(model=str(florence), existing="replace")
    with pytest.raises(ConfigError, match="mode"):
        ds.caption(model=str(florence), mode="poem")
    with pytest.raises(TaggerError, match="with_tags"):
        ds.caption(model=str(florence), with_tags=str(tmp_path))
    assert ws.jobs.list() == []


def test_remote_code_florence_is_refused_with_the_fix(tmp_path):
    import json

    from lora_nb.tagging.caption_models import model_family

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "florence2", "auto_map": {"AutoConfig": "x.y"},
                                                      "vision_config": {"model_type": "davit"}}))
    with pytest.raises(TaggerError, match="florence-community/Florence-2-large"):
        model_family(tmp_path)


def test_presets(ws, florence):
    presets = PromptPresets(ws.presets_dir / "captions")
    presets.save("short-flux", {"mode": "detailed", "max_new_tokens": 5, "trigger_words": ["zz"]})
    with pytest.raises(ConfigError):
        presets.save("bad", {"existing": "nope"})
    ds = demo.make_dataset(ws, n=2, size=(64, 64), captions=False)
    job = ds.caption(model=str(florence), preset="short-flux")
    assert job.wait(180) is JobStatus.SUCCEEDED, job.error
    assert all(i.caption.startswith("zz, ") for i in ds.images())


def test_download_from_the_hub_then_offline(ws, florence, tmp_path, monkeypatch):
    files = {f"florence-community/Florence-2-base/{p.name}": p.read_bytes() for p in florence.iterdir() if p.is_file()}
    ds = demo.make_dataset(ws, n=2, size=(64, 64), captions=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with FakeHub(files) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        job = ds.caption(model="florence-2-base", max_new_tokens=5)
        assert job.wait(180) is JobStatus.SUCCEEDED, job.error
        assert ("GET", "/florence-community/Florence-2-base/resolve/main/model.safetensors") in hub.requests
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")                       # the Hub is gone: the cache is used
    job = ds.caption(model="florence-2-base", max_new_tokens=5)
    assert job.wait(180) is JobStatus.SUCCEEDED, job.error


def test_offline_without_cache_is_a_clear_failure(ws, tmp_path, monkeypatch):
    ds = demo.make_dataset(ws, n=2, size=(64, 64), captions=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    job = ds.caption(model="joycaption-beta-one")
    assert job.wait(120) is JobStatus.FAILED
    assert "is not in the local cache and the Hugging Face Hub cannot be reached" in " ".join(job.log_tail(20))
    assert all(i.caption is None for i in ds.images())


def test_cli_caption(ws, florence):
    demo.make_dataset(ws, n=2, size=(64, 64), captions=False)
    out = subprocess.run([sys.executable, "-m", "lora_nb.cli", "-w", str(ws.root), "caption", "demo", "--model", str(florence),
                          "--trigger", "abc", "--max-new-tokens", "5", "--follow"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert all(i.caption.startswith("abc, ") for i in ws.datasets.get("demo").images())
    models = subprocess.run([sys.executable, "-m", "lora_nb.cli", "caption", "--models"], capture_output=True, text=True)
    assert "fancyfeast/llama-joycaption-beta-one-hf-llava" in models.stdout and "VRAM" in models.stdout
