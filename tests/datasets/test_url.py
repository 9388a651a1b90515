"""URL imports against a real HTTP server on 127.0.0.1 (no internet needed)."""
from __future__ import annotations

import http.server
import threading

import pytest

from corpus import image_bytes, zip_bytes
from lora_nb.errors import InvalidInput, NetworkError

ZIP = zip_bytes({"set/a.png": image_bytes(seed=1), "set/a.txt": b"alice", "set/b.jpg": image_bytes(seed=2, fmt="JPEG")})
PNG = image_bytes(seed=3)


class Handler(http.server.BaseHTTPRequestHandler):
    routes = {"/set.zip": (ZIP, True), "/pic": (PNG, True), "/chunked.zip": (ZIP, False), "/page.html": (b"<html>hi</html>", True)}

    def do_GET(self):  # noqa: N802
        if self.path == "/named":
            body = PNG
            self.send_response(200)
            self.send_header("Content-Disposition", 'attachment; filename="My Photo!.png"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path not in self.routes:
            self.send_error(404, "Not Found")
            return
        body, with_length = self.routes[self.path]
        self.send_response(200)
        if with_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_zip_over_http_with_progress(ws, server):
    seen = []
    r = ws.datasets.import_url(server + "/set.zip", "web", progress=lambda done, total: seen.append((done, total)))
    assert r.images == 2 and r.captions == 1
    assert seen[-1] == (len(ZIP), len(ZIP))
    assert [p.name for p in ws.tmp_dir.iterdir()] == []


def test_single_image_and_suggested_name(ws, server):
    assert ws.datasets.import_url(server + "/pic", "one").added == ["pic.png"]
    assert ws.datasets.import_url(server + "/named", "two").added == ["My Photo_.png"]


def test_size_cap_with_and_without_content_length(ws, server):
    with pytest.raises(InvalidInput, match="more than the limit"):
        ws.datasets.import_url(server + "/set.zip", "big", max_bytes=100)
    with pytest.raises(InvalidInput, match="passed the limit"):
        ws.datasets.import_url(server + "/chunked.zip", "big", max_bytes=100)
    assert "big" not in ws.datasets and [p.name for p in ws.tmp_dir.iterdir()] == []


def test_bad_urls_and_content(ws, server):
    with pytest.raises(NetworkError, match="404"):
        ws.datasets.import_url(server + "/missing.zip", "x")
    with pytest.raises(InvalidInput, match="neither a ZIP archive nor an image"):
        ws.datasets.import_url(server + "/page.html", "x")
    with pytest.raises(InvalidInput, match="http"):
        ws.datasets.import_url("file:///etc/passwd", "x")
    with pytest.raises(NetworkError):
        ws.datasets.import_url("http://127.0.0.1:1/x.zip", "x", timeout=5)
    assert ws.datasets.names() == []


def test_import_url_as_a_job(ws, server):
    if not hasattr(type(ws.jobs), "submit_task"):
        pytest.skip("the jobs area's submit_task is not in this tree yet")
    job = ws.datasets.import_url_job(server + "/set.zip", "viajob")
    status = job.wait(timeout=120)
    assert str(status) == "succeeded", job.log_tail(40)
    assert ws.datasets.get("viajob").captions.get("a.png") == "alice"
    job2 = ws.datasets.import_url_job(server + "/missing.zip", "nope")
    assert str(job2.wait(timeout=120)) == "failed"
    assert any("404" in line for line in job2.log_tail(40))
