"""LoRA files: read their metadata without loading tensors, verify, resize (fast exact SVD), list, publish.

>>> import lora_nb.lora as L
>>> sorted(n for n in L.__all__)[:4]
['LoraInfo', 'list_loras', 'lora_info', 'publish']
"""
from __future__ import annotations

from typing import Any

__all__ = ["read_metadata", "lora_info", "LoraInfo", "verify", "resize", "resize_job", "publish", "list_loras"]

_WHERE = {"read_metadata": ".info", "lora_info": ".info", "LoraInfo": ".info", "verify": ".checks", "resize": ".rank_resize",
          "resize_job": ".browse", "publish": ".hub", "list_loras": ".browse"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(name)
