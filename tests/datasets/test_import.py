"""Imports: ZIP, folder, items; a hostile/broken corpus built here; atomicity."""
from __future__ import annotations

import io
import os
import struct
import zipfile

import pytest

from corpus import image_bytes, zip_bytes
from lora_nb.errors import AlreadyExists, InvalidInput, InvalidName, NotFound


def files(ds):
    return sorted(p.relative_to(ds.path).as_posix() for p in ds.path.rglob("*") if p.is_file() and ".lora-nb" not in p.parts)


def test_zip_import_keeps_subsets_drops_wrapper_and_brings_captions(ws, nothing_left):
    data = zip_bytes({
        "alice/10_alice/a.png": image_bytes(seed=1),
        "alice/10_alice/a.txt": b"alice, smile",
        "alice/10_alice/b.jpg": image_bytes(seed=2, fmt="JPEG"),
        "alice/10_alice/b.caption": b"alice, hat",
        "alice/reg/1_woman/r.png": image_bytes(seed=3),
    })
    r = ws.datasets.import_zip(data, "alice")
    assert r.images == 3 and r.captions == 2 and r.skipped == []
    ds = ws.datasets.get("alice")
    assert files(ds) == ["10_alice/a.png", "10_alice/a.txt", "10_alice/b.jpg", "10_alice/b.txt", "reg/1_woman/r.png"]
    assert [(s.name, s.repeats, s.is_reg, s.class_tokens, s.image_count) for s in ds.subsets()] == [
        ("10_alice", 10, False, "alice", 2), ("reg/1_woman", 1, True, "woman", 1)]
    assert [i.caption for i in ds.images()] == ["alice, smile", "alice, hat", None]


def test_zip_from_path_and_file_object(ws, tmp_path, nothing_left):
    data = zip_bytes({"a.png": image_bytes()})
    (tmp_path / "x.zip").write_bytes(data)
    assert ws.datasets.import_zip(tmp_path / "x.zip", "p").images == 1
    assert ws.datasets.import_zip(io.BytesIO(data), "f").images == 1
    with pytest.raises(AlreadyExists):
        ws.datasets.import_zip(data, "p")
    assert ws.datasets.import_zip(zip_bytes({"a.png": image_bytes(seed=5)}), "p", merge=True).renamed == [("a.png", "a_2.png")]
    assert files(ws.datasets.get("p")) == ["a.png", "a_2.png"]


@pytest.mark.parametrize("name,match", [
    ("../evil.png", r"'\.\.'"), ("ok/../../evil.png", r"'\.\.'"), ("/abs/evil.png", "absolute"),
    ("C:\\win\\evil.png", "absolute"), ("..\\evil.png", r"'\.\.'"),
])
def test_hostile_paths_refuse_the_whole_archive(ws, tmp_path, name, match, nothing_left):
    data = zip_bytes({"good.png": image_bytes(), name: image_bytes(seed=9)})
    with pytest.raises(InvalidInput, match=match):
        ws.datasets.import_zip(data, "evil")
    assert "evil" not in ws.datasets and not (tmp_path / "evil.png").exists()


def test_symlink_entry_is_refused(ws, nothing_left):
    data = zip_bytes({"good.png": image_bytes()}, symlinks={"link.png": "/etc/passwd"})
    with pytest.raises(InvalidInput, match="symbolic link"):
        ws.datasets.import_zip(data, "s")
    assert ws.datasets.names() == []


def test_zip_bomb_ratio_and_total_caps(ws, nothing_left):
    bomb = zip_bytes({"zeros.png": b"\0" * (30 * 1024 * 1024)})
    assert len(bomb) < 100_000
    with pytest.raises(InvalidInput, match="ZIP bomb"):
        ws.datasets.import_zip(bomb, "b")
    many = zip_bytes({f"{i}.png": image_bytes(seed=i) for i in range(3)})
    with pytest.raises(InvalidInput, match="unpacks to more than"):
        ws.datasets.import_zip(many, "b", max_total_bytes=2 * len(image_bytes()))
    with pytest.raises(InvalidInput, match="entries; the limit is 2"):
        ws.datasets.import_zip(many, "b", max_entries=2)
    with pytest.raises(InvalidInput, match="Unknown import option"):
        ws.datasets.import_zip(many, "b", max_things=2)
    assert ws.datasets.names() == []


def test_lying_sizes_in_the_directory_cannot_overflow_the_cap(ws, nothing_left):
    """A central directory that claims a tiny size: zipfile stops at the claimed size and the CRC check fails."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.png", image_bytes(seed=1))
        z.writestr("big.png", b"\0" * 5_000_000)
    raw = bytearray(buf.getvalue())
    cd = raw.rfind(b"PK\x01\x02")  # the last central-directory record is big.png's
    struct.pack_into("<I", raw, cd + 24, 100)  # uncompressed size: 100 bytes
    r = ws.datasets.import_zip(bytes(raw), "lie")
    assert r.images == 1 and [n for n, _ in r.skipped] == ["big.png"]


def test_not_a_zip_and_missing_file(ws, tmp_path, nothing_left):
    with pytest.raises(InvalidInput, match="not a readable ZIP"):
        ws.datasets.import_zip(b"hello", "x")
    with pytest.raises(NotFound):
        ws.datasets.import_zip(tmp_path / "nope.zip", "x")
    with pytest.raises(InvalidName):
        ws.datasets.import_zip(zip_bytes({"a.png": image_bytes()}), "../x")


def test_broken_and_non_image_files_are_skipped_and_listed(ws, nothing_left):
    good = image_bytes(w=200, h=150, fmt="JPEG", seed=4)
    data = zip_bytes({
        "good.jpg": good, "good.txt": b"fine",
        "truncated.jpg": good[: len(good) // 2],
        "corrupt.png": b"\x89PNG\r\n\x1a\n" + os.urandom(200),
        "zero.png": b"",
        "text.png": b"just text pretending",
        "image.txt": image_bytes(seed=6),          # a .txt is never an image, whatever is inside
        "notes.md": b"# hi", "model.safetensors": b"xx",
        "__MACOSX/._good.jpg": b"junk", ".DS_Store": b"junk", "sub/Thumbs.db": b"junk",
    })
    r = ws.datasets.import_zip(data, "mixed")
    assert r.added == ["good.jpg"] and r.captions == 1
    reasons = dict(r.skipped)
    assert "truncated" in reasons["truncated.jpg"]
    assert "empty" in reasons["zero.png"]
    assert set(reasons) == {"truncated.jpg", "corrupt.png", "zero.png", "text.png", "image.txt", "notes.md", "model.safetensors"}
    assert "caption without an image" in reasons["image.txt"]
    assert files(ws.datasets.get("mixed")) == ["good.jpg", "good.txt"]


def test_an_archive_without_images_leaves_nothing(ws, nothing_left):
    with pytest.raises(InvalidInput, match="No usable image"):
        ws.datasets.import_zip(zip_bytes({"a.txt": b"x", "b.png": b""}), "none")
    assert "none" not in ws.datasets


def test_duplicate_names_after_sanitising_and_case(ws, nothing_left):
    data = zip_bytes({"a b?.png": image_bytes(seed=1), "a b?.txt": b"one", "a b*.png": image_bytes(seed=2), "a b*.txt": b"two",
                      "X.png": image_bytes(seed=3), "x.PNG": image_bytes(seed=4), "x.jpg": image_bytes(seed=5, fmt="JPEG"),
                      "café.png": image_bytes(seed=6)})
    r = ws.datasets.import_zip(data, "dups")
    ds = ws.datasets.get("dups")
    assert files(ds) == ["X.png", "X_2.png", "X_3.jpg", "a b_.png", "a b_.txt", "a b__2.png", "a b__2.txt", "cafe.png"]
    assert ds.captions.get("a b_.png") == "one" and ds.captions.get("a b__2.png") == "two"
    assert len(r.renamed) == 5


def test_awkward_images_are_converted_for_the_trainer(ws, nothing_left):
    import numpy as np
    from PIL import Image

    rgb = Image.open(io.BytesIO(image_bytes(w=80, h=40, seed=7)))
    cmyk = io.BytesIO(); rgb.convert("CMYK").save(cmyk, "JPEG")
    g16 = io.BytesIO(); Image.fromarray((np.linspace(0, 65535, 80 * 40).reshape(40, 80)).astype(np.uint16)).save(g16, "PNG")
    pal = io.BytesIO(); rgb.convert("P").save(pal, "PNG")
    exif = Image.Exif(); exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rot = io.BytesIO(); rgb.save(rot, "JPEG", exif=exif.tobytes())
    gif = io.BytesIO(); rgb.save(gif, "GIF")
    misnamed = io.BytesIO(); rgb.save(misnamed, "PNG")
    data = zip_bytes({"cmyk.jpg": cmyk.getvalue(), "g16.png": g16.getvalue(), "pal.png": pal.getvalue(),
                      "rot.jpg": rot.getvalue(), "anim.gif": gif.getvalue(), "misnamed.jpg": misnamed.getvalue()})
    r = ws.datasets.import_zip(data, "odd")
    ds = ws.datasets.get("odd")
    assert files(ds) == ["anim.png", "cmyk.jpg", "g16.png", "misnamed.png", "pal.png", "rot.jpg"]
    assert {rel for rel, _ in r.converted} == {"anim.png", "cmyk.jpg", "g16.png", "rot.jpg"}
    with Image.open(ds.path / "cmyk.jpg") as im:
        assert im.mode == "RGB"
    with Image.open(ds.path / "g16.png") as im:
        assert im.mode == "L" and im.getextrema() == (0, 255)   # scaled, not clipped to white
    with Image.open(ds.path / "rot.jpg") as im:
        assert im.size == (40, 80) and im.getexif().get(0x0112, 1) == 1
    with Image.open(ds.path / "pal.png") as im:
        assert im.mode == "P"          # a palette PNG is fine for trainers: kept as is
    sizes = {i.path.name: (i.width, i.height, i.format) for i in ds.images()}
    assert sizes["rot.jpg"] == (40, 80, "jpeg") and sizes["misnamed.png"] == (80, 40, "png")
    assert ds.report().rotated == []


def test_captions_are_read_tolerantly_and_written_as_utf8(ws, nothing_left):
    data = zip_bytes({"a.png": image_bytes(seed=1), "a.txt": b"\xef\xbb\xbfalice, smile\r\n",
                      "b.png": image_bytes(seed=2), "b.txt": "café, ü".encode("cp1252"),
                      "c.png": image_bytes(seed=3), "c.txt": "日本, x".encode("utf-16")})
    ws.datasets.import_zip(data, "enc")
    ds = ws.datasets.get("enc")
    assert (ds.path / "a.txt").read_bytes() == b"alice, smile\n"
    assert (ds.path / "b.txt").read_bytes() == "café, ü".encode("utf-8")
    assert (ds.path / "c.txt").read_bytes() == "日本, x".encode("utf-8")


def test_folder_import_copy_and_link(ws, tmp_path, nothing_left):
    src = tmp_path / "src"
    (src / "5_bob").mkdir(parents=True)
    (src / "5_bob" / "a.png").write_bytes(image_bytes(seed=1))
    (src / "5_bob" / "a.txt").write_bytes(b"bob")
    (src / "5_bob" / "b.jpg").write_bytes(image_bytes(seed=2, fmt="JPEG"))
    (src / ".hidden").mkdir()
    (src / ".hidden" / "h.png").write_bytes(image_bytes(seed=3))
    r = ws.datasets.import_folder(src, "copy")
    assert r.images == 2 and r.linked == 0
    copy = ws.datasets.get("copy")
    assert not any(p.is_symlink() for p in copy.path.rglob("*"))
    r = ws.datasets.import_folder(src, "link", link=True)
    link = ws.datasets.get("link")
    assert r.linked == 2 and (link.path / "5_bob" / "a.png").is_symlink()
    assert not (link.path / "5_bob" / "a.txt").is_symlink()   # captions are copies: editing them never touches the source
    link.captions.add_trigger("t")
    assert (src / "5_bob" / "a.txt").read_bytes() == b"bob"
    ws.datasets.delete("link")
    assert (src / "5_bob" / "a.png").is_file()                # deleting a linked dataset keeps the source images
    with pytest.raises(NotFound):
        ws.datasets.import_folder(tmp_path / "missing", "m")


def test_add_images_paths_pairs_and_subset(ws, tmp_path, nothing_left):
    (tmp_path / "p.png").write_bytes(image_bytes(seed=1))
    (tmp_path / "p.txt").write_bytes(b"from path")
    ds = ws.datasets.create("add")
    r = ds.add_images([tmp_path / "p.png", ("q.jpg", image_bytes(seed=2, fmt="JPEG")), ("q.txt", b"from bytes"),
                       ("r.png", io.BytesIO(image_bytes(seed=3)))], subset="3_thing")
    assert r.images == 3 and r.captions == 2
    assert files(ds) == ["3_thing/p.png", "3_thing/p.txt", "3_thing/q.jpg", "3_thing/q.txt", "3_thing/r.png"]
    with pytest.raises(InvalidInput, match="leave|escape"):
        ds.add_images([("../x.png", image_bytes())])
    with pytest.raises(InvalidInput):
        ds.add_images([123])
    with pytest.raises(InvalidInput, match="No usable image"):
        ds.add_images([("bad.png", b"nope")])
    assert len(files(ds)) == 5


def test_failure_while_moving_into_place_rolls_back(ws, monkeypatch, nothing_left):
    import lora_nb.datasets.importer as imp

    ds = ws.datasets.create("rb")
    ds.add_images([("keep.png", image_bytes())])
    real = os.rename
    calls = []

    def flaky(a, b):
        calls.append(a)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(a, b)

    monkeypatch.setattr(imp.os, "rename", flaky)
    with pytest.raises(OSError):
        ds.add_images([("n1.png", image_bytes(seed=1)), ("n2.png", image_bytes(seed=2)), ("n3.png", image_bytes(seed=3))])
    monkeypatch.setattr(imp.os, "rename", real)
    assert files(ds) == ["keep.png"]


def test_manager_basics(ws):
    ds = ws.datasets.create("one")
    with pytest.raises(AlreadyExists):
        ws.datasets.create("one")
    with pytest.raises(InvalidName):
        ws.datasets.create("a/b")
    with pytest.raises(NotFound, match="datasets: one"):
        ws.datasets.get("two")
    assert ws.datasets.rename("one", "two").path.is_dir() and not ds.path.exists()
    ws.datasets.create("three")
    with pytest.raises(AlreadyExists):
        ws.datasets.rename("two", "three")
    assert [d.name for d in ws.datasets.list()] == ["three", "two"]
    ws.datasets.delete("two")
    assert ws.datasets.names() == ["three"] and "two" not in ws.datasets and "../x" not in ws.datasets


def test_the_same_entry_name_twice_and_a_nested_archive(ws, nothing_left):
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # zipfile warns about the duplicate name: that is the point
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("a.png", image_bytes(seed=1))
            z.writestr("a.png", image_bytes(seed=2))
            z.writestr("inner.zip", zip_bytes({"x.png": image_bytes(seed=3)}))
    r = ws.datasets.import_zip(buf.getvalue(), "twice")
    assert r.added == ["a.png", "a_2.png"] and dict(r.skipped) == {"inner.zip": "not an image or a caption file"}
