"""The dataset listing: reused (from memory or disk) only while no folder of the dataset changed."""
from __future__ import annotations

import os
import time

import pytest

from lora_nb.datasets import listing
from lora_nb.files import RACY_NS


def _age() -> None:
    time.sleep(RACY_NS / 1e9 + 0.05)


def _names(ds) -> list[str]:
    return [os.path.relpath(p, ds.path) for p in ds.image_files()]


@pytest.fixture
def no_scan(monkeypatch):
    """Make any folder scan fail loudly: what follows must be served from a kept listing."""
    def refuse(root):
        raise AssertionError(f"scanned {root}")
    return lambda: monkeypatch.setattr(listing, "_scan", refuse)


def _png(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n")


def test_listing_is_reused_in_memory_and_from_disk_until_a_folder_changes(ws, no_scan, monkeypatch):
    ds = ws.datasets.create("d")
    for name in ("img10.png", "img2.png", "10_alice/b.jpg", "10_alice/a.jpg"):
        _png(ds.path / name)
    ds.image_files()                                 # the first look makes .lora-nb
    _age()
    first = _names(ds)
    assert first == ["10_alice/a.jpg", "10_alice/b.jpg", "img2.png", "img10.png"]
    assert (ds.meta_dir / "listing.bin").is_file()
    real_scan = listing._scan
    no_scan()
    assert _names(ds) == first                       # from memory
    listing.forget()
    assert _names(ds) == first                       # from .lora-nb/listing.bin, as a new kernel would
    monkeypatch.setattr(listing, "_scan", real_scan)
    _png(ds.path / "10_alice" / "c.jpg")             # a change in a sub-folder
    (ds.path / "img2.png").unlink()                  # and one at the top
    assert _names(ds) == ["10_alice/a.jpg", "10_alice/b.jpg", "10_alice/c.jpg", "img10.png"]


def test_fresh_changes_and_symlinks_are_never_kept(ws, tmp_path):
    ds = ws.datasets.create("d")
    _png(ds.path / "a.png")
    ds.image_files()                                   # the folder changed a moment ago
    assert str(ds.path) not in listing._cache
    _age()
    ds.image_files()
    assert str(ds.path) in listing._cache
    outside = tmp_path / "elsewhere.png"
    _png(outside)
    os.symlink(outside, ds.path / "linked.png")        # a link's target can change without the folder
    _age()
    assert _names(ds) == ["a.png", "linked.png"]
    assert str(ds.path) not in listing._cache
    outside.unlink()                                   # the target goes: the next listing knows at once
    assert _names(ds) == ["a.png"]


def test_damaged_or_foreign_listing_file_is_ignored(ws):
    ds = ws.datasets.create("d")
    _png(ds.path / "a.png")
    ds.image_files()
    _age()
    ds.image_files()
    f = ds.meta_dir / "listing.bin"
    for bad in (b"", b"LNBLIST1\n\x00\x01garbage", f.read_bytes().replace(os.fsencode(ds.path), os.fsencode(ds.path)[:-1] + b"X")):
        f.write_bytes(bad)
        listing.forget()
        assert _names(ds) == ["a.png"]


def test_caption_extension_detection_uses_the_listing(ws):
    ds = ws.datasets.create("d")
    for n in range(3):
        _png(ds.path / f"{n}.png")
        (ds.path / f"{n}.caption").write_text("x")
    (ds.path / "0.txt").write_text("x")
    assert ws.datasets.get("d").caption_extension == ".caption"


def test_an_engines_cache_folders_are_not_part_of_the_dataset(ws):
    """ai-toolkit writes _latent_cache/, _t_e_cache/ (and .aitk_size.json) beside the images it trains on:
    they are neither listed as images nor reported as stray files."""
    import io

    from PIL import Image

    ds = ws.datasets.create("aitk")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, "PNG")
    ds.add_images([("a.png", buf.getvalue()), ("a.txt", b"alice")])
    for cache in ("_latent_cache", "_t_e_cache"):
        (ds.path / cache).mkdir()
        (ds.path / cache / "a_0.safetensors").write_bytes(b"x" * 10)
        (ds.path / cache / "b.png").write_bytes(buf.getvalue())        # an image-looking file in a cache is not an image
    (ds.path / ".aitk_size.json").write_text("{}")
    assert [p.name for p in ds.image_paths()] == ["a.png"]
    rep = ds.report(resolution=64)
    assert rep.other_files == [] and "neither an image nor a caption" not in str(rep)
