"""A local server speaking the Vast.ai API calls lora-nb makes (the ``vastai`` SDK's endpoints):

- ``GET /api/v0/instances/{id}/?owner=me`` -> ``{"instances": {...dph_total, start_date, actual_status...}}``
- ``PUT /api/v0/instances/{id}/`` with ``{"state": "stopped"}`` -> ``{"success": true}``

Both need ``Authorization: Bearer <key>`` (401 otherwise, like Vast). ``fail_status`` makes every call answer
that HTTP status. Tests point ``LORA_NB_VAST_URL`` at ``url`` and read ``requests`` / ``stops`` back.
"""
from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeVastAPI:
    def __init__(self, key: str = "vast-test-key-0123456789abcdef", instances: dict[int, dict] | None = None,
                 fail_status: int | None = None) -> None:
        self.key = key
        self.fail_status = fail_status
        self.instances: dict[int, dict] = instances if instances is not None else {
            4242: {"id": 4242, "dph_total": 0.40, "start_date": time.time() - 2 * 3600, "actual_status": "running",
                   "gpu_name": "RTX 4090", "extra_env": []}}
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self.stops: list[tuple[int, str | None]] = []     # (instance id, Authorization header) of each stop
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with api.lock:
                    api.requests.append((method, self.path, dict(self.headers), body))
                if self.headers.get("Authorization") != f"Bearer {api.key}":
                    return self._send(401, {"success": False, "error": "invalid_user_key", "msg": "Invalid user key"})
                if api.fail_status:
                    return self._send(api.fail_status, {"success": False, "error": "server_error"})
                m = re.fullmatch(r"/api/v0/instances/(\d+)/(\?.*)?", self.path)
                if not m:
                    return self._send(404, {"success": False, "error": "not_found"})
                inst = api.instances.get(int(m.group(1)))
                if method == "GET":
                    if "owner=me" not in (m.group(2) or ""):
                        return self._send(400, {"success": False, "error": "owner=me expected"})
                    return self._send(200, {"instances": inst})
                if inst is None:
                    return self._send(404, {"success": False, "error": "no_such_instance"})
                req = json.loads(body or b"{}")
                if req.get("state") != "stopped":
                    return self._send(400, {"success": False, "error": "unexpected body"})
                with api.lock:
                    api.stops.append((int(m.group(1)), self.headers.get("Authorization")))
                inst["actual_status"] = "stopped"
                return self._send(200, {"success": True})

            def do_GET(self):
                self._handle("GET")

            def do_PUT(self):
                self._handle("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeVastAPI":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


KEY = "vast-test-key-0123456789abcdef"


@contextlib.contextmanager
def vast_container(monkeypatch, key: str = KEY):
    """The fake API, with this process's environment as on a Vast container (children inherit it): instance 4242,
    ``key`` as the container's API key, ``LORA_NB_VAST_URL`` pointing here."""
    with FakeVastAPI(key=key) as api:
        monkeypatch.setenv("LORA_NB_VAST_URL", api.url)
        monkeypatch.setenv("CONTAINER_ID", "4242")
        monkeypatch.setenv("CONTAINER_API_KEY", key)
        monkeypatch.delenv("VAST_API_KEY", raising=False)
        yield api
