"""EngineOptionsEditor: the engine options lora-nb has no field for, as ``KEY = VALUE`` lines
(``TrainingConfig.engine_options``), checked as the user types against the chosen engine's option list
(``lora_nb.engines.options_check``: sd-scripts' argparse options of the family's script, ai-toolkit's config keys).
Each problem is one sentence under the box; the form's Start stays disabled while there is one.

>>> ed = EngineOptionsEditor(engine=lambda: "kohya", family=lambda: "sd15")
>>> ed.text.value = "debiased_estimation_los = true"
>>> ed.problems()
{'engine_options': "train_network.py has no option 'debiased_estimation_los'; did you mean 'debiased_estimation_loss'?"}
>>> ed.text.value = "debiased_estimation_loss = true"
>>> ed.data(), ed.problems()
({'engine_options': {'debiased_estimation_loss': True}}, {})
"""
from __future__ import annotations

from typing import Any, Callable

import ipywidgets as W

from .common import css, esc

__all__ = ["EngineOptionsEditor"]

_HELP = {"kohya": "sd-scripts option names of the chosen family's script, e.g. debiased_estimation_loss = true, "
                  "huber_c = 0.1, lr_scheduler_args = [\"lr_end=1e-9\"]",
         "ai-toolkit": "section.key paths of the ai-toolkit job, e.g. model.low_vram = true, train.ema_config = {use_ema = true}"}


class EngineOptionsEditor(W.VBox):
    """Extra engine options: a text box of ``KEY = VALUE`` lines and the checker's sentences under it."""

    def __init__(self, engine: Callable[[], str], family: Callable[[], str], on_change: Callable[[], None] | None = None) -> None:
        self.engine, self.family, self.on_change = engine, family, on_change
        self.text = css(W.Textarea(value="", placeholder="KEY = VALUE, one a line", continuous_update=True,
                                   description="Extra engine options", style={"description_width": "190px"},
                                   layout=W.Layout(width="640px", height="90px")), "lnb-engine-options")
        self.help = css(W.HTML(""), "lnb-engine-options-help")
        self.messages = css(W.HTML(""), "lnb-engine-options-errors")
        self.found: dict[str, str] = {}
        self.text.observe(lambda _: self._changed(), names="value")
        super().__init__([self.text, self.help, self.messages])
        self.add_class("lnb-engine-options-editor")
        self.refresh()

    def _changed(self) -> None:
        self.refresh()
        if self.on_change is not None:
            self.on_change()

    def refresh(self) -> None:
        """Re-check against the engine and family chosen now (the form calls this when they change)."""
        from lora_nb.engines.options_check import check_engine_options, parse_option_lines

        engine = self.engine()
        options, found = parse_option_lines(self.text.value)
        try:
            found.update(check_engine_options(engine, self.family(), options))
        except Exception as e:   # a family the engine has no script for: the form's own check says so
            found.setdefault("", str(e))
        self.found = found
        self.help.value = f'<span class="lnb-help" style="color:#777;font-size:11px">{esc(_HELP.get(engine, ""))}</span>'
        self.messages.value = "".join(f'<div class="lnb-error-text" style="color:#b00020">{esc(m)}</div>' for m in found.values())

    def data(self) -> dict[str, Any]:
        """``{"engine_options": {...}}`` as parsed from the lines."""
        from lora_nb.engines.options_check import parse_option_lines

        return {"engine_options": parse_option_lines(self.text.value)[0]}

    def problems(self) -> dict[str, str]:
        """``{"engine_options": first sentence}`` while a line has a problem, else {}."""
        self.refresh()
        return {"engine_options": next(iter(self.found.values()))} if self.found else {}

    def set(self, options: dict[str, Any] | None) -> None:
        from lora_nb.engines.options_check import format_option_lines

        self.text.value = format_option_lines(options or {})
