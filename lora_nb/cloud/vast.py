"""The few Vast.ai API calls lora-nb makes: read this instance (price per hour, start time) and stop it.

They are the calls of the ``vastai`` SDK (``vastai/api/instances.py``): ``GET /api/v0/instances/{id}/?owner=me``
(the instance is under ``"instances"``; ``dph_total`` is its total price in $/hour, ``start_date`` a Unix time)
and ``PUT /api/v0/instances/{id}/`` with ``{"state": "stopped"}``, both with ``Authorization: Bearer <key>``.

Where the values come from (never from the workspace, and the key is never logged or stored):

- the instance id: ``CONTAINER_ID`` (Vast sets it in every container), else ``VAST_CONTAINERLABEL`` (``C.<id>``);
- the API key: ``CONTAINER_API_KEY`` (Vast's per-instance key), else ``VAST_API_KEY``, else the ``vastai`` CLI's
  key file (``$XDG_CONFIG_HOME/vastai/vast_api_key``, ``~/.config/vastai/vast_api_key``, ``~/.vast_api_key``);
- the server: ``$LORA_NB_VAST_URL``, else ``$VAST_URL``, else ``https://console.vast.ai``.

>>> instance_id({"VAST_CONTAINERLABEL": "C.4242"})
4242
>>> api = VastAPI("not-a-real-key", base_url="http://127.0.0.1:9")
>>> "not-a-real-key" in repr(api)
False
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError, NetworkError

__all__ = ["VastError", "VastInstance", "VastAPI", "instance_id", "api_key", "base_url", "DEFAULT_URL", "URL_ENV"]

DEFAULT_URL = "https://console.vast.ai"
URL_ENV = "LORA_NB_VAST_URL"
KEY_FIX = ("Set VAST_API_KEY to a key from https://cloud.vast.ai/manage-keys/ (or save it with `vastai set api-key`); "
           "Vast sets CONTAINER_API_KEY in its containers.")


class VastError(NetworkError):
    """A Vast.ai API call failed (refused key, server error, unreachable); the message never contains the key."""


@dataclass(frozen=True)
class VastInstance:
    """What lora-nb reads about one instance: its price per hour (``dph_total``) and when it started."""

    id: int
    price_per_hour: float | None
    started_at: float | None
    status: str | None = None
    gpu: str | None = None

    def spent(self, now: float | None = None) -> float | None:
        """Estimated spend since the instance started: ``dph_total`` x hours since ``start_date`` (storage and
        traffic charges, and time it was stopped, are not counted).

        >>> VastInstance(1, 0.5, 1000.0).spent(now=1000.0 + 7200)
        1.0
        """
        if self.price_per_hour is None or self.started_at is None:
            return None
        hours = max(0.0, ((time.time() if now is None else now) - self.started_at) / 3600)
        return self.price_per_hour * hours


def instance_id(env: Mapping[str, str] | None = None) -> int | None:
    """This container's Vast.ai instance id, or None when it is not a Vast container."""
    env = os.environ if env is None else env
    raw = (env.get("CONTAINER_ID") or "").strip()
    if not raw:
        label = (env.get("VAST_CONTAINERLABEL") or "").strip()
        raw = label[2:] if label.startswith("C.") else ""
    return int(raw) if raw.isdigit() else None


def api_key(env: Mapping[str, str] | None = None, home: Path | None = None) -> str | None:
    """The Vast.ai API key from the environment or the vastai CLI's key file; None when there is none."""
    env = os.environ if env is None else env
    for name in ("CONTAINER_API_KEY", "VAST_API_KEY"):
        if (env.get(name) or "").strip():
            return env[name].strip()
    home = Path(env.get("HOME") or Path.home()) if home is None else home
    config = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    for path in (config / "vastai" / "vast_api_key", home / ".vast_api_key"):
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if text:
            return text
    return None


def base_url(env: Mapping[str, str] | None = None) -> str:
    """The API server: ``$LORA_NB_VAST_URL`` (tests point it at a local server), ``$VAST_URL``, else Vast's."""
    env = os.environ if env is None else env
    return (env.get(URL_ENV) or env.get("VAST_URL") or DEFAULT_URL).rstrip("/")


class VastAPI:
    """A minimal Vast.ai API client (the key stays in this object: not in its repr, errors or logs)."""

    def __init__(self, key: str, base_url: str = DEFAULT_URL, timeout: float = 10.0) -> None:
        if not key:
            raise ConfigError("No Vast.ai API key was found.", fix=KEY_FIX)
        self._key = key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, timeout: float = 10.0) -> "VastAPI":
        """The client for this machine's key and server; ConfigError (with the fix) when there is no key."""
        return cls(api_key(env) or "", base_url(env), timeout)

    def __repr__(self) -> str:
        return f"VastAPI(base_url={self.base_url!r})"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, what: str = "") -> dict[str, Any]:
        url = f"{self.base_url}/api/v0{path}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"Bearer {self._key}", "Accept": "application/json", "User-Agent": "lora-nb",
            **({"Content-Type": "application/json"} if data is not None else {})})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise VastError(f"The Vast.ai API refused the API key (HTTP {e.code}) while trying to {what}.", fix=KEY_FIX) from None
            if e.code == 404:
                raise VastError(f"The Vast.ai API does not know this instance (HTTP 404) while trying to {what}.",
                                fix="Check CONTAINER_ID; the instance may have been destroyed.") from None
            raise VastError(f"The Vast.ai API answered HTTP {e.code} while trying to {what}.",
                            fix="Try again later; nothing was changed on this side.") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise VastError(f"The Vast.ai API at {self.base_url} could not be reached ({reason}) while trying to {what}.",
                            fix=f"Check the network (or ${URL_ENV}).") from None
        try:
            out = json.loads(raw or b"{}")
        except ValueError:
            raise VastError(f"The Vast.ai API sent an answer that is not JSON while trying to {what}.",
                            fix="Try again later.") from None
        return out if isinstance(out, dict) else {}

    def instance(self, instance_id: int) -> VastInstance:
        """Read one instance of this account: price per hour and start time."""
        out = self._call("GET", f"/instances/{int(instance_id)}/?owner=me", what=f"read instance {instance_id}")
        row = out.get("instances")
        if not isinstance(row, dict):
            raise VastError(f"The Vast.ai API has no instance {instance_id} for this key.",
                            fix="Check CONTAINER_ID and that the key belongs to the instance's account.")

        def num(key: str) -> float | None:
            v = row.get(key)
            return float(v) if isinstance(v, (int, float)) else None

        return VastInstance(id=int(instance_id), price_per_hour=num("dph_total"), started_at=num("start_date"),
                            status=row.get("actual_status"), gpu=row.get("gpu_name"))

    def stop(self, instance_id: int) -> None:
        """Stop the instance (it keeps its disk; storage is still billed)."""
        out = self._call("PUT", f"/instances/{int(instance_id)}/", {"state": "stopped"}, what=f"stop instance {instance_id}")
        if out.get("success") is False:
            raise VastError(f"The Vast.ai API did not stop instance {instance_id}: {out.get('msg') or out.get('error') or 'no reason given'}.",
                            fix="Stop it from the Vast.ai console.")
