"""What a new user meets on a fresh workspace with no engine, no GPU and no internet (issue 18), driven
without a browser: the demo button, the engine folder and Install, Start's error beside the button,
every failed job's cause sentence, the tagger download check, the log view, Stop's info line, controls
that cannot apply, empty dropdowns, and defaults from the detected hardware.

The trainer-like processes are the STAND-IN engine (tests/standin_engine.py) and lora-nb's own tasks;
the install job is the real one, kept off the network by GIT_ALLOW_PROTOCOL=file (git refuses https).
"""
from __future__ import annotations

import json
import socket
import sys
import threading
from pathlib import Path

import pytest

from lora_nb.progress.events import JobStatus
from lora_nb.progress.parsers import TASK_MARKER
from lora_nb.widgets import (CaptionGrid, Dashboard, DatasetPanel, JobMonitor, LoraPanel, ModelsPanel, TaggingPanel,
                             TrainingPanel)
from support import standin, wait_for

FAKE_SDSCRIPTS = Path(__file__).resolve().parents[1] / "engines" / "fake_sdscripts"
def failure_cause(error):
    from lora_nb.jobs.format import failure_cause

    return failure_cause(error)


def log_lines(lines):
    from lora_nb.jobs.format import log_lines

    return log_lines(lines)


SMALL_DEMO = dict(n=4, size=(64, 64), epochs=1, steps_per_epoch=3, seconds_per_step=0.05)


def _marker(event: str, **data) -> str:
    return TASK_MARKER + json.dumps({"event": event, **data})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_gpu(monkeypatch):
    import lora_nb.system

    monkeypatch.setattr(lora_nb.system, "gpus", lambda timeout=2.0: [])


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    """An empty Hugging Face cache and offline mode, for this process and the jobs it starts."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# 1 ----------------------------------------------------------------------------------------------
def test_try_the_demo_makes_a_tagged_dataset_and_monitors_the_stand_in_run(ws):
    d = Dashboard(ws, live=False)
    try:
        d.demo.demo_options.update(SMALL_DEMO)
        d.demo.button.click()
        d.demo.runner.idle(180)
        assert d.demo.banner.text == "", d.demo.banner.text
        result = d.demo.result
        assert result.dataset.name == "demo" and result.tagging.status is JobStatus.SUCCEEDED
        # tagged by the small local tagger: the trigger word first, then the tagger's (placeholder) tags
        assert all(i.caption and i.caption.startswith("lnbdemo, ") and len(i.caption.split(",")) > 2 for i in result.dataset.images())
        assert d.tabs.get_title(d.tabs.selected_index) == "Jobs" and d.jobs.monitor.job.id == result.run.id
        assert d.datasets.select.value == "demo" and d.training.fields["dataset"].widget.value == "demo"
        assert result.run.wait(60) is JobStatus.SUCCEEDED
        assert any(a["kind"] == "lora" for a in result.run.artifacts)
        assert str(ws.models_dir / "taggers" / "lnb-demo-tagger") in d.tagging.model.options   # the demo's tagger can be picked
        d.demo.button.click()                                       # again: a new dataset, nothing overwritten
        d.demo.runner.idle(180)
        assert d.demo.result.dataset.name == "demo-2"
        d.demo.result.run.wait(60)
    finally:
        d.close()


# 2 ----------------------------------------------------------------------------------------------
def test_an_engine_folder_typed_in_the_panel_is_saved_and_checked(ws, no_gpu):
    ws.settings.set("kohya_python", sys.executable)         # the stand-in checkout runs on this Python
    ws.settings.set("kohya_launcher", "python")
    p = TrainingPanel(ws)
    p.runner.idle()
    assert not p.engine_status_value.ok
    assert "ws.settings" not in p.engine_status.value and "Install kohya" in p.engine_status.value
    assert p.engine_install.description == "Install kohya" and not p.engine_install.disabled
    tmp = FAKE_SDSCRIPTS.parent / "nope"
    p.engine_path.value = str(tmp)
    p.engine_use.click()
    assert f"There is no folder {tmp}" in p.engine_message.value and ws.settings.get("kohya_dir") is None
    p.engine_path.value = str(FAKE_SDSCRIPTS)
    p.engine_use.click()
    p.runner.idle()
    assert ws.settings.get("kohya_dir") == str(FAKE_SDSCRIPTS.resolve())
    from lora_nb.engines import get_engine

    assert get_engine("kohya", ws).check().ok
    assert p.engine_status_value.ok and str(FAKE_SDSCRIPTS.resolve()) in p.engine_status.value
    assert p.engine_install.disabled                        # nothing to install any more


def test_install_runs_the_install_job_and_shows_why_it_failed(ws, monkeypatch, no_gpu):
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file")        # git refuses https: no network, whatever the machine
    p = TrainingPanel(ws)
    p.runner.idle()
    p.engine_install.click()
    job = p.install_job
    assert job is not None and job.name == "install kohya" and p.banner.kind != "error"
    assert p.install_line.layout.display == "" and p.engine_install.disabled
    assert job.wait(120) is JobStatus.FAILED
    wait_for(lambda: "failed" in p.install_line.label.value and "lnb-error" in p.engine_message.value, timeout=20)
    cause = failure_cause(job.error)
    assert cause.startswith("Installing kohya failed") and "not allowed" in cause, job.error
    assert cause[:40] in p.install_line.label.value and cause[:40] in p.engine_message.value
    p.runner.idle()
    assert not p.engine_install.disabled                    # try again after fixing the network
    assert not (ws.engines_dir / "sd-scripts").exists()


# 3 ----------------------------------------------------------------------------------------------
def test_start_shows_its_error_beside_the_button(ws, demo_ds, no_gpu):
    p = TrainingPanel(ws)
    p.runner.idle()
    assert p.start_notice.text == "" and not p.start_button.disabled
    p.start_button.click()
    assert p.start_notice.kind == "error" and p.start_notice.seq == 1
    assert p.start_notice.text.startswith("kohya cannot run here: sd-scripts was not found")
    assert "ws.settings" not in p.start_notice.text and p.banner.text == p.start_notice.text
    p.start_button.click()
    assert p.start_notice.seq == 2                          # each click scrolls it into view again


# 4 ----------------------------------------------------------------------------------------------
def test_failure_cause_picks_the_sentence_that_says_why():
    task = "The job failed: exit code 1.\nLast lines:\n" + "\n".join([
        _marker("progress", step=0, total_steps=2), _marker("message", text="Model X is not cached. Connect once.", level="error")])
    assert failure_cause(task) == "Model X is not cached. Connect once."
    assert failure_cause("The job failed with exit code 1: CUDA ran out of memory.\nLower the batch size.") == \
        "The job failed with exit code 1: CUDA ran out of memory."
    assert failure_cause("The job failed: exit code 2.\nInstall bitsandbytes.\nLast lines:\nboom") == "Install bitsandbytes."
    assert failure_cause("The job failed: exit code 1.\nLast lines:\nTraceback (most recent call last):\n  x\n"
                         "ModuleNotFoundError: No module named 'voluptuous'") == "ModuleNotFoundError: No module named 'voluptuous'"
    assert failure_cause("The job failed: killed by signal 9.") == "The job failed: killed by signal 9."


def test_tagging_says_before_starting_that_the_model_cannot_be_downloaded_then_shows_the_cause(ws, demo_ds, offline_hub):
    p = TaggingPanel(ws, dataset="demo")
    p.runner.idle()
    kind, text = p.availability
    assert kind == "blocked" and "must be downloaded first" in text and "HF_HUB_OFFLINE is set" in text
    assert "HF_HUB_OFFLINE is set" in p.model_note.value
    job = p.start()
    assert job.wait(120) is JobStatus.FAILED
    wait_for(lambda: p.banner.kind == "error", timeout=20)
    assert "is not in the local cache and the Hugging Face Hub cannot be reached" in p.banner.text
    assert "exit code" not in p.banner.text and "is not in the local cache" in p.line.label.value


def test_tagging_model_check_cached_downloadable_unreachable_and_local(ws, monkeypatch, tmp_path):
    from lora_nb.widgets.tagging import model_availability

    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    kind, text = model_availability("wd-vit-tagger-v3")
    assert kind == "blocked" and "cannot be reached from this machine" in text and "380 MB" in text
    with socket.socket() as server:                          # a Hub that answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        kind, text = model_availability("wd-vit-tagger-v3")
        assert kind == "download" and "will be downloaded" in text
    snap = cache / "models--SmilingWolf--wd-vit-tagger-v3" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("abc")
    for f in ("model.onnx", "selected_tags.csv"):
        (snap / f).write_text("x")
    assert model_availability("wd-vit-tagger-v3")[0] == "ready"
    from lora_nb.demo import make_tagger

    assert model_availability(str(make_tagger(ws=ws))) == ("ready", "A local tagger folder: nothing to download.")
    assert model_availability(str(tmp_path))[0] == "error"
    assert model_availability("no-such-tagger")[0] == "error"


def test_import_and_download_failures_show_their_cause(ws, offline_hub):
    d = DatasetPanel(ws)
    d.name_box.value = "web"
    d.source_box.value = f"http://127.0.0.1:{_closed_port()}/images.zip"
    d.import_button.click()
    job = d.import_line.job
    assert job.wait(60) is JobStatus.FAILED
    wait_for(lambda: d.banner.kind == "error", timeout=20)
    cause = failure_cause(job.error)
    assert "exit code" not in cause and d.banner.text == f"The import failed: {cause}", (d.banner.text, job.error)
    m = ModelsPanel(ws)
    m.runner.idle()
    m.source.value = "hf:someone/some-model/model.safetensors"
    m.download_button.click()
    job = m.line.job
    assert job.wait(60) is JobStatus.FAILED
    wait_for(lambda: m.banner.kind == "error", timeout=20)
    assert "is not cached and the Hub cannot be reached" in m.banner.text and "exit code" not in m.banner.text
    assert "is not cached" in m.line.label.value


def test_a_failed_resize_shows_its_cause(ws):
    import numpy as np
    from safetensors.numpy import save_file

    src = ws.root / "loras" / "small.safetensors"
    src.parent.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    save_file({"lora_unet_x.lora_down.weight": rng.normal(size=(8, 16)).astype(np.float32),
               "lora_unet_x.lora_up.weight": rng.normal(size=(16, 8)).astype(np.float32),
               "lora_unet_x.alpha": np.array(8.0, np.float32)}, str(src))
    p = LoraPanel(ws)
    p.select.value = str(src)
    p.rank.value = 2
    assert p.resize().wait(60) is JobStatus.SUCCEEDED
    job = p.resize()                                         # the same output again: refused, not overwritten
    assert job.wait(60) is JobStatus.FAILED
    wait_for(lambda: p.banner.kind == "error", timeout=20)
    cause = failure_cause(job.error)
    assert "exit code" not in cause and cause in p.banner.text and cause[:30] in p.resize_line.label.value


def test_a_failed_training_run_shows_its_cause_in_the_monitor(ws):
    code = ("import json; print('@@lora-nb ' + json.dumps({'event': 'message', 'level': 'error', "
            "'text': 'The base model file is missing. Download it in the Models tab.'})); raise SystemExit(1)")
    job = ws.jobs.submit_command([sys.executable, "-c", code], name="run", parser="task", kind="training", uses_gpu=False)
    assert job.wait(60) is JobStatus.FAILED
    m = JobMonitor(ws, job)
    assert "lnb-job-cause" in m.hints_view.value and "The base model file is missing." in m.hints_view.value
    assert "exit code" not in m.hints_view.value
    m.detach()


# 5 ----------------------------------------------------------------------------------------------
def test_the_log_view_shows_text_not_protocol_lines_newest_at_the_end(ws):
    lines = [_marker("message", text="loading the model")] + [_marker("progress", step=i, total_steps=5, phase="tagging")
                                                                for i in range(1, 6)]
    lines += ["a plain engine line", _marker("message", text="disk is nearly full", level="warning"),
              _marker("artifact", path="/x/out.safetensors", kind="lora"), "the newest line"]
    assert log_lines(lines) == ["loading the model", "[tagging] 5/5", "a plain engine line", "warning: disk is nearly full",
                                "lora: /x/out.safetensors", "the newest line"]
    code = "import sys; sys.stdout.write(sys.argv[1]); sys.stdout.flush()"
    job = ws.jobs.submit_command([sys.executable, "-c", code, "\n".join(lines) + "\n"], name="log", parser="task", uses_gpu=False)
    assert job.wait(60) is JobStatus.SUCCEEDED
    m = JobMonitor(ws, job)
    view = m.log_view.value
    assert "@@lora-nb" not in view and "event" not in view
    assert view.index("loading the model") < view.index("[tagging] 5/5") < view.index("the newest line")
    assert "[tagging] 1/5" not in view and "column-reverse" in view          # opens scrolled to the newest line
    m.detach()


# 6 ----------------------------------------------------------------------------------------------
def test_the_stopping_line_goes_when_the_job_has_stopped(ws):
    job = ws.jobs.submit_command(standin("--steps", "2000", "--delay", "0.05"), name="run", parser="kohya", kind="training",
                                 uses_gpu=False)
    m = JobMonitor(ws, job)
    wait_for(lambda: job.status is JobStatus.RUNNING and (job.progress.step or 0) > 0, timeout=60)
    m.stop_button.click()
    assert m.banner.text == "Stopping…"
    m.runner.idle(30)
    assert job.status is JobStatus.STOPPED
    wait_for(lambda: "stopped" in m.title.value, timeout=10)
    assert m.banner.text == "" and "Stopping" not in m.banner.value
    m.detach()


# 7 ----------------------------------------------------------------------------------------------
def test_controls_that_cannot_apply_are_disabled_and_every_box_is_labelled(ws):
    p = DatasetPanel(ws)
    assert p.select.value is None
    assert p.delete_button.disabled and p.rename_button.disabled and p.rename_box.disabled and p.report_button.disabled
    assert p.rename_box.description == "Rename to" and p.name_box.description == "New dataset"
    p.name_box.value = "cats"
    p.create_button.click()
    assert not p.delete_button.disabled and not p.rename_button.disabled and not p.rename_box.disabled
    p.delete_button.click()
    p.delete_button.click()
    assert "cats" not in ws.datasets and p.delete_button.disabled


def test_undo_is_enabled_only_with_something_to_undo(ws, demo_ds):
    g = CaptionGrid(ws, dataset="demo")
    assert g.undo_button.disabled and g.undo_button.tooltip == "nothing to undo"
    g.arg1.value = "extra"
    g.apply_button.click()
    assert not g.undo_button.disabled and g.undo_button.tooltip.startswith("undo add_trigger")
    g.undo_button.click()
    assert g.undo_button.disabled and g.banner.kind == "info"


# 8 ----------------------------------------------------------------------------------------------
def test_dropdowns_show_a_choice_and_labels_fit(ws):
    m = ModelsPanel(ws)
    m.runner.idle()
    first = next(iter(m.starters))
    assert m.family.value == first and m.family.label == first
    assert m.starter.value == m.starters[first][0].source and m.starter.label.startswith(m.starters[first][0].name)
    assert m.source.value == m.starter.value                     # what Download would fetch is in plain sight
    m.starter.value = m.starter.options[1][1]
    assert m.source.value == m.starter.options[1][1]
    lp = LoraPanel(ws)
    assert lp.method.value == "rank" and lp.method.label == "fixed rank" and lp.param.disabled
    lp.method.value = "sv_fro"
    assert not lp.param.disabled
    t = TaggingPanel(ws)
    for w in (t.dataset, t.model, t.general, t.character, t.blacklist, t.trigger, t.existing):
        assert w.style.description_width == "110px", w.description


# 9 ----------------------------------------------------------------------------------------------
def test_without_a_gpu_the_form_defaults_to_what_can_run_and_says_so(ws, no_gpu):
    p = TrainingPanel(ws)
    p.runner.idle()
    assert p.fields["optimizer_type"].widget.value == "AdamW" and p.fields["mixed_precision"].widget.value == "no"
    assert "No NVIDIA GPU was found" in p.hardware_note.value and "needs one" in p.hardware_note.value
    assert "Try the demo" in p.hardware_note.value
    assert p.validate() == {}


@pytest.mark.parametrize("cap, precision", [(8.9, "bf16"), (7.5, "fp16"), (None, "fp16")])
def test_with_a_gpu_the_form_defaults_follow_it(ws, monkeypatch, cap, precision):
    import lora_nb.system

    gpu = {"name": "NVIDIA Test GPU", "memory_used": 100, "memory_total": 24576, "utilization": 0, "compute_cap": cap}
    monkeypatch.setattr(lora_nb.system, "gpus", lambda timeout=2.0: [gpu])
    p = TrainingPanel(ws)
    p.runner.idle()
    assert p.fields["mixed_precision"].widget.value == precision and p.fields["optimizer_type"].widget.value == "AdamW8bit"
    assert "NVIDIA Test GPU" in p.hardware_note.value and "No NVIDIA GPU" not in p.hardware_note.value


def test_a_preset_is_not_overridden_by_the_hardware_defaults(ws, no_gpu):
    p = TrainingPanel(ws)
    p.runner.idle()
    assert p.preset_select.value == ws.presets.list()[0]      # the preset list shows one, not an empty box
    p.preset_select.value = "sd15-8gb"
    p.preset_load.click()
    assert p.fields["optimizer_type"].widget.value == ws.presets.raw("sd15-8gb").get("optimizer_type", "AdamW8bit")


# 10 (the kernel side) -----------------------------------------------------------------------------
def test_redraws_pause_while_no_browser_pings_and_resume_at_the_next_ping(ws, monkeypatch):
    from lora_nb.widgets import common
    from lora_nb.widgets.page import PresencePing

    presence = common.Presence()
    monkeypatch.setattr(common, "PRESENCE", presence)
    calls = []
    t = common.Throttle(lambda: calls.append(1), rate=1000)
    t.trigger()
    assert calls == [1]                                      # nobody has pinged yet: everyone counts as watching
    ping = PresencePing(interval=0.2)
    monkeypatch.setattr("lora_nb.widgets.page.PRESENCE", presence)
    ping._on_msg(ping, {"type": "ping"}, [])
    assert ping.pings == 1 and presence.watching()
    presence.last -= 1.0                                      # three pings missed: the tab is gone
    assert not presence.watching()
    t.trigger()
    t.flush()
    assert calls == [1]                                      # held, not drawn
    done = threading.Event()
    t.fn = lambda: (calls.append(2), done.set())
    ping._on_msg(ping, {"type": "ping"}, [])                  # the tab is back
    assert done.wait(5) and calls == [1, 2]
