"""Shared bits of the panels: the one-sentence error banner, a rate limiter for updates that come
from background threads (paused while no browser shows the panels: :data:`PRESENCE`), a small
background runner, and formatting helpers.

>>> from lora_nb.widgets.common import one_sentence, fmt_bytes
>>> one_sentence(ValueError("bad value\\nTraceback ..."))
'bad value'
>>> fmt_bytes(1536)
'1.5 KB'
"""
from __future__ import annotations

import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import ipywidgets as W
from ipywidgets.widgets.widget_bool import CheckboxStyle, ToggleButtonStyle
from ipywidgets.widgets.widget_string import HTMLStyle, TextStyle

from lora_nb.jobs.format import bar_fraction, failure_cause, fmt_duration, job_line, status_style
from lora_nb.progress.events import JobStatus

if TYPE_CHECKING:  # pragma: no cover  (the job manager and its models load when a job is first shown:
    from lora_nb.jobs.manager import Job     # not on the dashboard's first page)

__all__ = ["ErrorBanner", "Throttle", "Runner", "one_sentence", "fmt_bytes", "fmt_duration", "css", "image_bytes",
           "JobLine", "esc", "HTMLStyle", "TextStyle", "CheckboxStyle", "ToggleButtonStyle", "Presence", "PRESENCE",
           "ended_text", "STYLE", "STYLE_HTML", "chip"]


def esc(text: Any) -> str:
    """HTML-escape ``text`` (everything a panel shows from files or logs goes through this)."""
    import html

    return html.escape(str(text), quote=True)


def one_sentence(error: BaseException | str) -> str:
    """The message a person sees for ``error``: lora-nb errors as written (sentence + fix), others as their
    first line (never a traceback)."""
    from lora_nb.errors import LoraNbError

    if isinstance(error, str):
        text = error
    elif isinstance(error, LoraNbError):
        text = str(error)
    else:
        text = str(error) or type(error).__name__
        if not isinstance(error, (ValueError, OSError, LookupError)):
            text = f"{type(error).__name__}: {text}"
    first = text.strip().splitlines()[0] if text.strip() else "Something went wrong."
    return first[:400]


def css(widget: W.Widget, *classes: str) -> W.Widget:
    """Add CSS classes (the ``lnb-*`` hooks the browser tests use); returns the widget."""
    for c in classes:
        widget.add_class(c)
    return widget


class ErrorBanner(W.HTML):
    """One line under a panel's title: an error (red), a success note (green) or nothing.

    >>> b = ErrorBanner(); b.error(ValueError("no such thing")); b.text
    'no such thing'
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(value="", **kw)
        self.text = ""
        self.kind = ""
        self.add_class("lnb-banner")

    def error(self, error: BaseException | str) -> None:
        self._show(one_sentence(error), "error", "#b00020")

    def info(self, text: str) -> None:
        self._show(text, "info", "#1b5e20")

    def clear(self) -> None:
        self.text, self.kind, self.value = "", "", ""

    def _show(self, text: str, kind: str, colour: str) -> None:
        self.text, self.kind = text, kind
        self.value = f'<div class="lnb-{kind}" style="color:{colour};padding:2px 0">{esc(text)}</div>'

    def guard(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a button handler so that any exception it raises is shown here as one sentence."""
        def wrapped(*a: Any, **kw: Any) -> Any:
            try:
                return fn(*a, **kw)
            except Exception as e:  # shown, never raised into the kernel's output
                self.error(e)
                return None
        wrapped.__name__ = getattr(fn, "__name__", "handler")
        return wrapped


class Presence:
    """Whether a browser shows this kernel's panels now, from the pings of :class:`~.page.PresencePing`.

    Until the first ping (a panel shown in a notebook without the ping widget, a test) everyone counts
    as watching. After one, the panels are watched while pings keep arriving (``3 x`` their interval).
    Periodic redraws (the header, the jobs list, job progress) are skipped while nobody watches, so a
    kernel whose tab was closed sends nothing and the server's idle culler can shut it down; jobs go on
    (they belong to their supervisors). Redraws held meanwhile run at the next ping.

    >>> p = Presence(); p.watching()
    True
    >>> p.ping(interval=10.0, now=100.0); p.watching(now=125.0), p.watching(now=131.0)
    (True, False)
    """

    def __init__(self) -> None:
        self.timeout: float | None = None
        self.last = 0.0
        self._held: "weakref.WeakSet[Throttle]" = weakref.WeakSet()
        self._lock = threading.Lock()

    def watching(self, now: float | None = None) -> bool:
        if self.timeout is None:
            return True
        return (time.monotonic() if now is None else now) - self.last <= self.timeout

    def ping(self, interval: float, now: float | None = None) -> None:
        """A browser showed the panels ``interval`` seconds after its previous ping: redraw what was held."""
        with self._lock:
            self.timeout = 3.0 * max(float(interval), 0.1)
            self.last = time.monotonic() if now is None else now
            held = list(self._held)
            self._held.clear()
        if held:      # redraw off the comm handler's (the kernel's) thread
            threading.Thread(target=lambda: [t.trigger() for t in held], name="lnb-presence", daemon=True).start()

    def hold(self, throttle: "Throttle") -> None:
        with self._lock:
            self._held.add(throttle)


PRESENCE = Presence()


class Throttle:
    """Call ``fn()`` at most ``rate`` times a second, however often ``trigger()`` is called, from any thread.

    Triggers inside the quiet interval are folded into one call at its end, so the last state
    is always drawn. ``fn`` runs in the triggering thread or in a short timer thread, never
    concurrently with itself.

    >>> calls = []
    >>> t = Throttle(lambda: calls.append(1), rate=5)
    >>> for _ in range(100): t.trigger()
    >>> t.flush(); len(calls) <= 3
    True
    """

    def __init__(self, fn: Callable[[], Any], rate: float = 10.0) -> None:
        self.fn = fn
        self.interval = 1.0 / rate
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._last = 0.0
        self._timer: threading.Timer | None = None
        self.calls = 0
        self.errors: list[BaseException] = []

    def trigger(self) -> None:
        with self._lock:
            if self._timer is not None:
                return
            wait = self._last + self.interval - time.monotonic()
            if wait > 0:
                self._timer = threading.Timer(wait, self._fire)
                self._timer.daemon = True
                self._timer.start()
                return
            self._last = time.monotonic()
        self._call()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
        self._call()

    def _call(self) -> None:
        if not PRESENCE.watching():      # nobody sees it: draw at the next ping instead
            PRESENCE.hold(self)
            return
        with self._run_lock:
            self.calls += 1
            try:
                self.fn()
            except Exception as e:  # a drawing error must not kill the follower thread
                self.errors.append(e)

    def flush(self) -> None:
        """Run a pending call now (tests, and before a panel is closed)."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            self._call()

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


class Runner:
    """Runs slow calls (imports, thumbnails, reports) off the kernel's thread, one at a time per panel.

    Errors go to ``banner`` as one sentence. ``idle()`` waits until everything submitted is done (tests).
    """

    def __init__(self, banner: ErrorBanner | None = None, name: str = "lnb") -> None:
        self.banner = banner
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: list[Future] = []
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[Callable[..., Any], tuple[Any, ...], Callable[[Any], Any] | None]] = {}
        self._draining: set[str] = set()

    def submit(self, fn: Callable[..., Any], *args: Any, on_done: Callable[[Any], Any] | None = None, **kw: Any) -> Future:
        def work() -> Any:
            try:
                result = fn(*args, **kw)
                if on_done is not None:
                    on_done(result)
                return result
            except Exception as e:
                if self.banner is not None:
                    self.banner.error(e)
                raise
        fut = self._pool.submit(work)
        with self._lock:
            self._pending = [f for f in self._pending if not f.done()] + [fut]
        return fut

    def latest(self, key: str, fn: Callable[..., Any], *args: Any, on_done: Callable[[Any], Any] | None = None) -> None:
        """Run ``fn(*args)`` soon, but only the newest request per ``key``: requests that arrive while one
        is waiting replace it (typing in a box, flipping pages), so slow work never piles up."""
        with self._lock:
            self._latest[key] = (fn, args, on_done)
            if key in self._draining:
                return
            self._draining.add(key)
        self._pool_submit(self._drain, key)

    def _drain(self, key: str) -> None:
        while True:
            with self._lock:
                item = self._latest.pop(key, None)
                if item is None:
                    self._draining.discard(key)
                    return
            fn, args, on_done = item
            try:
                result = fn(*args)
                if on_done is not None:
                    on_done(result)
            except Exception as e:
                if self.banner is not None:
                    self.banner.error(e)

    def _pool_submit(self, fn: Callable[..., Any], *args: Any) -> None:
        fut = self._pool.submit(fn, *args)
        with self._lock:
            self._pending = [f for f in self._pending if not f.done()] + [fut]

    def idle(self, timeout: float = 30.0) -> None:
        """Wait for every submitted call to finish (their errors are already on the banner)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = [f for f in self._pending if not f.done()]
            if not pending:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("background work did not finish")
            try:
                pending[0].result(timeout=left)
            except Exception:
                pass


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def image_bytes(path: Path | None) -> bytes:
    """The file's bytes, or b'' when it cannot be read (a cell then shows an empty image)."""
    if path is None:
        return b""
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def ended_text(job: Job, what: str | None = None) -> str:
    """The sentence a panel shows when ``job`` ended without success: why it failed (its cause sentence, see
    :func:`lora_nb.jobs.format.failure_cause`), or how it ended."""
    snap = job.snapshot(check=False)
    what = what or snap.name
    if snap.status is JobStatus.FAILED and snap.error:
        return f"{what} failed: {failure_cause(snap.error)}"
    return f"{what} ended {snap.status.value}."


class JobLine(W.HBox):
    """A compact live view of one job: progress bar, 'step/total', rate, status (with the cause when it failed).
    Updated at a bounded rate from the job's follower thread; ``on_final(job)`` runs once when the job ends.
    Hidden until a job is attached."""

    def __init__(self, rate: float = 4.0, on_final: Callable[[Job], Any] | None = None) -> None:
        self.bar = css(W.FloatProgress(value=0.0, min=0.0, max=1.0, layout=W.Layout(width="240px")), "lnb-job-line-bar")
        self.label = css(W.HTML(""), "lnb-job-line-text")
        super().__init__([self.bar, self.label])
        self.layout.display = "none"
        self.add_class("lnb-job-line")
        self.job: Job | None = None
        self.on_final = on_final
        self._unsub: Callable[[], None] | None = None
        self._final_seen = False
        self.throttle = Throttle(self.refresh, rate)

    def attach(self, job: Job) -> None:
        self.detach()
        self.job = job
        self._final_seen = False
        self.layout.display = ""
        self.refresh()
        self._unsub = job.subscribe(lambda events: self.throttle.trigger())

    def detach(self) -> None:
        if self._unsub is not None:
            self._unsub()
            self._unsub = None
        self.throttle.cancel()

    def refresh(self) -> None:
        """Redraw from one snapshot of the job (one database read)."""
        job = self.job
        if job is None:
            return
        snap = job.snapshot()
        status = snap.status
        self.bar.value = bar_fraction(snap.progress, status)
        self.bar.bar_style = status_style(status).bar
        self.label.value = esc(job_line(status, snap.progress, snap.error))
        if status.is_final and not self._final_seen:
            self._final_seen = True
            if self.on_final is not None:
                self.on_final(job)


# The dashboard's look, in JupyterLab and in our Voila template. Colours come from JupyterLab's theme variables
# (--jp-*), so a dark Lab theme (or the template's dark switch, which sets the same variables) turns it dark.
STYLE = """
.lnb-dashboard { --lnb-gap: 8px; --lnb-radius: 8px; --lnb-ok: #2e7d32; --lnb-err: #c62828; --lnb-run: #1565c0; --lnb-warn: #ef6c00;
  font-family: var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #1f2937); gap: var(--lnb-gap); }
.lnb-dashboard .lnb-muted { color: var(--jp-ui-font-color2, #6b7280); }
.lnb-card, .lnb-dashboard .lnb-tab-box > .widget-box:last-child {
  background: var(--jp-layout-color1, #fff); border: 1px solid var(--jp-border-color2, #e5e7eb);
  border-radius: var(--lnb-radius); padding: 10px 14px !important; box-shadow: 0 1px 2px rgba(0,0,0,.06); }
.lnb-card-title { font-size: 16px; font-weight: 600; color: var(--jp-ui-font-color0, #111827); }
.lnb-card-sub { color: var(--jp-ui-font-color2, #6b7280); margin-bottom: 4px; }
.lnb-first-run { border-left: 4px solid var(--jp-brand-color1, #1976d2) !important; margin: 0 0 var(--lnb-gap) 0; }
.lnb-header .lnb-bar { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; padding: 6px 12px; border-radius: var(--lnb-radius);
  background: var(--jp-layout-color2, #eef1f5); color: var(--jp-ui-font-color1, #1f2937); font-size: 12.5px;
  border: 1px solid var(--jp-border-color2, #e5e7eb); }
.lnb-header .lnb-brand { font-weight: 700; letter-spacing: .2px; }
.lnb-header .lnb-root { margin-left: auto; color: var(--jp-ui-font-color2, #6b7280); }
.lnb-chip { display: inline-flex; align-items: center; gap: 4px; padding: 1px 8px; border-radius: 999px; font-size: 12px;
  line-height: 18px; border: 1px solid currentColor; white-space: nowrap; }
.lnb-chip-ok { color: var(--lnb-ok); } .lnb-chip-err { color: var(--lnb-err); } .lnb-chip-run { color: var(--lnb-run); }
.lnb-chip-warn { color: var(--lnb-warn); } .lnb-chip-idle { color: var(--jp-ui-font-color2, #6b7280); }
.lnb-dashboard h3 { color: var(--jp-ui-font-color0, #111827); font-weight: 600; }
.lnb-dashboard .lnb-error { color: var(--lnb-err) !important; } .lnb-dashboard .lnb-info { color: var(--lnb-ok) !important; }
.lnb-next { gap: var(--lnb-gap); margin: 0 0 6px 0; padding: 4px 8px; border-radius: var(--lnb-radius);
  background: var(--jp-layout-color2, #f1f8e9); }
.lnb-tabs .lm-TabBar-tab { padding: 0 14px !important; }
.lnb-tabs .lm-TabBar-tab.lm-mod-current { border-top: 2px solid var(--jp-brand-color1, #1976d2) !important; }
.lnb-dashboard .widget-button, .lnb-dashboard .jupyter-button { border-radius: 6px; }
.lnb-dashboard .jupyter-button:disabled.mod-danger, .lnb-dashboard .jupyter-button:disabled.mod-primary,
.lnb-dashboard .jupyter-button:disabled.mod-success, .lnb-dashboard .jupyter-button:disabled.mod-warning {
  background: var(--jp-layout-color3, #d1d5db) !important; color: var(--jp-ui-font-color2, #6b7280) !important; }
.lnb-dashboard .widget-html, .lnb-dashboard .widget-html-content { color: var(--jp-ui-font-color1, inherit); }
"""
STYLE_HTML = f"<style>{STYLE}</style>"


def chip(text: str, kind: str = "idle", icon: str = "") -> str:
    """A status chip: coloured by ``kind`` (ok, err, run, warn, idle), with an optional icon character.

    >>> chip("running", "run", "▶")
    '<span class="lnb-chip lnb-chip-run">▶ running</span>'
    """
    return f'<span class="lnb-chip lnb-chip-{esc(kind)}">{esc(icon) + " " if icon else ""}{esc(text)}</span>'
