"""Bulk caption operations on real caption files: results, preview, selection, undo, statistics."""
from __future__ import annotations

import pytest

from lora_nb.errors import InvalidInput, NotFound


def caps(ds):
    return {p.stem: ds.captions.get(p) for p in ds.image_paths()}


def test_get_and_set_are_tolerant_and_write_utf8(make_ds):
    ds = make_ds({"bom": b"\xef\xbb\xbfalice, smile\r\n", "latin": "café, crème".encode("cp1252"), "none": None,
                  "u16": "ünï, tag".encode("utf-16")})
    c = ds.captions
    assert c.get("bom.png") == "alice, smile"
    assert c.get("latin.png") == "café, crème"
    assert c.get("u16.png") == "ünï, tag"
    assert c.get("none.png") is None and c.get("none.png", "") == ""
    c.set("latin.png", "café, new")
    assert (ds.path / "latin.txt").read_bytes() == "café, new".encode("utf-8")
    c.set("bom.png", "x")  # the old file ended with a newline: so does the new one
    assert (ds.path / "bom.txt").read_bytes() == b"x\n"
    with pytest.raises(NotFound):
        c.set("missing.png", "x")
    assert not list(ds.path.glob("*.tmp")) and not list(ds.path.glob(".*.tmp"))


def test_add_trigger_start_end_both_keeps_separator_and_is_idempotent(make_ds):
    ds = make_ds({"a": "1girl, smile", "b": "1girl,smile", "c": None, "d": "smile, alice, hat"})
    r = ds.captions.add_trigger("alice")
    assert r.changed == 4 and r.total == 4
    assert caps(ds) == {"a": "alice, 1girl, smile", "b": "alice,1girl,smile", "c": "alice", "d": "alice, smile, hat"}
    assert ds.captions.add_trigger("alice").changed == 0
    ds.captions.add_trigger(["alice"], where="end")
    assert caps(ds)["a"] == "1girl, smile, alice"
    ds.captions.add_trigger("alice", where="both")
    assert caps(ds)["a"] == "alice, 1girl, smile, alice" and caps(ds)["c"] == "alice"
    assert ds.captions.add_trigger("alice", where="both").changed == 0
    with pytest.raises(InvalidInput):
        ds.captions.add_trigger("alice", where="middle")
    with pytest.raises(InvalidInput):
        ds.captions.add_trigger(" , ")


def test_preview_writes_nothing_and_selection_limits_the_edit(make_ds):
    ds = make_ds({"a": "x, y", "b": "x, z"})
    before = {p.name: p.read_bytes() for p in ds.path.glob("*.txt")}
    r = ds.captions.remove("x", preview=True)
    assert r.preview and r.changed == 2
    assert [(ch.before, ch.after) for ch in r.changes] == [("x, y", "y"), ("x, z", "z")]
    assert {p.name: p.read_bytes() for p in ds.path.glob("*.txt")} == before
    assert ds.captions.history() == []
    r = ds.captions.remove("x", selection=["b.png"])
    assert r.changed == 1 and caps(ds) == {"a": "x, y", "b": "z"}


def test_replace_whole_tag_substring_and_regex(make_ds):
    ds = make_ds({"a": "long_hair, blue hair, hair bow", "b": "short hair"})
    assert ds.captions.replace("blue hair", "red hair").changed == 1
    assert caps(ds)["a"] == "long_hair, red hair, hair bow"
    assert ds.captions.replace("hair", "fur", whole_tag=True).changed == 0   # no tag is exactly "hair"
    ds.captions.replace(r"(\w+) hair", r"\1 fur", regex=True)
    assert caps(ds) == {"a": "long_hair, red fur, hair bow", "b": "short fur"}
    ds.captions.replace("fur", "hair", whole_tag=False)
    assert caps(ds) == {"a": "long_hair, red hair, hair bow", "b": "short hair"}
    ds.captions.replace("hair bow", "")  # empty replacement removes the tag
    assert caps(ds)["a"] == "long_hair, red hair"
    with pytest.raises(InvalidInput, match="regular expression"):
        ds.captions.replace("(", "x", regex=True)


def test_remove_keep_only_sort_dedupe(make_ds):
    ds = make_ds({"a": "b, a, c, a, 1girl", "k": "alice, |||, z, y"})
    ds.captions.dedupe()
    assert caps(ds)["a"] == "b, a, c, 1girl"
    ds.captions.sort()
    assert caps(ds)["a"] == "1girl, a, b, c"
    assert caps(ds)["k"] == "alice, |||, y, z"   # kohya's keep separator pins what is before it
    ds.captions.sort(keep=2, selection=["a.png"])
    assert caps(ds)["a"] == "1girl, a, b, c"
    ds.captions.remove(["a", "b"])
    assert caps(ds)["a"] == "1girl, c"
    ds.captions.remove(r"\d.*", regex=True)
    assert caps(ds)["a"] == "c"
    ds.captions.keep_only(["alice", "|||", "z"])
    assert caps(ds) == {"a": "", "k": "alice, |||, z"}


def test_sort_by_frequency(make_ds):
    ds = make_ds({"a": "rare, common", "b": "common, mid", "c": "mid, common"})
    ds.captions.sort(key="frequency")
    assert caps(ds) == {"a": "common, rare", "b": "common, mid", "c": "common, mid"}


def test_underscores_and_spaces_and_whitespace(make_ds):
    ds = make_ds({"a": "long_hair, ^_^, looking_at_viewer", "w": b"  a   b ,, c\r\nd  \r\n"})
    ds.captions.underscores_to_spaces(selection=["a.png"])
    assert caps(ds)["a"] == "long hair, ^_^, looking at viewer"
    ds.captions.spaces_to_underscores(selection=["a.png"])
    assert caps(ds)["a"] == "long_hair, ^_^, looking_at_viewer"
    r = ds.captions.normalize_whitespace()
    assert r.changed == 1
    assert (ds.path / "w.txt").read_bytes() == b"a b, c, d\n"
    assert ds.captions.normalize_whitespace().changed == 0


def test_normalize_rewrites_bom_and_latin1_files_as_utf8(make_ds):
    ds = make_ds({"bom": b"\xef\xbb\xbftag, two", "l1": "caf\xe9, x".encode("latin-1"), "ok": b"fine, tags"})
    r = ds.captions.normalize_whitespace()
    assert r.changed == 2
    assert (ds.path / "bom.txt").read_bytes() == b"tag, two"
    assert (ds.path / "l1.txt").read_bytes() == "café, x".encode("utf-8")
    ds.captions.undo()
    assert (ds.path / "bom.txt").read_bytes() == b"\xef\xbb\xbftag, two"
    assert (ds.path / "l1.txt").read_bytes() == "caf\xe9, x".encode("latin-1")


def test_undo_restores_bytes_and_removes_created_files_and_stacks(make_ds):
    ds = make_ds({"a": b"x,  y\r\n", "b": None})
    original = (ds.path / "a.txt").read_bytes()
    ds.captions.add_trigger("t")
    ds.captions.replace("x", "z")
    assert [h["op"] for h in ds.captions.history()] == ["add_trigger t (start)", "replace 'x' -> 'z'"]
    ds.captions.undo()
    assert caps(ds) == {"a": "t, x, y", "b": "t"}
    r = ds.captions.undo()
    assert r.changed == 2
    assert (ds.path / "a.txt").read_bytes() == original
    assert not (ds.path / "b.txt").exists()
    with pytest.raises(NotFound):
        ds.captions.undo()


def test_set_many_is_one_undoable_operation(make_ds):
    ds = make_ds({"a": "old", "b": None})
    r = ds.captions.set_many({"a.png": "new a", "b.png": "new b"}, op="tag")
    assert r.changed == 2 and caps(ds) == {"a": "new a", "b": "new b"}
    ds.captions.undo()
    assert caps(ds) == {"a": "old", "b": None}


def test_frequencies_and_filter(make_ds):
    ds = make_ds({"a": "1girl, smile, smile", "b": "1girl, hat", "c": "dog", "d": None})
    f = ds.captions.frequencies()
    assert f == {"1girl": 2, "smile": 1, "hat": 1, "dog": 1}
    assert f.most_common(1) == [("1girl", 2)]
    names = lambda ps: [p.stem for p in ps]
    assert names(ds.captions.filter(with_tags="1girl")) == ["a", "b"]
    assert names(ds.captions.filter(with_tags=["1girl"], without_tags="hat")) == ["a"]
    assert names(ds.captions.filter(with_tags=["hat", "dog"], any_of=True)) == ["b", "c"]
    assert names(ds.captions.filter(without_tags="1girl")) == ["c", "d"]


def test_caption_extension_dot_caption_is_detected(make_ds):
    ds = make_ds({"a": "x"}, ext=".caption")
    assert ds.caption_extension == ".caption"
    ds.captions.add_trigger("t")
    assert (ds.path / "a.caption").read_text() == "t, x" and not (ds.path / "a.txt").exists()


def test_failed_write_rolls_back_everything(make_ds, monkeypatch):
    import lora_nb.captions.journal as undo_mod

    ds = make_ds({f"i{n}": f"tag{n}" for n in range(5)})
    before = {p.name: p.read_bytes() for p in ds.path.glob("*.txt")}
    real = undo_mod.overwrite_small
    calls = []

    def flaky(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(undo_mod, "overwrite_small", flaky)
    with pytest.raises(Exception, match="put back"):
        ds.captions.add_trigger("t")
    assert len(calls) > 3          # the two written before the failure were rewritten back
    assert {p.name: p.read_bytes() for p in ds.path.glob("*.txt")} == before
    assert ds.captions.history() == []
