"""Resumable HTTP downloads with a SHA256 check: ``<dest>.part`` grows until complete, then is renamed.

An interrupted download continues where it stopped (HTTP Range); a server that ignores the range
makes it start over; a checksum mismatch deletes the file and says so. Tokens go in headers, never
in URLs that are logged.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from ..errors import InvalidInput, NetworkError

__all__ = ["fetch", "sha256_of", "open_url", "CHUNK"]

CHUNK = 1 << 20


class _KeepAuthOnSameHost(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but drop ``Authorization`` when one leads to another host.

    Civitai answers a download with a redirect to a signed storage URL: the token must not travel
    there (it would leak, and signed URLs refuse a second credential); urllib alone would forward it.
    """

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            for name in list(new.headers):
                if name.lower() == "authorization":
                    del new.headers[name]
        return new


_OPENER = urllib.request.build_opener(_KeepAuthOnSameHost)


def open_url(req: urllib.request.Request, timeout: float) -> "urllib.response.addinfourl":
    """``urlopen`` that never forwards the Authorization header to another host on a redirect."""
    return _OPENER.open(req, timeout=timeout)


def sha256_of(path: str | os.PathLike[str], progress: Callable[[int], None] | None = None) -> str:
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK * 4):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(done)
    return h.hexdigest()


def fetch(url: str, dest: str | os.PathLike[str], sha256: str | None = None, headers: dict[str, str] | None = None,
          progress: Callable[[int, int | None], None] | None = None, timeout: float = 60.0,
          should_stop: Callable[[], bool] | None = None) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), check ``sha256`` when given; return ``dest``."""
    if urllib.parse.urlparse(url).scheme.lower() not in ("http", "https"):
        raise InvalidInput(f"{url[:100]!r} is not an http(s) link.", fix="Give the direct download link.")
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    req_headers = {"User-Agent": "lora-nb", **(headers or {})}
    if have:
        req_headers["Range"] = f"bytes={have}-"
    req = urllib.request.Request(url, headers=req_headers)
    try:
        resp = open_url(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:                       # the part is already complete
            resp = None
        else:
            fix = {401: "The server wants a token (Civitai: set CIVITAI_TOKEN; Hugging Face: HF_TOKEN).",
                   403: "Access was refused: accept the model's licence on its page, or use a token with access.",
                   404: "Check the link or the model/version id."}.get(e.code, "Try again later.")
            raise NetworkError(f"The download of {dest.name} failed: HTTP {e.code}.", fix=fix) from None
    except (urllib.error.URLError, OSError) as e:
        raise NetworkError(f"The download of {dest.name} failed ({getattr(e, 'reason', e)}).",
                           fix="Check the network and try again; the part already downloaded is kept.") from None
    if resp is not None:
        with resp:
            status = resp.status
            if status == 200 and have:                    # no range support: start over
                have = 0
            length = resp.headers.get("Content-Length")
            total = (int(length) + have) if length and length.isdigit() else None
            mode = "ab" if status == 206 else "wb"
            done = have if status == 206 else 0
            try:
                with open(part, mode) as f:
                    while True:
                        if should_stop is not None and should_stop():
                            raise NetworkError(f"The download of {dest.name} was stopped at {done:,} bytes.",
                                               fix="Start it again to resume.")
                        chunk = resp.read(CHUNK)
                        if not chunk:
                            break
                        f.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
            except (OSError, urllib.error.URLError) as e:
                if isinstance(e, NetworkError):
                    raise
                raise NetworkError(f"The download of {dest.name} broke off at {done:,} bytes ({e}).",
                                   fix="Start it again: it resumes from there.") from None
            if total is not None and done < total:
                raise NetworkError(f"The download of {dest.name} broke off at {done:,} of {total:,} bytes.",
                                   fix="Start it again: it resumes from there.")
    if sha256:
        got = sha256_of(part)
        if got.lower() != sha256.lower():
            part.unlink(missing_ok=True)
            raise NetworkError(f"{dest.name} does not match its published SHA256 (got {got[:12]}…, expected {sha256[:12]}…); it was deleted.",
                               fix="Download it again; if it keeps failing, the file on the server differs from its listing.")
    os.replace(part, dest)
    return dest
