"""Property tests (hypothesis) for caption text and bulk operations."""
from __future__ import annotations

import shutil

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lora_nb.captions.text import KAOMOJI, decode_caption, detect_separator, join_tags, split_tags

word = st.text(alphabet=st.characters(codec="utf-8", exclude_characters=",\r\n\x00", exclude_categories=("Cs", "Zs", "Cc")),
               min_size=1, max_size=8)
tag = st.lists(word, min_size=1, max_size=3).map(" ".join)
tags = st.lists(tag, min_size=0, max_size=8)
sep = st.sampled_from([", ", ","])
# arbitrary caption bytes: the reader must never fail on them
raw_caption = st.one_of(st.binary(max_size=60), st.text(max_size=40).map(lambda t: t.encode("utf-8")),
                        st.text(max_size=40).map(lambda t: b"\xef\xbb\xbf" + t.encode("utf-8") + b"\r\n"))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@given(tags, sep)
def test_separator_round_trip(ts, s):
    text = join_tags(ts, s)
    assert split_tags(text) == ts
    if len(ts) >= 2:
        assert detect_separator(text) == s
        assert join_tags(split_tags(text), detect_separator(text)) == text


@given(st.binary(max_size=80))
def test_decode_never_fails_and_has_no_cr(data):
    text = decode_caption(data)
    assert "\r" not in text and not text.endswith("\n")


def _snapshot(ds):
    return {p.name: p.read_bytes() for p in sorted(ds.path.iterdir()) if p.is_file()}


@SETTINGS
@given(captions=st.lists(st.one_of(st.none(), tags.flatmap(lambda t: sep.map(lambda s: join_tags(t, s).encode())), raw_caption),
                         min_size=1, max_size=5),
       trigger=st.lists(tag, min_size=1, max_size=2), where=st.sampled_from(["start", "end", "both"]))
def test_add_trigger_is_idempotent_and_undo_restores_bytes(make_ds, captions, trigger, where):
    ds = make_ds({f"i{n}": c for n, c in enumerate(captions)})
    try:
        before = _snapshot(ds)
        first = ds.captions.add_trigger(trigger, where=where)
        after_once = _snapshot(ds)
        assert ds.captions.add_trigger(trigger, where=where).changed == 0
        assert _snapshot(ds) == after_once
        for p in ds.image_paths():
            got = split_tags(ds.captions.get(p))
            assert got[: len(trigger)] == trigger if where != "end" else got[-len(trigger):] == trigger
            assert sum(got.count(t) for t in trigger) == len(trigger) * (2 if where == "both" and len(got) > len(trigger) else 1) \
                or len(set(trigger)) < len(trigger)
        if first.changed:
            ds.captions.undo()
        assert _snapshot(ds) == before
    finally:
        shutil.rmtree(ds.path)


@SETTINGS
@given(captions=st.lists(raw_caption, min_size=1, max_size=4),
       op=st.sampled_from(["dedupe", "sort", "underscores_to_spaces", "spaces_to_underscores", "normalize_whitespace",
                           "remove", "replace"]))
def test_every_bulk_op_undoes_byte_exactly_and_preview_matches(make_ds, captions, op):
    ds = make_ds({f"i{n}": c for n, c in enumerate(captions)})
    try:
        before = _snapshot(ds)
        args = {"remove": ("a",), "replace": ("a", "b")}.get(op, ())
        preview = getattr(ds.captions, op)(*args, preview=True)
        assert _snapshot(ds) == before
        result = getattr(ds.captions, op)(*args)
        assert result.changed == preview.changed
        assert [c.after for c in result.changes] == [c.after for c in preview.changes]
        for ch in result.changes:
            assert ds.captions.get(ch.image) == ch.after
        if result.changed:
            ds.captions.undo()
        assert _snapshot(ds) == before
    finally:
        shutil.rmtree(ds.path)


@SETTINGS
@given(ts=st.lists(tag.filter(lambda t: "_" not in t and t.replace(" ", "_") not in KAOMOJI), min_size=1, max_size=6), s=sep)
def test_spaces_to_underscores_and_back_is_the_identity(make_ds, ts, s):
    ds = make_ds({"a": join_tags(ts, s)})
    try:
        before = _snapshot(ds)
        ds.captions.spaces_to_underscores()
        assert " " not in ds.captions.get("a.png").replace(s, "")
        ds.captions.underscores_to_spaces()
        assert _snapshot(ds) == before
    finally:
        shutil.rmtree(ds.path)
