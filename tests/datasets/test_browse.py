"""images(), subsets, thumbnails (cache behaviour) and the report's contents."""
from __future__ import annotations

import os
import time

import pytest

from corpus import image_bytes
from lora_nb.errors import InvalidInput, NotFound


@pytest.fixture
def ds(ws):
    ds = ws.datasets.create("b")
    ds.add_images([("img10.png", image_bytes(seed=10)), ("img2.jpg", image_bytes(w=300, h=200, fmt="JPEG", seed=2)),
                   ("img2.txt", b"alice, smile")])
    return ds


def test_images_lists_items_in_natural_order(ds):
    items = ds.images()
    assert [i.path.name for i in items] == ["img2.jpg", "img10.png"]
    a = items[0]
    assert (a.width, a.height, a.format, a.caption, a.subset, a.caption_path.name) == (300, 200, "jpeg", "alice, smile", "", "img2.txt")
    assert a.size == a.path.stat().st_size
    assert items[1].caption is None and not items[1].caption_path.exists()
    (ds.path / "img10.png").write_bytes(image_bytes(w=20, h=10))   # changed file: new size is seen
    assert ds.images()[1].width == 20


def test_set_repeats_renames_the_subset(ws):
    ds = ws.datasets.create("r")
    ds.add_images([("a.png", image_bytes())], subset="3_cat")
    sub = ds.set_repeats("3_cat", 7)
    assert (sub.name, sub.repeats, sub.class_tokens) == ("7_cat", 7, "cat") and (ds.path / "7_cat" / "a.png").is_file()
    with pytest.raises(NotFound):
        ds.set_repeats("nope", 2)
    with pytest.raises(InvalidInput):
        ds.set_repeats("7_cat", 0)


def test_thumbnail_cache_hits_and_invalidates(ds):
    from PIL import Image

    img = ds.path / "img2.jpg"
    t = ds.thumbnail("img2.jpg", size=64)
    with Image.open(t) as im:
        assert im.format == "JPEG" and max(im.size) == 64 and im.size == (64, 43)
    mtime = t.stat().st_mtime_ns
    assert ds.thumbnail(img, size=64) == t and t.stat().st_mtime_ns == mtime   # cache hit: not rewritten
    assert ds.thumbnail(img, size=128) != t                                     # size is part of the key
    img.write_bytes(image_bytes(w=100, h=100, fmt="JPEG", seed=3))
    os.utime(img, ns=(time.time_ns(), time.time_ns() + 10**9))
    t2 = ds.thumbnail(img, size=64)
    assert t2 != t
    with Image.open(t2) as im:
        assert im.size == (64, 64)


def test_thumbnails_in_parallel_with_a_broken_one(ds):
    (ds.path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (ds.path / "alpha.png").write_bytes(image_bytes(mode="RGBA"))
    (ds.path / "g16.png").write_bytes(_gray16())
    out = ds.thumbnails(size=32)
    names = [p.name for p in ds.image_paths()]
    assert dict(zip(names, [o is not None for o in out])) == {"alpha.png": True, "broken.png": False, "g16.png": True,
                                                             "img2.jpg": True, "img10.png": True}
    with pytest.raises(InvalidInput, match="cannot be read"):
        ds.thumbnail("broken.png")
    with pytest.raises(NotFound):
        ds.thumbnail("missing.png")
    assert ds.thumbnails(size=32) == out   # second visit: same cached files


def _gray16() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((10, 10), 40000, np.uint16)).save(buf, "PNG")
    return buf.getvalue()


def test_report_finds_every_kind_of_problem(ws):
    ds = ws.datasets.create("doc")
    base = image_bytes(w=640, h=480, fmt="JPEG", seed=1, quality=95)
    ds.add_images([("10_alice/a.jpg", base), ("10_alice/a.txt", b"alice, smile"),
                   ("10_alice/b.png", image_bytes(w=600, h=600, seed=2)), ("10_alice/b.txt", b"1girl"),
                   ("10_alice/tiny.png", image_bytes(w=64, h=64, seed=3)), ("10_alice/tiny.txt", b"alice"),
                   ("reg/1_woman/r.png", image_bytes(w=512, h=512, seed=4))])
    sub = ds.path / "10_alice"
    (sub / "copy.jpg").write_bytes(base)                                  # exact duplicate
    (sub / "copy.txt").write_bytes(b"alice")
    (sub / "near.jpg").write_bytes(image_bytes(w=640, h=480, fmt="JPEG", seed=1, quality=40))   # same picture, re-encoded
    (sub / "near.txt").write_bytes(b"alice")
    (sub / "empty.png").write_bytes(image_bytes(w=512, h=512, seed=5))
    (sub / "empty.txt").write_bytes(b"")
    (sub / "latin.png").write_bytes(image_bytes(w=512, h=512, seed=6))
    (sub / "latin.txt").write_bytes("alice, caf\xe9".encode("latin-1"))
    (sub / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nxx")
    (sub / "orphan.txt").write_bytes(b"x")
    (sub / "notes.md").write_bytes(b"x")
    rep = ds.report(resolution=512, trigger_words="alice")
    rel = lambda ps: sorted(p.name for p in ps)
    assert rep.image_count == 9 and rep.reg_images == 1 and rep.train_images == 7
    assert rep.samples_per_epoch == 70
    assert [p.name for p, _ in rep.corrupt] == ["broken.png"]
    assert rep.missing_captions == []          # reg images need no caption
    assert rel(rep.empty_captions) == ["empty.png"]
    assert [(p.name, why) for p, why in rep.caption_issues] == [("latin.png", "is not UTF-8")]
    assert [rel(g) for g in rep.exact_duplicates] == [["a.jpg", "copy.jpg"]]
    assert any({"a.jpg", "near.jpg"} <= set(rel(g)) for g in rep.near_duplicates)
    assert rel(rep.tiny) == ["tiny.png"]
    assert rel(rep.orphan_captions) == ["orphan.txt"] and rel(rep.other_files) == ["notes.md"]
    assert rep.trigger_coverage == {"alice": 5}   # a, tiny, copy, near, latin; not b, empty
    assert rel(rep.missing_trigger["alice"]) == ["b.png", "empty.png"]
    codes = {p.code for p in rep.issues}
    assert {"corrupt", "empty_captions", "caption_encoding", "exact_duplicates", "near_duplicates", "tiny",
            "trigger_missing", "orphan_captions", "other_files"} <= codes
    assert not rep.ok and len(rep.blocking) == 3
    assert all(s.endswith(".") or s.endswith(")") for s in rep.problems)
    assert rep.to_dict()["corrupt"] == 1 and "broken.png" in str(rep)
    # fix what blocks training, and the report says so
    (sub / "broken.png").unlink()
    ds.captions.set("10_alice/empty.png", "alice, hat")
    ds.captions.normalize_whitespace()
    rep2 = ds.report(resolution=512, trigger_words="alice")
    assert rep2.ok and rep2.blocking == []


def test_report_buckets_come_from_the_config_module(ws):
    pytest.importorskip("lora_nb.config.buckets", reason="the config area's bucket_counts is not in this tree yet")
    from lora_nb.config.buckets import bucket_counts

    ds = ws.datasets.create("bk")
    ds.add_images([("w.png", image_bytes(w=768, h=512, seed=1)), ("s.png", image_bytes(w=512, h=512, seed=2)),
                   ("s2.png", image_bytes(w=600, h=600, seed=3))])
    rep = ds.report(resolution=512)
    assert rep.buckets == bucket_counts([(768, 512), (512, 512), (600, 600)], resolution=(512, 512))
    assert sum(rep.buckets.values()) == 3


def test_report_is_cached_by_mtime(ws, monkeypatch):
    import lora_nb.datasets.report as report_mod

    ds = ws.datasets.create("c")
    (ds.path / "x.png").write_bytes(image_bytes(seed=1))
    (ds.path / "y.png").write_bytes(image_bytes(seed=2))
    calls = []
    real = report_mod.inspect_image
    monkeypatch.setattr(report_mod, "inspect_image", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    ds.report()
    assert len(calls) == 2
    ws.datasets.get("c").report()
    assert len(calls) == 2          # a fresh Dataset object reads the on-disk cache
    (ds.path / "y.png").write_bytes(image_bytes(seed=3))
    os.utime(ds.path / "y.png", ns=(time.time_ns(), time.time_ns() + 10**9))
    ws.datasets.get("c").report()
    assert len(calls) == 3


def test_import_primes_the_report_cache(ws, monkeypatch):
    import lora_nb.datasets.report as report_mod

    ws.datasets.import_zip(__import__("corpus").zip_bytes({"a.png": image_bytes(seed=1)}), "primed")
    monkeypatch.setattr(report_mod, "inspect_image", lambda *a, **k: pytest.fail("decoded again"))
    assert ws.datasets.get("primed").report().image_count == 1


def test_empty_dataset_report_blocks(ws):
    rep = ws.datasets.create("e").report()
    assert not rep.ok and "no images" in rep.blocking[0]


def test_report_as_a_job_primes_the_cache(ws, monkeypatch):
    if not hasattr(type(ws.jobs), "submit_task"):
        pytest.skip("the jobs area's submit_task is not in this tree yet")
    import json

    import lora_nb.datasets.report as report_mod

    ds = ws.datasets.create("j")
    for i in range(3):
        (ds.path / f"{i}.png").write_bytes(image_bytes(seed=i))
    (ds.path / "bad.png").write_bytes(b"nope")
    job = ds.report_job(resolution=[512, 512], trigger_words="alice")
    assert str(job.wait(timeout=120)) == "succeeded", job.log_tail(40)
    data = json.loads((job.run_dir / "report.json").read_text())
    assert data["image_count"] == 4 and data["corrupt"] == 1 and data["ok"] is False
    monkeypatch.setattr(report_mod, "inspect_image", lambda *a, **k: pytest.fail("decoded again"))
    assert ws.datasets.get("j").report().image_count == 4
