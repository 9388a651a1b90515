"""Plain HTTP(S) downloads for dataset imports: streamed to disk, with progress and a size cap.

(Hugging Face and Civitai links with tokens are the model library's business.)
"""
from __future__ import annotations

import os
import re
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Callable

from ..errors import InvalidInput, NetworkError

__all__ = ["download", "filename_from"]

CHUNK = 1 << 20


def filename_from(url: str, content_disposition: str | None) -> str:
    """The file name a server suggests (Content-Disposition), else the last part of the URL path."""
    if content_disposition:
        msg = Message()
        msg["content-disposition"] = content_disposition
        name = msg.get_filename()
        if name:
            return os.path.basename(name.replace("\\", "/"))
    return os.path.basename(urllib.parse.unquote(urllib.parse.urlparse(url).path)) or "download"


def download(url: str, dest: Path, max_bytes: int, progress: Callable[[int, int | None], None] | None = None,
             timeout: float = 60.0) -> str:
    """Stream ``url`` into ``dest``; return the suggested file name. Refuses anything over ``max_bytes``."""
    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidInput(f"{url[:100]!r} is not an http:// or https:// link.", fix="Paste the direct download link of a ZIP or an image.")
    req = urllib.request.Request(url, headers={"User-Agent": "lora-nb"})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise NetworkError(f"The server answered {e.code} {e.reason} for {url[:100]}.",
                           fix="Check that the link is a direct, public download link.") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise NetworkError(f"Could not connect to download {url[:100]} ({reason}).", fix="Check the address and the network.") from None
    with resp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and re.fullmatch(r"\d+", length) else None
        if total is not None and total > max_bytes:
            raise InvalidInput(f"The download is {total:,} bytes, more than the limit of {max_bytes:,}.",
                               fix="Raise max_bytes, or download a smaller archive.")
        name = filename_from(resp.geturl() or url, resp.headers.get("Content-Disposition"))
        done = 0
        try:
            with open(dest, "wb") as f:
                while True:
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    done += len(chunk)
                    if done > max_bytes:
                        raise InvalidInput(f"The download passed the limit of {max_bytes:,} bytes and was stopped.",
                                           fix="Raise max_bytes, or download a smaller archive.")
                    f.write(chunk)
                    if progress:
                        progress(done, total)
        except (OSError, urllib.error.URLError) as e:
            raise NetworkError(f"The download of {url[:100]} broke off after {done:,} bytes ({e}).", fix="Try again.") from None
        if total is not None and done < total:
            raise NetworkError(f"The download of {url[:100]} ended after {done:,} of {total:,} bytes.", fix="Try again.")
    return name
