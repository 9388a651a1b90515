"""Workspace settings: engine paths, GPU slots and defaults, stored in the workspace database.

Values are JSON. Secrets (tokens, passwords) are refused: they belong in the
environment or the Hugging Face login cache, never in the database.

>>> import tempfile, pathlib
>>> from lora_nb.store import Store
>>> s = Settings(Store(pathlib.Path(tempfile.mkdtemp()) / "t.db"))
>>> s.set("kohya_dir", "/opt/sd-scripts")
>>> s.get("kohya_dir")
'/opt/sd-scripts'
>>> s.get("gpu_slots")
1
"""
from __future__ import annotations

import json
import re
from typing import Any

from .errors import SecretError
from .store import Store

__all__ = ["Settings", "DEFAULTS", "looks_secret"]

MIGRATIONS = ["CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)"]

DEFAULTS: dict[str, Any] = {
    "gpu_slots": 1,                 # GPU jobs at once where no GPU is found and gpu_devices is unset
    "gpu_devices": None,            # device index of every GPU slot ([0, 1]); None: the GPUs NVML finds
    "kohya_dir": None,              # sd-scripts checkout; else $LORA_NB_KOHYA_DIR, else <ws>/engines/sd-scripts
    "kohya_python": None,           # its Python; else <kohya_dir>/venv or .venv, else this Python
    "aitoolkit_dir": None,          # ai-toolkit checkout; else $LORA_NB_AITOOLKIT_DIR, else <ws>/engines/ai-toolkit
    "aitoolkit_python": None,
    "default_tagger": "wd-vit-tagger-v3",
    "stop_grace_seconds": 10.0,
    "executor": "local",            # where jobs run: 'local' or a Ray dashboard address (lora_nb.jobs.ray_executor)
    "ray_unreachable_seconds": 30.0,  # a Ray job whose cluster stays unreachable this long is failed
    "ray_files": "shared",          # Ray jobs' files: 'shared' (every node sees the workspace) or 'ship' (lora_nb.jobs.ray_ship)
    "ray_node_root": "/tmp/lora-nb-node",  # where shipped jobs lay out their files on a node (one folder per job)
    "ray_client_address": None,     # Ray Client of the cluster, to fetch shipped outputs; None: ray://<head>:10001
    "autostop_when_drained": False,  # stop this Vast.ai instance when the queue drains (lora_nb.jobs.autostop)
    "autostop_grace_seconds": 600.0,  # ... after this long with nothing queued or running
    "vast_instance_id": None,       # the Vast.ai instance to price and stop where CONTAINER_ID is not set
}

# a name that *is* a credential: HF_TOKEN, civitai_api_key, AWS_SECRET_ACCESS_KEY ... but not tokenizer_cache_dir
# or max_token_length (option names that merely contain "token")
_SECRET_KEY = re.compile(r"secret|password|passwd|credential|(^|[_-])(auth_?)?(token|api[_-]?keys?|access[_-]?keys?)$", re.I)
_SECRET_VALUE = re.compile(r"\b(hf_[A-Za-z0-9]{20,}|[0-9a-f]{32})\b")   # HF tokens; Civitai keys are 32 hex (a 40-hex git commit or a 64-hex sha256 is not a secret)


def looks_secret(key: str, value: Any = None) -> bool:
    """True if a key name or a string value looks like a credential (HF tokens, Civitai keys)."""
    if _SECRET_KEY.search(key):
        return True
    return isinstance(value, str) and bool(_SECRET_VALUE.search(value))


class Settings:
    """Key/value settings with defaults (see ``DEFAULTS``)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        store.ensure_schema("settings", MIGRATIONS)

    def get(self, key: str, default: Any = None) -> Any:
        rows = self._store.query("SELECT value FROM settings WHERE key=?", (key,))
        if rows:
            return json.loads(rows[0][0])
        return DEFAULTS.get(key, default)

    def set(self, key: str, value: Any) -> None:
        if looks_secret(key, value):
            raise SecretError(f"The setting '{key}' looks like a secret, and secrets are never stored in the workspace.",
                              fix="Put tokens in the environment (HF_TOKEN, CIVITAI_TOKEN) or run `huggingface-cli login`.")
        self._store.execute("INSERT INTO settings(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                            (key, json.dumps(value)))

    def delete(self, key: str) -> None:
        self._store.execute("DELETE FROM settings WHERE key=?", (key,))

    def all(self) -> dict[str, Any]:
        """Every setting, defaults filled in."""
        out = dict(DEFAULTS)
        out.update({k: json.loads(v) for k, v in self._store.query("SELECT key, value FROM settings")})
        return out

    def __repr__(self) -> str:
        return f"Settings({self.all()!r})"
