"""GPU slots are devices: jobs are pinned with CUDA_VISIBLE_DEVICES, never share a card, multi-GPU runs wait.

The device list is a FAKE: the ``gpu_devices`` setting (what NVML would report on a 2-GPU box) or a fake
NVML module; no GPU exists here. The jobs are real processes under real supervisors that write down the
environment they were started with, so what is asserted is what a trainer would really see.
"""
from __future__ import annotations

import json
import sqlite3
import sys
import time

import pytest

from lora_nb import nvml
from lora_nb.errors import JobError
from lora_nb.jobs import records, slots
from lora_nb.progress.events import JobStatus

from support import wait_for

# A job that records when it ran and which devices it was given, then sleeps.
PROBE = """
import json, os, sys, time
start = time.time()
time.sleep(float(sys.argv[2]))
json.dump({"start": start, "end": time.time(), "cvd": os.environ.get("CUDA_VISIBLE_DEVICES"),
           "order": os.environ.get("CUDA_DEVICE_ORDER")}, open(sys.argv[1], "w"))
"""


def probe(ws, out, seconds=1.5, **kw):
    return ws.jobs.submit_command([sys.executable, "-c", PROBE, str(out), str(seconds)], name=out.stem, **kw)


class FakeNvml:
    """pynvml's calls that lora_nb.nvml uses, over a list of (name, bytes)."""

    class NVMLError(Exception):
        pass

    def __init__(self, devices, fail_init=False):
        self.devices, self.fail_init, self.shut = devices, fail_init, False

    def nvmlInit(self):
        if self.fail_init:
            raise self.NVMLError("Driver Not Loaded")

    def nvmlShutdown(self):
        self.shut = True

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, h):
        return self.devices[h][0].encode()

    def nvmlDeviceGetMemoryInfo(self, h):
        return type("M", (), {"total": self.devices[h][1]})()


# -- the pure parts -----------------------------------------------------------------------------------
def test_nvml_lists_devices_and_is_quiet_without_a_driver():
    fake = FakeNvml([("NVIDIA H200", 150 << 30), ("NVIDIA RTX 4090", 24 << 30)])
    found = nvml.list_devices(fake)
    assert [(d.index, d.name, d.memory_total) for d in found] == [(0, "NVIDIA H200", 150 << 30), (1, "NVIDIA RTX 4090", 24 << 30)]
    assert fake.shut
    assert nvml.list_devices(FakeNvml([], fail_init=True)) == []


def test_slot_list_comes_from_the_setting_then_nvml_then_the_count(ws):
    assert slots.slot_devices(ws.settings, detect=lambda: (0, 1, 2)) == (0, 1, 2)
    assert slots.slot_devices(ws.settings, detect=lambda: ()) == (0,)
    ws.settings.set("gpu_slots", 3)
    assert slots.slot_devices(ws.settings, detect=lambda: ()) == (0, 1, 2)
    ws.settings.set("gpu_devices", [2, 3])
    assert slots.slot_devices(ws.settings, detect=lambda: (0, 1, 2, 3)) == (2, 3)


@pytest.mark.parametrize("bad", [[], "", "a,b", [0, -1], [True], [1.5], "0;1", list(range(65))])
def test_bad_slot_lists_are_refused_and_nothing_is_saved(ws, bad):
    with pytest.raises(JobError, match="not a list of device indices") as e:
        ws.jobs.set_gpu_slots(bad)
    assert "nvidia-smi" in e.value.fix
    assert ws.settings.get("gpu_devices") is None


def test_pick_free_uses_distinct_and_least_busy_devices():
    assert slots.pick_free((0, 1), held=(), want=1) == [0]
    assert slots.pick_free((0, 1), held=(0,), want=1) == [1]
    assert slots.pick_free((0, 1), held=(0,), want=2) is None
    # two shares of card 0 and two of card 1: a 2-GPU job takes one share of each, not both of card 0
    assert slots.pick_free((0, 0, 1, 1), held=(), want=2) == [0, 2]
    # a 1-GPU job goes to the idle card
    assert slots.pick_free((0, 0, 1, 1), held=(0,), want=1) == [2]
    assert slots.pick_free((0, 0), held=(), want=2) is None
    assert slots.spread([0, 1], 3) == [0, 1, 0]


def test_max_concurrent_lays_slots_over_known_devices(ws):
    ws.jobs.set_gpu_slots([0, 1])
    ws.jobs.max_concurrent = 4
    assert ws.jobs.gpu_slots == [0, 1, 0, 1] and ws.jobs.max_concurrent == 4
    ws.jobs.set_gpu_slots(None)
    ws.jobs.max_concurrent = 2           # no GPU found here: a plain count
    assert ws.jobs.gpu_slots == [0, 1]
    with pytest.raises(JobError, match="from 1 to 64"):
        ws.jobs.max_concurrent = 0


# -- real jobs ------------------------------------------------------------------------------------------
def _runs(outs):
    return [json.loads(o.read_text()) for o in outs]


def _overlap(a, b):
    return a["start"] < b["end"] and b["start"] < a["end"]


def test_four_jobs_on_two_gpus_never_share_a_device(ws, tmp_path):
    ws.jobs.set_gpu_slots([0, 1])
    outs = [tmp_path / f"j{i}.json" for i in range(4)]
    jobs = [probe(ws, o) for o in outs]
    for job in jobs:
        assert job.wait(60) is JobStatus.SUCCEEDED, job.error
    runs = _runs(outs)
    assert all(r["order"] == "PCI_BUS_ID" and r["cvd"] in ("0", "1") for r in runs)
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            if _overlap(a, b):
                assert a["cvd"] != b["cvd"], "two running jobs were pinned to one GPU"
    assert max(sum(_overlap(a, b) for b in runs) for a in runs) <= 2   # itself plus one other at most
    assert any(_overlap(runs[0], r) for r in runs[1:]), "the second GPU was never used"
    for job, r in zip(jobs, runs):   # what the row says is what the process got
        assert job.snapshot().devices == [int(r["cvd"])]


def test_a_two_gpu_run_waits_for_two_free_devices_and_holds_the_queue(ws, tmp_path):
    ws.jobs.set_gpu_slots([0, 1])
    a = probe(ws, tmp_path / "a.json", seconds=2.0)
    wait_for(lambda: a.status is JobStatus.RUNNING, what="first job running")
    big = probe(ws, tmp_path / "big.json", seconds=0.5, gpus=2)
    small = probe(ws, tmp_path / "small.json", seconds=0.2)     # would fit on the free GPU, but the 2-GPU run is first
    time.sleep(0.8)
    assert big.status is JobStatus.QUEUED and small.status is JobStatus.QUEUED
    for job in (a, big, small):
        assert job.wait(60) is JobStatus.SUCCEEDED, job.error
    ra, rbig, rsmall = _runs([tmp_path / "a.json", tmp_path / "big.json", tmp_path / "small.json"])
    assert rbig["cvd"] == "0,1" and big.snapshot().gpus == 2
    assert rbig["start"] >= ra["end"] - 0.05 and rsmall["start"] >= rbig["start"]


def test_a_job_without_gpus_starts_at_once_and_sees_no_gpu(ws, tmp_path):
    ws.jobs.set_gpu_slots([0])
    busy = probe(ws, tmp_path / "busy.json", seconds=3)
    free = probe(ws, tmp_path / "free.json", seconds=0.1, gpus=0)
    assert free.wait(30) is JobStatus.SUCCEEDED
    assert busy.status is JobStatus.RUNNING
    assert json.loads((tmp_path / "free.json").read_text())["cvd"] == ""
    busy.stop(grace=2)


def test_a_job_with_a_secret_holds_the_gpus_free_now_or_is_refused(ws, tmp_path):
    """A job whose env holds a token starts at once (the token is never stored, so it cannot queue): it gets
    the GPUs it asks for pinned like any job, and is refused with the reason when they are busy."""
    ws.jobs.set_gpu_slots([0, 1])
    token = {"HF_TOKEN": "hf_abcdefghijklmnopqrstuvwx"}
    first = probe(ws, tmp_path / "first.json", seconds=3, env=token)
    second = probe(ws, tmp_path / "second.json", seconds=3, env=token)
    wait_for(lambda: first.status is JobStatus.RUNNING and second.status is JobStatus.RUNNING, what="both running")
    assert sorted(first.snapshot().devices + second.snapshot().devices) == [0, 1]
    with pytest.raises(JobError, match="the 1 GPU it asks for is not free now") as e:
        probe(ws, tmp_path / "third.json", env=token)
    assert "gpus=0" in e.value.fix and len(ws.jobs.list()) == 2
    assert sorted(p.name for p in ws.runs_dir.iterdir()) == sorted([first.id, second.id])   # nothing half-written
    for job in (first, second):
        assert job.wait(60) is JobStatus.SUCCEEDED, job.error
    got = _runs([tmp_path / "first.json", tmp_path / "second.json"])
    assert sorted(r["cvd"] for r in got) == ["0", "1"] and [first.snapshot().devices, second.snapshot().devices] == [[int(r["cvd"])] for r in got]


def test_more_gpus_than_devices_is_refused_at_submit_and_fails_if_slots_shrink(ws, tmp_path):
    with pytest.raises(JobError, match="needs 2 GPUs but this workspace's slots are on 1 device") as e:
        probe(ws, tmp_path / "x.json", gpus=2)
    assert "set_gpu_slots" in e.value.fix and ws.jobs.list() == []
    with pytest.raises(JobError, match="gpus must be a whole number"):
        probe(ws, tmp_path / "x.json", gpus=-1)
    ws.jobs.set_gpu_slots([0, 1])
    hold = probe(ws, tmp_path / "hold.json", seconds=3)
    wait_for(lambda: hold.status is JobStatus.RUNNING)
    wide = probe(ws, tmp_path / "wide.json", gpus=2)
    ws.jobs.set_gpu_slots([0])
    assert wide.wait(10) is JobStatus.FAILED
    assert "needs 2 GPUs but the GPU slots are on 1 device" in wide.error
    hold.stop(grace=2)


def test_slot_usage_and_the_cli(ws, tmp_path, capsys):
    from lora_nb.cli import main

    root = str(ws.root)
    assert main(["--workspace", root, "jobs", "slots", "--set", "0,1"]) == 0
    assert capsys.readouterr().out.splitlines() == ["slot 0  GPU 0  free", "slot 1  GPU 1  free"]
    job = probe(ws, tmp_path / "u.json", seconds=3)
    wait_for(lambda: job.status is JobStatus.RUNNING)
    usage = ws.jobs.slot_usage()
    assert usage[0] == {"slot": 0, "device": 0, "job": job.id, "name": "u"} and usage[1]["job"] is None
    assert main(["--workspace", root, "jobs", "slots", "--count", "3", "--json"]) == 0
    assert [r["device"] for r in json.loads(capsys.readouterr().out)] == [0, 1, 0]
    job.stop(grace=2)
    assert main(["--workspace", root, "jobs", "submit", "--gpus", "2", "--", sys.executable, "-c", "pass"]) == 0
    new_id = capsys.readouterr().out.strip()
    assert ws.jobs.get(new_id).snapshot().gpus == 2


def test_schema_1_rows_keep_their_gpu_use(tmp_path):
    from lora_nb.store import Store

    db = tmp_path / "lora_nb.db"
    store = Store(db)
    store.ensure_schema("jobs", records.MIGRATIONS[:1])
    with store.transaction() as c:
        for i, gpu in enumerate((1, 0)):
            c.execute("INSERT INTO jobs(id, seq, name, kind, status, argv, parser, uses_gpu, run_dir, created_at) "
                      "VALUES(?, ?, 'x', 'command', 'succeeded', '[]', 'plain', ?, '/tmp', 0)", (f"j{i}", i, gpu))
    store.ensure_schema("jobs", records.MIGRATIONS)
    assert [(s.id, s.gpus, s.devices) for s in records.load_all(store)] == [("j0", 1, []), ("j1", 0, [])]
    assert sqlite3.connect(db).execute("SELECT version FROM schema_versions WHERE component='jobs'").fetchone()[0] == len(records.MIGRATIONS)


def test_tagging_holds_a_slot_only_on_a_gpu(ws, monkeypatch, tmp_path):
    from lora_nb.tagging import session

    monkeypatch.setattr(nvml, "device_indices", lambda: ())
    assert not session.runs_on_gpu()
    monkeypatch.setattr(nvml, "device_indices", lambda: (0,))
    monkeypatch.setenv("LORA_NB_TAGGER_PROVIDERS", "CUDAExecutionProvider,CPUExecutionProvider")
    assert session.runs_on_gpu()
    monkeypatch.setenv("LORA_NB_TAGGER_PROVIDERS", "CPUExecutionProvider")
    assert not session.runs_on_gpu()
