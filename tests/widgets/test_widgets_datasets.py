"""DatasetPanel and its gallery, driven without a browser."""
from __future__ import annotations

import io
import zipfile


from lora_nb.widgets import DatasetPanel


def _png(colour=(200, 30, 30), size=(40, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def test_create_rename_delete(ws):
    p = DatasetPanel(ws)
    assert p.select.options == () and "create one" in p.summary.value
    p.name_box.value = "cats"
    p.create_button.click()
    assert (ws.datasets_dir / "cats").is_dir() and p.select.value == "cats" and p.banner.kind == "info"
    p.rename_box.value = "felines"
    p.rename_button.click()
    assert p.select.value == "felines" and not (ws.datasets_dir / "cats").exists()
    p.delete_button.click()                               # first click only asks
    assert (ws.datasets_dir / "felines").is_dir() and "Really delete" in p.delete_button.description
    p.delete_button.click()
    assert not (ws.datasets_dir / "felines").exists() and p.select.value is None


def test_bad_names_are_one_sentence_and_create_nothing(ws):
    p = DatasetPanel(ws)
    p.name_box.value = "../evil"
    p.create_button.click()
    assert p.banner.kind == "error" and "\n" not in p.banner.text and "Traceback" not in p.banner.text
    assert sorted(x.name for x in ws.datasets_dir.iterdir()) == []
    p.name_box.value = "ok"
    p.create_button.click()
    p.name_box.value = "ok"
    p.create_button.click()
    assert p.banner.kind == "error" and "already exists" in p.banner.text


def test_gallery_pages_reuse_a_fixed_set_of_cells(ws, demo_ds):
    p = DatasetPanel(ws, page_size=12)
    p.runner.idle()
    g = p.gallery
    cells = list(g.cells)
    assert g.pages == 3 and "30 images" in g.page_label.value
    assert all(img.value[:3] == b"\xff\xd8\xff" for img in g.images)       # JPEG thumbnails from the dataset's cache
    first = [n.value for n in g.names]
    g.next_button.click()
    g.next_button.click()
    p.runner.idle()
    assert g.cells == cells and g.page == 2 and g.next_button.disabled
    shown = [c for c in g.cells if c.layout.display != "none"]
    assert len(shown) == 6 and [n.value for n in g.names][:6] != first[:6]
    assert all(img.value for img in g.images[:6])
    assert "lnbdemo" in g.captions[0].value


def test_gallery_cost_does_not_grow_with_the_dataset(ws, monkeypatch):
    """A 5,000-file dataset: one page reads page_size captions and makes page_size thumbnails."""
    ds = ws.datasets.create("big")
    sub = ds.path / "1_x"
    sub.mkdir()
    data = _png()
    for i in range(5000):
        (sub / f"{i:05d}.png").write_bytes(data)
    from lora_nb.captions import Captions
    from lora_nb.datasets import thumbs

    reads, made = [], []
    orig_get, orig_make = Captions.get, thumbs.make_thumbnail
    monkeypatch.setattr(Captions, "get", lambda self, image, default=None: reads.append(image) or orig_get(self, image, default))
    monkeypatch.setattr(thumbs, "make_thumbnail", lambda src, dst, size: made.append(src) or orig_make(src, dst, size))
    p = DatasetPanel(ws, page_size=20)
    p.runner.idle()
    assert p.gallery.pages == 250 and len(reads) == 20 and len(made) == 20
    reads.clear(), made.clear()
    p.gallery.go(123)
    p.runner.idle()
    assert len(reads) == 20 and len(made) == 20 and "page 124 of 250" in p.gallery.page_label.value


def test_import_folder_and_zip_from_paths(ws, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes(_png())
    (src / "a.txt").write_text("alice, smile")
    z = tmp_path / "more.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("b.png", _png((0, 200, 0)))
        zf.writestr("notes.exe", b"MZ....")
    p = DatasetPanel(ws)
    p.name_box.value = "alice"
    p.source_box.value = str(src)
    p.import_button.click()
    p.runner.idle()
    assert p.select.value == "alice" and "Imported 1 images" in p.banner.text
    p.source_box.value = str(z)
    p.import_button.click()
    p.runner.idle()
    assert sorted(i.name for i in ws.datasets.get("alice").images()) == ["a.png", "b.png"]
    assert "skipped 1" in p.banner.text and p.gallery.files and len(p.gallery.files) == 2
    p.source_box.value = str(tmp_path / "nope")
    p.import_button.click()
    assert p.banner.kind == "error" and "no file or folder" in p.banner.text


def test_finished_upload_is_imported_and_removed(ws, tmp_path):
    """What the chunked uploader calls when a file has arrived (B's widget calls on_done(path))."""
    p = DatasetPanel(ws)
    p.name_box.value = "up"
    z = ws.tmp_dir / "upload.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i in range(3):
            zf.writestr(f"10_up/{i}.png", _png((i * 50, 0, 0)))
    p._uploaded(z)
    p.runner.idle()
    assert len(ws.datasets.get("up").images()) == 3 and not z.exists() and p.select.value == "up"
    single = ws.tmp_dir / "one.png"
    single.write_bytes(_png())
    p._uploaded(single)
    p.runner.idle()
    assert len(ws.datasets.get("up").images()) == 4 and not single.exists()


def test_upload_widget_is_embedded_when_available(ws):
    p = DatasetPanel(ws)
    try:
        import lora_nb.widgets.upload  # noqa: F401
    except Exception:
        assert p.upload is None and "unavailable" in p._upload_error
    else:
        assert p.upload is not None and "lnb-upload" in p.upload._dom_classes


def test_report(ws, demo_ds):
    p = DatasetPanel(ws)
    p.report_button.click()
    p.runner.idle()
    assert "30 images" in p.report_view.value and "lnb-report-body" in p.report_view.value
    p.select.value = None
    p.report_button.click()
    assert p.banner.kind == "error" and "Choose a dataset" in p.banner.text


def test_import_from_a_url_runs_as_a_job(ws, tmp_path):
    """A local HTTP server on 127.0.0.1 serves a ZIP; the panel queues the import_url task and follows it."""
    import functools
    import http.server
    import threading

    from lora_nb.progress.events import JobStatus
    from support import wait_for

    site = tmp_path / "site"
    site.mkdir()
    with zipfile.ZipFile(site / "set.zip", "w") as zf:
        for i in range(4):
            zf.writestr(f"{i}.png", _png((i * 60, 10, 10)))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        p = DatasetPanel(ws)
        p.name_box.value = "web"
        p.source_box.value = f"http://127.0.0.1:{server.server_address[1]}/set.zip"
        p.import_button.click()
        assert p.banner.kind == "info", p.banner.text
        job = p.import_line.job
        assert job.wait(60) is JobStatus.SUCCEEDED, job.error
        wait_for(lambda: p.select.value == "web" and p.gallery.files, timeout=15)
        assert len(p.gallery.files) == 4 and p.import_line.bar.value == 1.0
    finally:
        server.shutdown()
