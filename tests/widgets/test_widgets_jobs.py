"""JobsPanel and JobMonitor on real supervised jobs. The trainer is the STAND-IN engine
(tests/standin_engine.py: a process that prints a kohya-style tqdm bar with avr_loss, epoch lines
and checkpoint lines; not a real trainer), parsed by the real kohya parser."""
from __future__ import annotations

import time

import pytest

import lora_nb
from lora_nb.progress.events import JobStatus
from lora_nb.widgets import JobMonitor, JobsPanel
from lora_nb.jobs.format import loss_svg
from lora_nb.widgets import job_monitor as jobs_mod
from support import standin, wait_for


def _submit(ws, *args, name="run", parser="kohya"):
    return ws.jobs.submit_command(standin(*args), name=name, parser=parser, kind="training", uses_gpu=False)


def test_monitor_follows_a_run_to_the_end(ws, tmp_path):
    job = _submit(ws, "--steps", "30", "--epochs", "2", "--delay", "0.03", "--out", str(tmp_path / "out"))
    m = JobMonitor(ws, job)
    wait_for(lambda: 0 < m.bar.value < 1 and len(m.chart.points) >= 2, timeout=60)
    assert "step " in m.stats.value and "loss" in m.stats.value and not m.stop_button.disabled
    assert "steps:" in m.log_view.value
    assert job.wait(60) is JobStatus.SUCCEEDED
    wait_for(lambda: m.bar.value == 1.0 and "succeeded" in m.title.value, timeout=10)
    m.throttle.flush()
    assert m.stop_button.disabled and not m.rerun_button.disabled and m.resume_button.disabled
    assert m.chart.points == sorted(m.chart.points) and 'class="lnb-loss-svg"' in m.chart.value
    assert "model.safetensors" in m.artifacts_view.value or "[checkpoint]" in m.artifacts_view.value, m.artifacts_view.value
    m.detach()


def test_stop_from_the_monitor(ws):
    job = _submit(ws, "--steps", "2000", "--delay", "0.05")
    m = JobMonitor(ws, job)
    wait_for(lambda: job.status is JobStatus.RUNNING and (job.progress.step or 0) > 0, timeout=60)
    m.stop_button.click()
    m.runner.idle(30)
    assert job.status is JobStatus.STOPPED
    wait_for(lambda: "stopped" in m.title.value and m.stop_button.disabled, timeout=10)
    m.detach()


def test_a_busy_log_is_drawn_at_a_bounded_rate_with_a_bounded_tail(ws):
    job = _submit(ws, "--flood", "100000", name="flood", parser="plain")
    m = JobMonitor(ws, job, rate=5.0)
    start = time.monotonic()
    assert job.wait(60) is JobStatus.SUCCEEDED
    wait_for(lambda: "succeeded" in m.title.value, timeout=10)
    elapsed = time.monotonic() - start
    assert m.throttle.calls <= elapsed * 5 + 3, (m.throttle.calls, elapsed)
    assert m.log_view.value.count("\n") < jobs_mod.LOG_LINES
    m.detach()


def test_another_kernel_attaches_to_a_running_job(ws, tmp_path):
    job = _submit(ws, "--steps", "400", "--delay", "0.03", name="started-elsewhere")
    wait_for(lambda: (job.progress.step or 0) > 2, timeout=60)
    other = lora_nb.Workspace(ws.root)                 # what a fresh kernel (or a reloaded Voila page) opens
    panel = JobsPanel(other, auto_refresh=0)
    assert panel.table.value == job.id and "started-elsewhere" in panel.table.label
    m = panel.monitor
    first = m.bar.value
    wait_for(lambda: m.bar.value > first and m.chart.points, timeout=60)
    assert "running" in m.title.value
    panel.refresh()
    job.stop(grace=5)
    wait_for(lambda: "stopped" in m.title.value, timeout=15)
    panel.close()


def test_loss_curve_is_rebuilt_from_the_log_after_a_restart(ws):
    job = _submit(ws, "--steps", "25", "--delay", "0.01")
    assert job.wait(60) is JobStatus.SUCCEEDED
    jobs_mod._HISTORY.pop(job.id, None)                 # a new kernel has no history in memory
    m = JobMonitor(lora_nb.Workspace(ws.root))
    m.attach(job.id)
    m.runner.idle()
    wait_for(lambda: len(m.chart.points) >= 10, timeout=10)
    assert [s for s, _ in m.chart.points] == sorted({s for s, _ in m.chart.points})
    m.detach()


def test_rerun_and_resume(ws):
    job = _submit(ws, "--steps", "5", "--delay", "0.01", name="again")
    assert job.wait(60) is JobStatus.SUCCEEDED
    started = []
    m = JobMonitor(ws, job, on_new_job=started.append)
    m.resume_button.click()                            # disabled in the UI; a direct click still explains itself
    assert m.banner.kind == "error" and "saved no resumable state" in m.banner.text
    m.rerun_button.click()
    assert started and started[0].id != job.id and started[0].name == "again"
    assert started[0].snapshot().argv == job.snapshot().argv and m.job.id == started[0].id
    assert started[0].wait(60) is JobStatus.SUCCEEDED
    m.detach()


def test_jobs_panel_lists_filters_and_deletes(ws):
    a = _submit(ws, "--steps", "3", "--delay", "0.01", name="first")
    assert a.wait(60) is JobStatus.SUCCEEDED
    p = JobsPanel(ws, auto_refresh=0)
    assert [v for _, v in p.table.options] == [a.id]
    p.filter.value = "active"
    assert p.table.options == ()
    p.filter.value = "finished"
    p.table.value = a.id
    p.delete_button.click()
    assert p.banner.kind == "info" and ws.jobs.list() == [] and not a.run_dir.exists()
    p.close()


def test_loss_svg_is_bounded():
    pts = [(i, 1.0 / (i + 1)) for i in range(50_000)]
    svg = loss_svg(pts, max_drawn=300)
    assert svg.count(",") < 700 and 'data-last-step="49999"' in svg
    assert "no loss values yet" in loss_svg([])


def test_file_links(tmp_path, monkeypatch):
    f = tmp_path / "runs" / "x" / "lora.safetensors"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"12345")
    monkeypatch.delenv("LORA_NB_FILES_URL", raising=False)
    assert "<a " not in jobs_mod.file_link(f, tmp_path) and "5 B" in jobs_mod.file_link(f, tmp_path)
    monkeypatch.setenv("LORA_NB_FILES_URL", "/voila/files/ws/")
    assert 'href="/voila/files/ws/runs/x/lora.safetensors" download' in jobs_mod.file_link(f, tmp_path)


SAMPLER = r'''
import io, json, sys, time
from pathlib import Path
from PIL import Image
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
for i in range(3):
    p = out / f"sample_{i}.png"
    Image.new("RGB", (32, 32), (80 * i, 0, 0)).save(p)
    print("@@lora-nb " + json.dumps({"event": "progress", "step": i + 1, "total_steps": 3, "loss": 1.0 / (i + 1)}), flush=True)
    print("@@lora-nb " + json.dumps({"event": "artifact", "path": str(p), "kind": "sample"}), flush=True)
    time.sleep(0.3)
(out / "final.safetensors").write_bytes(b"x" * 10)
print("@@lora-nb " + json.dumps({"event": "artifact", "path": str(out / "final.safetensors"), "kind": "lora"}), flush=True)
'''


def test_samples_and_artifacts_appear_as_they_are_written(ws, tmp_path):
    """A small process that reports through the task protocol (a stand-in, not a trainer)."""
    import sys

    script = tmp_path / "sampler.py"
    script.write_text(SAMPLER)
    job = ws.jobs.submit_command([sys.executable, str(script), str(ws.runs_dir / "samples-out")], name="sampler",
                                 parser="task", uses_gpu=False)
    m = JobMonitor(ws, job)
    wait_for(lambda: any(img.layout.display != "none" for img in m.sample_images), timeout=60)
    assert job.wait(60) is JobStatus.SUCCEEDED
    wait_for(lambda: sum(img.layout.display != "none" for img in m.sample_images) == 3 and "final.safetensors" in m.artifacts_view.value,
             timeout=10)
    assert all(img.value[:4] == b"\x89PNG" for img in m.sample_images[:3])
    assert "[lora]" in m.artifacts_view.value and "[sample]" in m.artifacts_view.value
    m.detach()


def _count_reads(monkeypatch):
    """Counts database calls made from this thread (the follower's own thread reads too, and is not counted)."""
    import threading

    from lora_nb.store import Store

    me, calls = threading.get_ident(), []
    for name in ("query", "transaction", "execute"):
        orig = getattr(Store, name)

        def wrapped(self, *a, _orig=orig, _name=name, **kw):
            if threading.get_ident() == me:
                calls.append(_name)
            return _orig(self, *a, **kw)
        monkeypatch.setattr(Store, name, wrapped)
    return calls


def test_a_monitor_frame_and_a_job_line_each_read_the_database_once(ws, tmp_path, monkeypatch):
    """Stand-in engine (tests/standin_engine.py) mid-run: every frame is drawn from ONE snapshot, so it cannot
    mix states (a status from one moment, a progress from another)."""
    from lora_nb.widgets.common import JobLine

    job = _submit(ws, "--steps", "2000", "--delay", "0.05", "--out", str(tmp_path / "out"))
    wait_for(lambda: job.status is JobStatus.RUNNING and (job.progress.step or 0) > 0, timeout=60)
    m, line = JobMonitor(ws, job), JobLine()
    line.attach(job)
    calls = _count_reads(monkeypatch)
    m.render()
    assert calls == ["query"], calls
    assert "step " in m.stats.value and 'data-status="running"' in m.title.value
    calls.clear()
    line.refresh()
    assert calls == ["query"] and line.label.value.startswith("running · step "), (calls, line.label.value)
    m.detach(), line.detach()
    job.stop(grace=5)


# -- the slowdown doctor's warnings in the monitor ------------------------------------------------------------
# The run is a real supervised process (a sleeping Python: it reports no step rate, so the supervisor's own
# sampler stays quiet); its gpu.jsonl is written by the real GpuWatch with a FAKE NVML sampler (no GPU here),
# the way the supervisor writes it during a GPU run.
SLOWDOWN_CASES = {
    # code: (samples that trigger it, samples after which it is resolved); a sample: (t, step, rate, gpu or None)
    "slower": ([(t, t, 3.0, None) for t in range(0, 180, 5)] + [(t, t, 1.5, None) for t in range(400, 480, 5)],
               [(t, t, 3.0, None) for t in range(480, 560, 5)]),
    "vram_full": ([(t, t, 2.0, (99.0, 79.9, 80.0)) for t in range(0, 60, 5)],
                  [(t, t, 2.0, (99.0, 50.0, 80.0)) for t in range(60, 130, 5)]),
    "loader_bound": ([(t, t, 0.5, (10.0, 10.0, 80.0)) for t in range(0, 60, 5)],
                     [(t, t, 2.0, (97.0, 10.0, 80.0)) for t in range(60, 130, 5)]),
}


def _write_samples(watch, samples):
    from lora_nb.progress.events import Progress

    for t, step, rate, gpu in samples:
        watch.sampler = (lambda g=gpu: g) if gpu is not None else None
        watch.tick(float(t), Progress(step=step, rate=rate))



@pytest.mark.parametrize("code", sorted(SLOWDOWN_CASES))
def test_slowdown_warning_card_while_live_and_cleared_when_resolved(ws, code):
    import sys

    from lora_nb.jobs.gpu_watch import GpuWatch
    from lora_nb.jobs.slowdown import HINTS, TITLES

    job = ws.jobs.submit_command([sys.executable, "-c", "import time; time.sleep(120)"], name="slow", kind="training")
    wait_for(lambda: job.status is JobStatus.RUNNING, timeout=60)
    m = JobMonitor(ws, job)
    try:
        assert m.slowdown_view.value == ""                                   # nothing measured: no card
        watch = GpuWatch(None, job.run_dir, interval=0)
        watch.start = 0.0
        trigger, resolve = SLOWDOWN_CASES[code]
        _write_samples(watch, trigger)
        m.render()
        card = m.slowdown_view.value
        assert f'data-code="{code}"' in card and card.count("lnb-slowdown-icon") == 1
        assert TITLES[code] in card and HINTS[code].split(";")[0].replace("(", "") in card.replace("(", "")
        _write_samples(watch, resolve)
        m.render()
        assert m.slowdown_view.value == ""                                   # resolved: the card goes
        _write_samples(watch, [(t + 1000, s + 1000, r, g) for t, s, r, g in trigger])   # back again, then the run ends
        m.render()
        assert f'data-code="{code}"' in m.slowdown_view.value
        job.stop(wait=True)
        wait_for(lambda: (m.render(), m.slowdown_view.value == "")[1], timeout=30)
    finally:
        m.detach()


def test_slowdown_hints_become_cards_not_lines_while_live(ws):
    """A slowdown hint event (recorded as the supervisor records it) is not repeated as a plain hint line while the
    run is live (its card shows the state now); other hints still are; once the run ended, it is a line again."""
    import sys

    from lora_nb.jobs import records
    from lora_nb.jobs.slowdown import Sample, diagnose

    job = ws.jobs.submit_command([sys.executable, "-c", "import time; time.sleep(120)"], name="slow", kind="training")
    wait_for(lambda: job.status is JobStatus.RUNNING, timeout=60)
    finding = diagnose([Sample(float(t), step=t, gpu_util=5) for t in range(0, 30, 5)])[0]
    with ws.store.transaction() as c:
        records.add_event(c, job.id, "hint", {"text": finding.message, "code": "slowdown_loader_bound"})
        records.add_event(c, job.id, "hint", {"text": "Another hint. Do this.", "code": "other"})
    m = JobMonitor(ws, job)
    try:
        assert len(job.snapshot().hints) == 2
        assert "GPU is idle" not in m.hints_view.value and "Another hint" in m.hints_view.value
        job.stop(wait=True)
        wait_for(lambda: (m.render(), "GPU is idle" in m.hints_view.value)[1], timeout=30)
    finally:
        m.detach()
