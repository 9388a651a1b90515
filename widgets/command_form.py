"""CommandForm: run any command as a job from the dashboard (an LLM fine-tune, a script of your own).

The command line is split like a shell would (``shlex``; no shell runs it), the working folder must exist,
environment lines are ``KEY=VALUE`` (a value that looks like a token never reaches the job record or its log:
see :mod:`lora_nb.jobs.command_input`), the log parser is picked by name from the registered ones
(``hf-trainer`` makes a Hugging Face Trainer's loss chart move), and GPUs is how many GPU slots the job holds.
Submit calls ``ws.jobs.submit_command``; errors are one sentence beside the button.

>>> import lora_nb, tempfile
>>> f = CommandForm(lora_nb.Workspace(tempfile.mkdtemp()))
>>> "hf-trainer" in f.parser.options, f.parser.value
(True, 'plain')
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import ipywidgets as W

from lora_nb import Workspace

from .common import css, esc, one_sentence

__all__ = ["CommandForm"]

_WIDE = W.Layout(width="95%")


class CommandForm(W.VBox):
    """A form that queues a command job; ``on_submit(job)`` is called with each new job."""

    def __init__(self, ws: Workspace, on_submit: Callable[[Any], Any] | None = None) -> None:
        from lora_nb.jobs.slots import MAX_SLOTS
        from lora_nb.progress.parsers import parser_names

        self.ws = ws
        self.on_submit = on_submit
        self.job: Any = None
        style = {"description_width": "110px"}
        self.command = css(W.Text(description="Command", placeholder="python train.py --model_name_or_path gpt2 --num_train_epochs 3",
                                  style=style, layout=_WIDE), "lnb-cmd-command")
        self.name = css(W.Text(description="Name", placeholder="(the program's name)", style=style), "lnb-cmd-name")
        self.cwd = css(W.Text(description="Working folder", value=str(ws.root), style=style, layout=_WIDE), "lnb-cmd-cwd")
        self.env = css(W.Textarea(description="Environment", placeholder="one KEY=VALUE a line, e.g.\nHF_HOME=/workspace/hf\nWANDB_MODE=offline",
                                  style=style, layout=W.Layout(width="95%", height="70px")), "lnb-cmd-env")
        self.parser = css(W.Dropdown(description="Log parser", options=parser_names(), value="plain", style=style,
                                     tooltip="how the output is read for progress: hf-trainer for Hugging Face Trainer / Accelerate "
                                             "scripts, plain for any tqdm bar"), "lnb-cmd-parser")
        self.gpus = css(W.BoundedIntText(description="GPUs", value=1, min=0, max=MAX_SLOTS, style=style,
                                         layout=W.Layout(width="200px"), tooltip="GPU slots the job holds (0: none, it starts at once)"),
                        "lnb-cmd-gpus")
        self.submit_button = css(W.Button(description="Run as a job", icon="play", button_style="primary"), "lnb-cmd-submit")
        self.message = css(W.HTML(""), "lnb-cmd-message")
        self.submit_button.on_click(self._clicked)
        super().__init__([self.command, self.name, self.cwd, self.env, W.HBox([self.parser, self.gpus]),
                          W.HBox([self.submit_button, self.message])])
        self.add_class("lnb-command-form")

    def _clicked(self, _: Any = None) -> None:
        try:
            self.submit()
        except Exception as e:   # one sentence beside the button; never a value from the environment box
            self.message.value = f'<span class="lnb-error" style="color:#b00020">{esc(one_sentence(e))}</span>'

    def submit(self) -> Any:
        """Check the form and queue the job; returns it (raises JobError/InvalidInput with one sentence)."""
        from lora_nb.errors import JobError
        from lora_nb.jobs.command_input import parse_env, secret_keys, split_command

        argv = split_command(self.command.value)
        cwd = self.cwd.value.strip() or str(self.ws.root)
        if not Path(cwd).expanduser().is_dir():
            raise JobError(f"The working folder {cwd} does not exist.", fix="Type an existing folder, or leave it empty for the workspace.")
        env = parse_env(self.env.value)
        secrets = secret_keys(env)
        gpus = int(self.gpus.value)
        self.job = self.ws.jobs.submit_command(argv, name=self.name.value.strip() or None, cwd=str(Path(cwd).expanduser()),
                                               env=env, parser=self.parser.value, gpus=gpus, uses_gpu=gpus > 0)
        note = f"; {', '.join(secrets)} kept out of the job record and masked in its log" if secrets else ""
        self.message.value = (f'<span class="lnb-cmd-queued" style="color:#1b5e20">Queued job {esc(self.job.name)} '
                              f'({esc(self.job.id)}){esc(note)}.</span>')
        if self.on_submit is not None:
            self.on_submit(self.job)
        return self.job
