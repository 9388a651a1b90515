"""A local server speaking the Hugging Face Hub HTTP calls lora-nb's publish uses (create repo, preupload,
commit with inline "regular" files), storing what it receives. Tests set HF_ENDPOINT to its URL."""
from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHubAPI:
    def __init__(self, token: str = "hf_testtoken_0123456789abcdefghij", fail_status: int | None = None) -> None:
        self.token = token
        self.fail_status = fail_status
        self.repos: dict[str, dict] = {}          # repo_id -> {"private": bool, "files": {path: bytes}, "commits": int}
        self.requests: list[tuple[str, str, dict]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, status: int, body: dict | None = None) -> None:
                data = json.dumps(body or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status >= 400:
                    self.send_header("X-Error-Message", body.get("error", "error") if body else "error")
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    return self.rfile.read(n)
                if self.headers.get("Transfer-Encoding") == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return b""

            def do_POST(self):
                body = self._body()
                hub.requests.append(("POST", self.path, dict(self.headers)))
                if self.headers.get("Authorization") != f"Bearer {hub.token}":
                    return self._send(401, {"error": "Invalid credentials in Authorization header"})
                if hub.fail_status:
                    return self._send(hub.fail_status, {"error": "You don't have the rights to create a model under this namespace"})
                path = self.path.split("?")[0]
                if path == "/api/validate-yaml":
                    return self._send(200, {"errors": [], "warnings": []})
                if path == "/api/repos/create":
                    req = json.loads(body)
                    repo_id = f"{req.get('organization') or 'me'}/{req['name']}" if "/" not in req["name"] else req["name"]
                    private = req["private"] if "private" in req else (req.get("visibility") == "private" if "visibility" in req else None)
                    hub.repos.setdefault(repo_id, {"private": private, "files": {}, "commits": 0, "create": req})
                    return self._send(200, {"url": f"{hub.url}/{repo_id}"})
                parts = path.strip("/").split("/")
                if parts[:2] == ["api", "models"] and "preupload" in parts:
                    req = json.loads(body)
                    return self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                      for f in req.get("files", [])]})
                if parts[:2] == ["api", "models"] and "commit" in parts:
                    repo_id = "/".join(parts[2:4])
                    repo = hub.repos.setdefault(repo_id, {"private": None, "files": {}, "commits": 0})
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item.get("key") == "file":
                            v = item["value"]
                            repo["files"][v["path"]] = base64.b64decode(v["content"]) if v.get("encoding") == "base64" else v["content"].encode()
                    repo["commits"] += 1
                    return self._send(200, {"commitUrl": f"{hub.url}/{repo_id}/commit/abc{repo['commits']}", "commitOid": f"abc{repo['commits']:037d}",
                                            "success": True})
                return self._send(404, {"error": f"not implemented in the fake hub: {path}"})

            def do_GET(self):
                hub.requests.append(("GET", self.path, dict(self.headers)))
                return self._send(404, {"error": "not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHubAPI":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
