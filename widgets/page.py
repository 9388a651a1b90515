"""Two small browser-side helpers (anywidgets): the presence ping and a message that scrolls itself into view.

- :class:`PresencePing` is part of the Dashboard, invisible. Its browser side sends a ping every
  ``interval`` seconds (and at once when the tab becomes visible again); the kernel records them in
  :data:`~.common.PRESENCE`. Once the tab is closed the pings stop, the periodic redraws stop after
  three missed pings, the kernel goes quiet and the server's idle culler shuts it down
  (``lora-nb dashboard --cull-idle``). The interval comes from ``$LORA_NB_PING_SECONDS`` (set by the
  launcher), else 30 s.
- :class:`Notice` is a one-line message placed beside a button (Start training's error is shown where
  the user clicked, not only in the banner at the top of a long form). Each :meth:`Notice.show` scrolls it
  into view in the browser.

>>> n = Notice(); n.show("Something is missing.", "error"); n.text, n.kind, n.seq
('Something is missing.', 'error', 1)
"""
from __future__ import annotations

import os
from typing import Any

import anywidget
import traitlets

from .common import PRESENCE

__all__ = ["PresencePing", "Notice", "ping_interval"]

_PING_ESM = r"""
function render({ model, el }) {
  el.classList.add("lnb-presence");
  el.style.display = "none";
  const ping = () => model.send({ type: "ping" });
  ping();
  const timer = setInterval(ping, Math.max(0.2, model.get("interval")) * 1000);
  const onVisible = () => { if (document.visibilityState === "visible") ping(); };
  document.addEventListener("visibilitychange", onVisible);
  return () => { clearInterval(timer); document.removeEventListener("visibilitychange", onVisible); };
}
export default { render };
"""


def ping_interval() -> float:
    """Seconds between the browser's pings: ``$LORA_NB_PING_SECONDS``, else 30."""
    try:
        return max(0.2, float(os.environ.get("LORA_NB_PING_SECONDS", "30")))
    except ValueError:
        return 30.0


class PresencePing(anywidget.AnyWidget):
    """Tells the kernel that a browser shows the panels (see the module docstring)."""

    _esm = _PING_ESM
    interval = traitlets.Float(30.0).tag(sync=True)

    def __init__(self, interval: float | None = None, **kwargs: Any) -> None:
        super().__init__(interval=ping_interval() if interval is None else float(interval), **kwargs)
        self.pings = 0
        self.on_msg(self._on_msg)

    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: list[Any]) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            self.pings += 1
            PRESENCE.ping(self.interval)


_NOTICE_ESM = r"""
function render({ model, el }) {
  el.classList.add("lnb-notice");
  const box = document.createElement("div");
  el.append(box);
  const draw = (scroll) => {
    const text = model.get("text"), kind = model.get("kind") || "info";
    box.className = text ? "lnb-notice-text lnb-" + kind : "lnb-notice-text";
    box.textContent = text;
    box.style.color = kind === "error" ? "#b00020" : "#1b5e20";
    box.style.padding = text ? "2px 6px" : "0";
    if (scroll && text) el.scrollIntoView({ block: "nearest", inline: "nearest" });
  };
  model.on("change:seq", () => draw(true));
  model.on("change:text", () => draw(false));
  draw(false);
}
export default { render };
"""


class Notice(anywidget.AnyWidget):
    """A one-line message beside a control; :meth:`show` scrolls it into view in the browser."""

    _esm = _NOTICE_ESM
    text = traitlets.Unicode("").tag(sync=True)
    kind = traitlets.Unicode("").tag(sync=True)
    seq = traitlets.Int(0).tag(sync=True)

    def show(self, text: str, kind: str = "error") -> None:
        with self.hold_sync():
            self.text, self.kind = text, kind
            self.seq += 1

    def clear(self) -> None:
        self.text, self.kind = "", ""
