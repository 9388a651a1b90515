"""The slowdown doctor: pure analysis on synthetic samples, the NVML sampler on a FAKE NVML (no GPU here),
and the supervisor watching a real job's step rate (a real subprocess printing tqdm-style progress)."""
from __future__ import annotations

import json
import sys
import textwrap


from lora_nb.jobs.gpu_watch import GpuWatch, nvml_sampler
from lora_nb.jobs.slowdown import Sample, diagnose
from lora_nb.progress.events import Progress


def _run(t0, t1, **kw):
    return [Sample(float(t), step=t, **kw) for t in range(t0, t1, 5)]


def test_a_third_slower_than_the_first_minutes():
    base = _run(0, 180, rate=3.0, gpu_util=97, mem_used=40, mem_total=80)
    assert diagnose(base + _run(400, 480, rate=2.1, gpu_util=97, mem_used=40, mem_total=80)) == []   # 30%: not yet
    found = diagnose(base + _run(400, 480, rate=1.9, gpu_util=97, mem_used=40, mem_total=80))
    assert [f.code for f in found] == ["slower"]
    assert "from 3.00 to 1.90 it/s (37% slower" in found[0].text and "nvidia-smi" in found[0].hint


def test_too_few_samples_say_nothing():
    assert diagnose([]) == [] and diagnose(_run(0, 10, rate=3.0)) == []


def test_memory_at_its_limit_only_when_it_stays_there():
    gib = 1 << 30
    full = _run(0, 60, rate=2.0, gpu_util=99, mem_used=79.5 * gib, mem_total=80 * gib)
    found = diagnose(full)
    assert [f.code for f in found] == ["vram_full"] and "79.5 of 80.0 GiB" in found[0].text
    assert "gradient_checkpointing" in found[0].hint
    dip = full[:-1] + [Sample(60.0, step=60, rate=2.0, gpu_util=99, mem_used=50 * gib, mem_total=80 * gib)]
    assert diagnose(dip) == []


def test_idle_gpu_while_steps_advance_is_the_loader():
    found = diagnose(_run(0, 60, rate=0.5, gpu_util=15, mem_used=10, mem_total=80))
    assert [f.code for f in found] == ["loader_bound"] and "max_data_loader_n_workers" in found[0].hint
    stalled = [Sample(float(t), step=10, rate=None, gpu_util=0) for t in range(0, 60, 5)]
    assert diagnose(stalled) == []      # nothing advancing: not the loader (a pause, a hang)


class FakeNvml:
    class NVMLError(Exception):
        pass

    def __init__(self, util=(30, 90), used=(10, 70), total=80, fail_init=False):
        self.util, self.used, self.total, self.fail_init = util, used, total, fail_init

    def nvmlInit(self):
        if self.fail_init:
            raise self.NVMLError("Driver Not Loaded")

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetUtilizationRates(self, h):
        return type("U", (), {"gpu": self.util[h]})()

    def nvmlDeviceGetMemoryInfo(self, h):
        return type("M", (), {"used": self.used[h], "total": self.total})()


def test_nvml_sampler_busiest_and_fullest_device():
    assert nvml_sampler([0, 1], FakeNvml())() == (90.0, 70.0, 80.0)
    assert nvml_sampler([0], FakeNvml())() == (30.0, 10.0, 80.0)
    assert nvml_sampler([0], FakeNvml(fail_init=True)) is None      # a host without a driver: nothing
    assert nvml_sampler([], FakeNvml()) is None


def test_watch_reports_each_finding_once_and_keeps_samples(tmp_path):
    watch = GpuWatch(nvml_sampler([0], FakeNvml(util=(10,), used=(79.9,))), tmp_path, interval=5)
    events = []
    for t in range(0, 120):
        events += watch.tick(float(t), Progress(step=t, rate=2.0))
    codes = [e.data["code"] for e in events]
    assert sorted(codes) == ["slowdown_loader_bound", "slowdown_vram_full"]
    lines = (tmp_path / "gpu.jsonl").read_text().splitlines()
    assert len(lines) == 24 and json.loads(lines[0])["gpu_util"] == 10.0
    # while the engine samples or saves, the GPU's pause is expected: no util/rate recorded then
    watch.tick(200.0, Progress(step=120, rate=0.1, phase="sampling"))
    assert watch.samples[-1].gpu_util is None and watch.samples[-1].rate is None


def test_supervisor_warns_when_a_real_job_slows_down(ws, monkeypatch):
    """A real job through the real supervisor (no GPU: its slots hold no NVML device, so only it/s is watched)."""
    script = textwrap.dedent('''
        import sys, time
        for i in range(1, 60):
            rate = 20.0 if i < 30 else 5.0
            sys.stdout.write(f"steps: {i*100//60:3d}%|#    | {i}/60 [00:01<00:01, {rate:5.2f}it/s, avr_loss=0.5]\\n"); sys.stdout.flush()
            time.sleep(0.05)
    ''')
    # the supervisor is a subprocess: shrink its windows through a sitecustomize on PYTHONPATH
    site = ws.root / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import lora_nb.jobs.slowdown as s, lora_nb.jobs.gpu_watch as g\n"
        "s.BASELINE_SECONDS = 1.0; s.RECENT_SECONDS = 1.0; s.diagnose.__defaults__ = (1.0, 1.0); g.INTERVAL = 0.1\n"
        "g.GpuWatch.__init__.__defaults__ = (0.1,)\n")
    import os
    monkeypatch.setenv("PYTHONPATH", str(site) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    job = ws.jobs.submit_command([sys.executable, "-c", script], name="slows", parser="kohya", gpus=0)
    assert job.wait(60).is_final   # the kohya parser fails it (no LoRA saved): only the hints matter here
    assert any("slowed from" in h for h in job.hints), job.hints
    assert (job.run_dir / "gpu.jsonl").is_file()
