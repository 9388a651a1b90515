"""Where a model comes from: Hugging Face (repo + file) or Civitai (model/version id or page URL).

>>> parse_source("hf:stabilityai/sdxl-vae/sdxl_vae.safetensors")
Source(kind='hf', repo_id='stabilityai/sdxl-vae', filename='sdxl_vae.safetensors', version_id=None, model_id=None, url=None)
>>> parse_source("https://civitai.com/models/4201/realistic-vision?modelVersionId=130072").version_id
130072
>>> parse_source("civitai:12345").model_id
12345
"""
from __future__ import annotations

import json
import os
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass

from ..errors import InvalidInput, NetworkError

__all__ = ["Source", "parse_source", "civitai_file", "CIVITAI_API"]

CIVITAI_API = "https://civitai.com/api/v1"


@dataclass(frozen=True)
class Source:
    kind: str                      # "hf" | "civitai" | "url"
    repo_id: str | None = None
    filename: str | None = None
    version_id: int | None = None
    model_id: int | None = None
    url: str | None = None


def parse_source(source: str, filename: str | None = None) -> Source:
    """``hf:owner/repo/file``, ``owner/repo`` + filename, ``civitai:<model id>``, ``civitai:v<version id>``,
    a civitai.com page or download URL, or any https URL."""
    s = source.strip()
    if s.startswith("hf:") or (re.fullmatch(r"[\w.-]+/[\w.-]+", s) and filename):
        path = s[3:] if s.startswith("hf:") else s
        parts = path.split("/")
        if len(parts) < 2:
            raise InvalidInput(f"'{source}' is not owner/repo.", fix="Write hf:owner/repo/file.safetensors.")
        repo_id, name = "/".join(parts[:2]), filename or "/".join(parts[2:])
        if not name:
            raise InvalidInput(f"Which file of {repo_id}?", fix="Write hf:owner/repo/file.safetensors or pass filename=.")
        return Source("hf", repo_id=repo_id, filename=name)
    m = re.fullmatch(r"civitai:(v?)(\d+)", s)
    if m:
        return Source("civitai", version_id=int(m.group(2))) if m.group(1) else Source("civitai", model_id=int(m.group(2)))
    u = urllib.parse.urlparse(s)
    if u.scheme in ("http", "https") and u.hostname and u.hostname.endswith("civitai.com"):
        q = urllib.parse.parse_qs(u.query)
        if "modelVersionId" in q:
            return Source("civitai", version_id=int(q["modelVersionId"][0]))
        m = re.search(r"/api/download/models/(\d+)", u.path)
        if m:
            return Source("civitai", version_id=int(m.group(1)))
        m = re.search(r"/models/(\d+)", u.path)
        if m:
            return Source("civitai", model_id=int(m.group(1)))
    if u.scheme in ("http", "https") and u.hostname:
        return Source("url", url=s, filename=filename)
    raise InvalidInput(f"'{source[:100]}' is not a model source lora-nb understands.",
                       fix="Use hf:owner/repo/file.safetensors, civitai:<model id>, civitai:v<version id>, or a civitai.com / https link.")


def _get_json(url: str, token: str | None) -> dict:
    headers = {"User-Agent": "lora-nb", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        from .fetch import open_url

        with open_url(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise NetworkError(f"Civitai answered HTTP {e.code} for {url.split('?')[0]}.",
                           fix="Check the model or version id (it may be deleted or need a token: CIVITAI_TOKEN).") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise NetworkError(f"Civitai could not be reached ({getattr(e, 'reason', e)}).", fix="Check the network and try again.") from None


def civitai_file(src: Source, token: str | None = None) -> tuple[str, str, str | None, int | None]:
    """(download URL, file name, SHA256, size in bytes) of the primary file of a Civitai model version."""
    api = os.environ.get("LORA_NB_CIVITAI_API", CIVITAI_API).rstrip("/")
    if src.version_id is None:
        model = _get_json(f"{api}/models/{src.model_id}", token)
        versions = model.get("modelVersions") or []
        if not versions:
            raise NetworkError(f"Civitai model {src.model_id} has no downloadable version.", fix="Pick a version on its page.")
        version = versions[0]
    else:
        version = _get_json(f"{api}/model-versions/{src.version_id}", token)
    files = version.get("files") or []
    if not files:
        raise NetworkError(f"Civitai version {version.get('id')} lists no files.", fix="Pick another version.")
    f = next((x for x in files if x.get("primary")), files[0])
    url = f.get("downloadUrl") or version.get("downloadUrl")
    size = int(f["sizeKB"] * 1024) if f.get("sizeKB") else None
    return url, os.path.basename(f.get("name") or f"civitai-{version.get('id')}.safetensors"), (f.get("hashes") or {}).get("SHA256"), size
