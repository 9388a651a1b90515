"""The GPU slots box in the Jobs panel, without a browser: typing a device list pins jobs, Auto goes back,
bad lists are refused beside the field. The devices are a FAKE list (no GPU here); the job is a real process."""
from __future__ import annotations

import sys

from lora_nb.progress.events import JobStatus
from lora_nb.widgets import JobsPanel
from lora_nb.widgets.gpu_slots import GpuSlotsBox
from support import wait_for


def test_apply_auto_and_a_bad_list(ws):
    box = GpuSlotsBox(ws)
    assert box.devices.value == "0" and "slot 0 · GPU 0 · free" in box.usage.value
    box.devices.value = "0, 1"
    box.apply_button.click()
    assert ws.jobs.gpu_slots == [0, 1] and box.devices.value == "0,1"
    assert "slot 1 · GPU 1 · free" in box.usage.value
    box.devices.value = "zero"
    box.apply_button.click()
    assert "not a list of device indices" in box.banner.value and ws.jobs.gpu_slots == [0, 1]
    box.auto_button.click()
    assert ws.settings.get("gpu_devices") is None and ws.jobs.gpu_slots == [0]


def test_the_jobs_panel_shows_who_holds_a_slot(ws):
    panel = JobsPanel(ws, auto_refresh=0)
    panel.slots.devices.value = "0,1"
    panel.slots.apply_button.click()
    job = ws.jobs.submit_command([sys.executable, "-c", "import time; time.sleep(5)"], name="holder")
    wait_for(lambda: job.status is JobStatus.RUNNING)
    panel.slots.devices.value = "3"           # being typed: a refresh must not overwrite it
    panel.refresh()
    assert panel.slots.devices.value == "3"
    assert f"slot 0 · GPU 0 · holder ({job.id})" in panel.slots.usage.value and "slot 1 · GPU 1 · free" in panel.slots.usage.value
    assert any("GPU 0" in label for label, _ in panel.table.options)
    job.stop(grace=2)
    panel.close()
