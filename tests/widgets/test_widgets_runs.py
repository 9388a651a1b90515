"""RunsPanel without a browser: history table, search/filter/sort controls, picking and comparing.

Runs are REAL finished jobs of the STAND-IN sd-scripts (tests/engines/fake_sdscripts) on the demo dataset.
"""
from __future__ import annotations

import sys
import time

import pytest

from lora_nb.config import TrainingConfig
from lora_nb.progress.events import JobStatus


def _cfg(model_file, **kw):
    base = dict(dataset="demo", pretrained_model_name_or_path=str(model_file), resolution="64", min_bucket_reso=64,
                max_bucket_reso=128, train_batch_size=1, max_train_epochs=1, mixed_precision="no", optimizer_type="AdamW",
                trigger_words=["lnbdemo"])
    base.update(kw)
    return TrainingConfig(**base)


@pytest.fixture
def runs(ws, demo_ds, model_file, standin_kohya, monkeypatch):
    monkeypatch.setenv("LORA_NB_STANDIN_SPEED", "0.01")
    jobs = [ws.jobs.submit_training(_cfg(model_file, output_name=n, network_dim=d)) for n, d in (("one", 4), ("two", 8))]
    for j in jobs:
        assert j.wait(120) is JobStatus.SUCCEEDED, j.error
    return jobs


def test_empty_workspace(ws):
    from lora_nb.widgets.runs import RunsPanel

    p = RunsPanel(ws)
    assert p.rows == [] and "No training runs" in p.table.value and p.compare_button.disabled


def test_history_controls_and_compare(ws, runs):
    from lora_nb.widgets.runs import RunsPanel

    one, two = runs
    p = RunsPanel(ws)
    assert [r.name for r in p.rows] == ["two", "one"]
    assert p.table.value.count("<tr data-run=") == 2 and "lnb-chip-ok" in p.table.value and "one.safetensors" in p.table.value
    assert list(p.family.options) == ["any", "sd15"]
    p.sort.value = "name"
    p.descending.value = False
    assert [r.name for r in p.rows] == ["one", "two"] and "Ascending" == p.descending.description
    assert "Run ▲" in p.table.value
    p.search.value = "two"
    assert [r.name for r in p.rows] == ["two"]
    p.search.value = ""
    p.status.value = "failed"
    assert p.rows == [] and p.pick.options == ()
    p.status.value = "any"
    p.pick.value = (one.id,)
    assert p.compare_button.disabled and "1 picked" in p.compare_button.tooltip
    p.pick.value = (one.id, two.id)
    assert not p.compare_button.disabled
    p.compare_button.click()                     # runs on a thread
    deadline = time.time() + 30
    while p.last_comparison is None and time.time() < deadline:
        time.sleep(0.05)
    assert p.last_comparison is not None, p.banner.text
    html = p.comparison.value
    assert html.count("<polyline") == 2 and 'data-option="network_dim"' in html and 'data-option="resolution"' not in html
    assert "No step has a sample image in every one" in html


def test_compare_error_is_one_sentence(ws, runs):
    from lora_nb.widgets.runs import RunsPanel

    p = RunsPanel(ws)
    cmd = ws.jobs.submit_command([sys.executable, "-c", "pass"], name="cmd")
    cmd.wait(30)
    p.pick.value = (runs[0].id,)
    with pytest.raises(Exception, match="Compare needs 2 to 4"):
        p.compare([runs[0].id])
    p.banner.guard(lambda: p.compare([runs[0].id, cmd.id]))()
    assert "is not a training run" in p.banner.text
