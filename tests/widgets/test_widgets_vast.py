"""The Vast.ai cost chip in the header and the auto-stop box in the Jobs panel, against tests/fake_vast_api.py
(a LOCAL HTTP server speaking the Vast.ai API calls we use, not Vast itself)."""
from __future__ import annotations

import pytest

from fake_vast_api import vast_container

from lora_nb.jobs import autostop
from lora_nb.widgets import SystemHeader
from lora_nb.widgets.autostop import AutostopBox
from lora_nb.widgets.jobs_panel import JobsPanel

KEY = "vast-widget-key-0123456789abcdef"


@pytest.fixture
def vast(monkeypatch):
    with vast_container(monkeypatch, KEY) as api:
        yield api


def test_the_header_shows_price_spend_and_queue_on_vast(ws, vast):
    h = SystemHeader(ws, interval=0)
    assert "$ Vast #4242: $0.400/h · spent ≈ $0.80" in h.value and "queue empty" in h.value and KEY not in h.value
    assert [r[0] for r in vast.requests] == ["GET"]


def test_the_header_has_no_cost_chip_off_vast_and_says_one_sentence_when_the_api_fails(ws, vast, monkeypatch):
    monkeypatch.delenv("CONTAINER_ID")
    assert "Vast #" not in SystemHeader(ws, interval=0).value and vast.requests == []
    monkeypatch.setenv("CONTAINER_ID", "4242")
    vast.fail_status = 500
    value = SystemHeader(ws, interval=0).value
    assert "cost unavailable: The Vast.ai API answered HTTP 500" in value and "lnb-chip-warn" in value


def test_the_autostop_box_sets_the_setting_and_shows_the_state(ws, vast):
    box = AutostopBox(ws)
    assert not box.enabled.disabled and box.enabled.value is False and box.grace.value == 10
    box.grace.value = 5
    box.enabled.value = True
    assert ws.settings.get("autostop_when_drained") is True and ws.settings.get("autostop_grace_seconds") == 300
    autostop.arm(ws, spawn=False)
    box.refresh()
    assert "armed: stops at" in box.state.value
    box.enabled.value = False
    assert autostop.status(ws)["state"] == "cancelled" and "turned off during the grace" in box.state.value


def test_the_autostop_box_is_disabled_with_the_reason_off_vast(ws):
    box = AutostopBox(ws, env={})
    assert box.enabled.disabled and box.grace.disabled and "not a Vast.ai instance" in box.state.value


def test_the_jobs_panel_holds_the_autostop_box(ws, vast):
    panel = JobsPanel(ws, auto_refresh=0)
    assert panel.autostop in panel.children
    panel.close()
