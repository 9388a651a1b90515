"""The command-job form in the Jobs panel (widgets/command_form.py): a real small Python command that prints what a
Hugging Face Trainer prints becomes a job whose progress shows loss and step; bad input is one sentence, nothing queued."""
from __future__ import annotations

import html
import sys

import pytest

from lora_nb.errors import JobError
from lora_nb.jobs.command_input import parse_env, split_command
from lora_nb.progress.events import JobStatus
from lora_nb.progress.parsers import parser_names
from lora_nb.widgets import JobsPanel

HF_SCRIPT = r"""
import os, sys, time
print("token seen:", os.environ.get("HF_TOKEN"))
print("mode:", os.environ.get("WANDB_MODE"))
total = 20
for s in range(1, total + 1):
    sys.stderr.write(f"\r{100 * s // total:3d}%|#         | {s}/{total} [00:01<00:01,  9.00it/s]"); sys.stderr.flush()
    if s % 5 == 0:
        sys.stderr.write("\r" + " " * 40 + "\r" + str({"loss": round(2.0 / s, 4), "grad_norm": 1.0, "learning_rate": 5e-05,
                                                       "epoch": s / total}) + "\n")
        sys.stderr.write(f"\r{100 * s // total:3d}%|#         | {s}/{total} [00:01<00:01,  9.00it/s]")
    time.sleep(0.01)
print({"train_runtime": 0.5, "train_loss": 0.3, "epoch": 1.0})
"""


def _panel(ws):
    return JobsPanel(ws, auto_refresh=0)


def test_a_command_job_from_the_form_moves_the_loss_chart(ws, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(HF_SCRIPT)
    p = _panel(ws)
    f = p.command_form
    assert f in p.run_command.children and list(f.parser.options) == parser_names()
    f.command.value = f"{sys.executable} {script} --output_dir 'out dir'"
    f.name.value = "llm finetune"
    f.cwd.value = str(tmp_path)
    token = "hf_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4"
    f.env.value = f"# for the hub\nHF_TOKEN={token}\nWANDB_MODE = offline\n"
    f.parser.value = "hf-trainer"
    f.gpus.value = 0
    f.submit_button.click()
    job = f.job
    assert job is not None, f.message.value
    assert "Queued job llm finetune" in f.message.value and "HF_TOKEN kept out of the job record" in f.message.value
    assert token not in f.message.value
    assert p.monitor.job is not None and p.monitor.job.id == job.id           # the panel shows the new job
    assert job.wait(60) is JobStatus.SUCCEEDED, job.error
    assert job.argv[-2:] == ["--output_dir", "out dir"] and job.snapshot().parser == "hf-trainer"
    prog = job.progress
    assert (prog.step, prog.total_steps, prog.loss, prog.lr, prog.epoch) == (20, 20, 0.1, 5e-05, 1)
    from lora_nb.jobs.history import loss_series

    assert loss_series(job.snapshot()) == [(5, 0.4), (10, 0.2), (15, 0.1333), (20, 0.1)]
    log = job.log_path.read_text()
    assert token not in log and "token seen: [secret]" in log and "mode: offline" in log
    stored = ws.store.query("SELECT * FROM jobs WHERE id=?", (job.id,))
    assert token not in repr(stored)


@pytest.mark.parametrize("field, value, message", [
    ("command", "python -c 'print(1)", "cannot be split into arguments: no closing quotation"),
    ("command", "   ", "The command is empty."),
    ("cwd", "/no/such/folder", "The working folder /no/such/folder does not exist."),
    ("env", "A=1\nnot a pair", "Environment line 2 (it) is not KEY=VALUE."),
    ("env", "1BAD=x", "Environment line 1: the name before '=' is not a variable name."),
    ("env", "A=1\nA=2", "Environment line 2 sets A a second time."),
    ("command", "/no/such/program --x", "does not exist"),
])
def test_bad_input_is_one_sentence_and_queues_nothing(ws, field, value, message):
    p = _panel(ws)
    f = p.command_form
    f.command.value = f"{sys.executable} -c pass"
    setattr(getattr(f, field), "value", value)
    f.submit_button.click()
    assert message in html.unescape(f.message.value) and "lnb-error" in f.message.value
    assert f.job is None and ws.jobs.list() == []


def test_a_secret_looking_env_line_without_equals_is_not_echoed():
    with pytest.raises(JobError) as e:
        parse_env("hf_a1B2c3D4e5F6g7H8i9J0k1L2m3N4")
    assert "hf_a1B2" not in str(e.value) and "(it) is not KEY=VALUE" in str(e.value)
    assert split_command("a 'b c' d\\ e") == ["a", "b c", "d e"]
