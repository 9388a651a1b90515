"""The dataset doctor: blocking findings per dataset and subset folder, and the one-click fixes on real broken files
(a truncated JPEG, Windows-1252 and Latin-1 caption bytes, a byte-order mark), each undoable, nothing deleted."""
from __future__ import annotations

import pytest

from lora_nb.datasets.doctor import apply_fix, fix_label
from lora_nb.datasets.report import Problem
from lora_nb.errors import AlreadyExists, InvalidInput, NotFound

from corpus import image_bytes


@pytest.fixture
def sick(ws):
    """'sick': 10_alice/ with a good image, a truncated JPEG, a cp1252 caption, a Latin-1 caption (a byte cp1252
    has no character for), a caption with a BOM; 1_other/ with another truncated JPEG."""
    ds = ws.datasets.create("sick")
    a, o = ds.path / "10_alice", ds.path / "1_other"
    a.mkdir(); o.mkdir()
    (a / "good.png").write_bytes(image_bytes(96, 96, seed=1)); (a / "good.txt").write_bytes(b"alice, smile")
    jpeg = image_bytes(96, 96, fmt="JPEG", seed=2)
    (a / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2]); (a / "cut.txt").write_bytes(b"alice, cut off")
    (a / "win.png").write_bytes(image_bytes(96, 96, seed=3))
    (a / "win.txt").write_bytes("alice, café, “quoted”".encode("cp1252"))
    (a / "lat.png").write_bytes(image_bytes(96, 96, seed=4))
    (a / "lat.txt").write_bytes(b"alice, na\xefve\x81")          # 0x81: no Windows-1252 character
    (a / "bom.png").write_bytes(image_bytes(96, 96, seed=5))
    (a / "bom.txt").write_bytes(b"\xef\xbb\xbfalice, bom")
    (o / "cut2.jpg").write_bytes(jpeg[:200])
    return ds


def test_findings_name_the_blocking_problems_with_their_fixes(sick):
    found = sick.doctor()
    assert [(f.code, f.fix) for f in found] == [("corrupt", "Move 2 images to .lora-nb/excluded"),
                                               ("caption_encoding", "Re-encode 2 captions as UTF-8")]
    assert {p.name for p in found[0].problem.paths} == {"cut.jpg", "cut2.jpg"}
    assert str(found[0]).startswith("Dataset 'sick': 2 images cannot be decoded") and "ds.fix" in found[0].message
    # limited to the folders a run uses: 1_other alone has only its own broken image
    (only,) = sick.doctor(folders=["1_other"])
    assert only.code == "corrupt" and [p.name for p in only.problem.paths] == ["cut2.jpg"] and only.fix == "Move 1 image to .lora-nb/excluded"
    assert sick.doctor(folders=["nope"]) == []


def test_exclude_fix_moves_the_broken_images_with_their_captions_and_restores_them(sick):
    corrupt = sick.doctor()[0]
    before = len(sick)
    r = sick.fix(corrupt)
    assert r.changed == 2 and "restore_excluded" in r.message
    assert len(sick) == before - 2 and not (sick.path / "10_alice" / "cut.jpg").exists()
    q = sick.meta_dir / "excluded" / "10_alice"
    assert (q / "cut.jpg").is_file() and (q / "cut.txt").read_bytes() == b"alice, cut off"
    assert sorted(p.name for p in sick.excluded()) == ["cut.jpg", "cut2.jpg"]
    assert [f.code for f in sick.doctor()] == ["caption_encoding"]
    assert all(i.format != "broken" for i in sick.images())            # the listing and the trainers skip the quarantine
    # back again, byte for byte; a file that came back in the meantime is never overwritten
    (sick.path / "1_other" / "cut2.jpg").write_bytes(b"new")
    with pytest.raises(AlreadyExists, match="1_other/cut2.jpg exists again"):
        sick.restore_excluded()
    assert len(sick.excluded()) == 2                                    # nothing moved
    (sick.path / "1_other" / "cut2.jpg").unlink()
    back = sick.restore_excluded()
    assert sorted(p.name for p in back) == ["cut.jpg", "cut2.jpg"] and sick.excluded() == []
    assert (sick.path / "10_alice" / "cut.txt").read_bytes() == b"alice, cut off"
    assert [f.code for f in sick.doctor()][0] == "corrupt"


def test_reencode_fix_writes_utf8_and_undo_restores_the_old_bytes(sick):
    old = {n: (sick.path / "10_alice" / n).read_bytes() for n in ("win.txt", "lat.txt", "bom.txt", "good.txt")}
    enc = next(f for f in sick.doctor() if f.code == "caption_encoding")
    r = sick.fix(enc)
    assert r.changed == 2 and "undo" in r.message
    assert (sick.path / "10_alice" / "win.txt").read_bytes().decode("utf-8") == "alice, café, “quoted”"
    assert (sick.path / "10_alice" / "lat.txt").read_bytes().decode("utf-8") == "alice, naïve\x81"
    assert (sick.path / "10_alice" / "bom.txt").read_bytes() == old["bom.txt"]      # a BOM is a warning: not this fix
    assert [f.code for f in sick.doctor()] == ["corrupt"]
    assert sick.captions.history()[-1]["op"] == "reencode_utf8"
    sick.captions.undo()
    assert {n: (sick.path / "10_alice" / n).read_bytes() for n in old} == old


def test_reencode_with_a_named_encoding_and_its_errors(ws):
    ds = ws.datasets.create("jp")
    (ds.path / "a.png").write_bytes(image_bytes(64, 64))
    (ds.path / "a.txt").write_bytes("猫, 笑顔".encode("shift_jis"))
    assert ds.captions.reencode_utf8(encoding="shift_jis").changed == 1
    assert ds.captions.get("a.png") == "猫, 笑顔"
    (ds.path / "a.txt").write_bytes(b"ab\xe9\xfd")
    with pytest.raises(InvalidInput, match="The caption of a.png is not ascii"):
        ds.captions.reencode_utf8(encoding="ascii")
    with pytest.raises(InvalidInput, match="'klingon' is not a text encoding"):
        ds.captions.reencode_utf8(encoding="klingon")
    assert (ds.path / "a.txt").read_bytes() == b"ab\xe9\xfd"        # nothing half-written


def test_warning_fixes_bom_lines_trigger_and_duplicates(ws):
    ds = ws.datasets.create("warn")
    img = image_bytes(128, 128, seed=7)
    for n in ("a", "b", "c"):
        (ds.path / f"{n}.png").write_bytes(img if n != "c" else image_bytes(128, 128, seed=8))
    (ds.path / "a.txt").write_bytes(b"\xef\xbb\xbfalice, one")
    (ds.path / "b.txt").write_bytes(b"two\nlines")
    (ds.path / "c.txt").write_bytes(b"alice, three")
    rep = ds.report(resolution=128, trigger_words="alice")
    by = {p.code: p for p in rep.issues}
    assert fix_label(by["caption_bom"]) == "Remove the byte-order mark from 1 caption"
    assert fix_label(by["trigger_missing"]) == "Add 'alice' to 1 caption"
    assert fix_label(by["exact_duplicates"]) == "Move 1 copy to .lora-nb/excluded"
    # near duplicates and tiny images are a judgement, a missing caption needs words: no automatic fix
    assert [fix_label(Problem("warning", c, "x", (ds.path / "c.png",))) for c in ("near_duplicates", "tiny", "missing_captions")] == [None] * 3
    assert ds.fix(by["caption_bom"]).changed == 1 and (ds.path / "a.txt").read_bytes() == b"alice, one"
    assert ds.fix(by["caption_lines"]).changed == 1 and ds.captions.get("b.png") == "two lines"
    assert ds.fix(by["trigger_missing"]).changed == 1 and ds.captions.get("b.png").startswith("alice")
    moved = ds.fix(by["exact_duplicates"]).paths
    assert [p.name for p in moved] == ["b.png"] and len(ds) == 2
    codes = {p.code for p in ds.report(resolution=128, trigger_words="alice").issues}
    assert not codes & {"caption_bom", "caption_lines", "trigger_missing", "exact_duplicates"}


def test_a_finding_without_a_fix_or_of_another_dataset_is_refused(ws, sick):
    ws.datasets.create("empty")
    (empty,) = ws.datasets.get("empty").doctor()
    assert empty.code == "empty" and empty.fix is None
    with pytest.raises(InvalidInput, match="'empty' has no automatic fix: The dataset has no images"):
        ws.datasets.get("empty").fix(empty)
    with pytest.raises(InvalidInput, match="about dataset 'sick', not 'empty'"):
        ws.datasets.get("empty").fix(sick.doctor()[0])
    with pytest.raises(NotFound, match="not in dataset 'sick'"):
        sick.exclude_images(["10_alice/none.png"])
    assert apply_fix(sick, sick.doctor()[0]).changed == 2


def test_legacy_decoding_keeps_utf8_reads_the_rest_as_windows_1252_and_is_linear():
    import time

    from lora_nb.captions.text import decode_caption, decode_legacy

    assert decode_legacy(b"caf\xc3\xa9 and caf\xe9 \x80 \x81") == "café and café € \x81"   # a file mixing both
    big = b"\xe9a" * 100_000                          # a hostile caption: every other byte invalid
    t = time.perf_counter()
    assert decode_caption(big) == "éa" * 100_000
    assert time.perf_counter() - t < 5.0
