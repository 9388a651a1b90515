"""The persisted caption cache: never serves stale or damaged bytes, re-reads only what changed."""
from __future__ import annotations

import os
import time
from collections import Counter

import pytest

import lora_nb.captions.cache as cache_mod
from lora_nb.captions.cache import CaptionCache
from lora_nb.files import RACY_NS


def _age() -> None:
    """Let files written so far leave the racy window (the cache then trusts their stat)."""
    time.sleep(RACY_NS / 1e9 + 0.05)


def _plain_counts(ds) -> Counter:
    c: Counter = Counter()
    for img in ds.image_paths():
        cap = img.with_suffix(".txt")
        if cap.exists():
            c.update({t.strip() for t in cap.read_text().split(",") if t.strip()})
    return c


@pytest.fixture
def reads(monkeypatch):
    """Paths of caption files the cache reads (the real reader still runs)."""
    seen: list[str] = []
    real = cache_mod.read_or_none

    def spy(path):
        seen.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(cache_mod, "read_or_none", spy)
    return seen


def _fresh(ds) -> CaptionCache:
    """The cache as a new process would have it: loaded from disk only."""
    return CaptionCache(ds.meta_dir / "caption-cache.bin", ds.path)


def _caps(ds) -> list[str]:
    return [str(p.with_suffix(".txt")) for p in ds.image_paths()]


def test_a_new_process_counts_from_the_cache_without_reading_captions(make_ds, reads):
    ds = make_ds({f"i{n}": f"1girl, tag{n % 3}" for n in range(30)})
    _age()
    assert ds.captions.frequencies() == _plain_counts(ds)
    assert len([r for r in reads if r.endswith(".txt")]) == 30
    reads.clear()
    assert _fresh(ds).counts(_caps(ds), complete=True) == _plain_counts(ds)
    assert [r for r in reads if r.endswith(".txt")] == []
    assert _fresh(ds).read_many(_caps(ds)[:2]) == [b"1girl, tag0", b"1girl, tag1"]
    assert [r for r in reads if r.endswith(".txt")] == []


def test_edits_by_anyone_are_seen_even_with_the_same_size_and_mtime(make_ds, reads):
    ds = make_ds({"a": "cat, dog", "b": "cat"})
    _age()
    ds.captions.frequencies()
    cap = ds.path / "a.txt"
    st = cap.stat()
    cap.write_bytes(b"cow, dog")                                     # same size, another tool, in place
    os.utime(cap, ns=(st.st_atime_ns, st.st_mtime_ns))              # and the old mtime put back
    assert ds.captions.frequencies() == Counter({"cat": 1, "cow": 1, "dog": 1})
    assert _fresh(ds).counts(_caps(ds), complete=True) == Counter({"cat": 1, "cow": 1, "dog": 1})
    (ds.path / "b.txt").unlink()
    (ds.path / "c.png").write_bytes((ds.path / "a.png").read_bytes())
    (ds.path / "c.txt").write_text("bird, cow")
    assert ds.captions.frequencies() == Counter({"cow": 2, "dog": 1, "bird": 1}) == _plain_counts(ds)


def test_captions_changed_within_the_racy_window_are_read_again(make_ds, reads):
    ds = make_ds({"a": "x", "b": "y"})
    ds.captions.frequencies()                       # written just now: not trusted yet
    reads.clear()
    ds.captions.frequencies()
    assert sorted(os.path.basename(r) for r in reads if r.endswith(".txt")) == ["a.txt", "b.txt"]
    _age()
    ds.captions.frequencies()                       # read once more, now old enough to trust
    reads.clear()
    ds.captions.frequencies()
    assert [r for r in reads if r.endswith(".txt")] == []


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip a caption byte"])
def test_a_damaged_cache_file_costs_a_re_read_never_a_wrong_caption(make_ds, damage):
    ds = make_ds({"a": "alpha, beta", "b": "gamma"})
    _age()
    ds.captions.frequencies()
    f = ds.meta_dir / "caption-cache.bin"
    raw = f.read_bytes()
    if damage == "truncate":
        f.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        f.write_bytes(b"\x00" * len(raw))
    else:
        assert raw.count(b"alpha, beta") == 1
        f.write_bytes(raw.replace(b"alpha, beta", b"alpha, betA"))
    cache_mod._cache.clear()
    assert _fresh(ds).read_many(_caps(ds)) == [b"alpha, beta", b"gamma"]
    assert ds.captions.frequencies() == Counter({"alpha": 1, "beta": 1, "gamma": 1})
    r = ds.captions.add_trigger("t")
    assert r.changed == 2 and (ds.path / "a.txt").read_bytes() == b"t, alpha, beta"


def test_bulk_edit_reads_current_bytes_after_an_outside_edit(make_ds):
    ds = make_ds({"a": "one, two"})
    _age()
    ds.captions.add_trigger("t", preview=True)                       # fills the cache
    (ds.path / "a.txt").write_text("three")                          # someone edits the file
    ds.captions.add_trigger("t")
    assert (ds.path / "a.txt").read_text() == "t, three"
    ds.captions.undo()
    assert (ds.path / "a.txt").read_text() == "three"


def test_selection_counts_and_filter_agree_with_the_files(make_ds):
    ds = make_ds({"a": "cat, hat", "b": "cat", "c": "dog", "d": None})
    _age()
    sel = [ds.path / "a.png", ds.path / "c.png", ds.path / "d.png"]
    assert ds.captions.frequencies(sel) == Counter({"cat": 1, "hat": 1, "dog": 1})
    ds.captions.replace("cat", "lion")
    assert ds.captions.frequencies(sel) == Counter({"lion": 1, "hat": 1, "dog": 1})
    assert [p.stem for p in ds.captions.filter(with_tags="lion")] == ["a", "b"]
    assert [p.stem for p in ds.captions.filter(without_tags=["lion", "dog"])] == ["d"]
    assert ds.captions.frequencies() == _plain_counts(ds)
