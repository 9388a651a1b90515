"""A local HTTP server that answers the Hugging Face Hub file calls huggingface_hub makes for
``hf_hub_download`` (HEAD and GET of ``/<repo>/resolve/<revision>/<file>``), serving files from a dict.
Tests point ``HF_ENDPOINT`` at it; nothing leaves the machine."""
from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    def __init__(self, files: dict[str, bytes]) -> None:
        """``files``: {"owner/repo/filename": bytes}."""
        self.files = files
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _lookup(self):
                hub.requests.append((self.command, self.path))
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) >= 5 and parts[2] == "resolve":
                    key = "/".join(parts[:2] + parts[4:])
                    return hub.files.get(key)
                return None

            def _headers(self, data: bytes):
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", '"' + hashlib.sha1(data).hexdigest() + '"')
                self.send_header("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()

            def _reply(self, with_body: bool) -> None:
                data = self._lookup()
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._headers(data)
                if with_body:
                    self.wfile.write(data)

            def do_HEAD(self):
                self._reply(with_body=False)

            def do_GET(self):
                self._reply(with_body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
