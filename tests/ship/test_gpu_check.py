"""scripts/gpu-check.sh: the GPU check's machinery, tested where there is no GPU (CI, the development box).

`--dry-run` runs the real script and driver (bench/gpu_check.py) on the CPU with tiny sizes: the GPU rows must
say "skipped: no CUDA device", and the CPU comparisons must be real work, not placeholders: two real onnxruntime
sessions (graph optimisations off and on, so their scores really differ) tag the same JPEGs through lora_nb's
Tagger with identical tags; lora_nb's resize runs its torch code path on the CPU and its numpy path and the
results agree; the training comparison (submit_training vs the same command by hand, parsed from the engine's
own progress bar) runs against the stand-in sd-scripts, which replays one recorded real run for both, so the
ratio must come out exactly 1.000; the captioners' CPU row compares lora_nb's batched Captioner with a plain transformers
loop on a small random Florence-2 (same captions). The overlay venv the GPU set-up builds is tested for real too, and the
steady-state rate arithmetic on a synthetic progress bar.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu-check.sh"
sys.path.insert(0, str(REPO / "bench"))

import gpu_check  # noqa: E402  (bench/ is not a package)

DRY_KEYS = ["tagging", "tagging-cpu", "resize", "resize-cpu", "sd15", "sdxl", "flux", "standin", "florence2", "joycaption",
            "captioning-cpu"]
GPU_ONLY = ["tagging", "resize", "sd15", "sdxl", "flux", "florence2", "joycaption"]


@pytest.fixture(scope="module")
def dry(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu-check")
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    env.update(LORA_NB_ENGINE_CACHE=str(root / "cache"), PYTHON=sys.executable)
    r = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--budget", "160", "--out", str(root / "out")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=240)
    data = json.loads((root / "out" / "gpu-check.json").read_text())
    return r, root / "out", {row["key"]: row for row in data["rows"]}, data


def test_dry_run_prints_one_table_and_exits_0(dry):
    r, out, rows, data = dry
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert data["final"] is True and list(rows) == DRY_KEYS
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("|")]
    assert lines[0] == "| what | figure | baseline | ratio | goal | verdict | s |" and len(lines) == 2 + len(DRY_KEYS)
    assert (out / "gpu-check.md").read_text() == r.stdout
    assert all(row["verdict"].startswith(("pass", "skipped: ")) for row in rows.values()), rows


def test_gpu_rows_say_no_cuda_device(dry):
    _, _, rows, _ = dry
    for key in GPU_ONLY:
        assert rows[key]["verdict"].startswith("skipped: no CUDA device"), rows[key]
        assert rows[key]["figure"] == "—" and rows[key]["goal"] != "—"


def test_tagging_comparison_is_real(dry):
    row = dry[2]["tagging-cpu"]
    d = row["details"]
    assert row["verdict"].startswith("pass: tags identical on 8/8 images")
    assert d["identical_images"] == d["images"] == 8 and d["providers"] == ["CPUExecutionProvider"]
    assert 0 < d["max_score_diff"] < 1e-4          # two different kernels' scores: close, not bit-equal
    assert 0.01 <= d["threshold"] <= 0.99 and 5 <= d["mean_tags"] <= 60
    assert float(row["figure"].split()[0]) > 0 and float(row["baseline"].split()[0]) > 0


def test_resize_comparison_is_real(dry):
    row = dry[2]["resize-cpu"]
    d = row["details"]
    assert row["verdict"].startswith("pass: max abs diff")
    assert d["modules"] == 8 and (d["rank"], d["new_rank"]) == (32, 8)
    assert d["weight_scale"] > 0 and d["relative_diff"] <= 1e-6


def test_training_comparison_runs_both_paths(dry):
    row = dry[2]["standin"]
    d = row["details"]
    assert row["ratio"] == "1.000" and row["verdict"].startswith("pass: steps 10-40 of 40 timed")
    assert d["steps"] == 40 and d["window_by_hand"] == d["window_lora_nb"] == [10, 40]
    assert d["it_s_by_hand"] == d["it_s_lora_nb"] > 0 and d["argv"][1].endswith("train_network.py")
    with tarfile.open(dry[1] / "logs.tar.gz") as tar:
        names = tar.getnames()
    assert any(n.endswith("console.log") for n in names) and any(n.endswith("-log") for n in names)


def test_captioning_comparison_is_real(dry):
    row = dry[2]["captioning-cpu"]
    d = row["details"]
    assert row["verdict"] == "pass: captions identical on 8/8 images", row
    assert d["identical"] == d["images"] == 8 and d["new_tokens"] == 12
    assert float(row["figure"].split()[0]) > 0 and float(row["baseline"].split()[0]) > 0 and row["ratio"].endswith("x")
    for key in ("florence2", "joycaption"):                   # the GPU rows say what they would measure, and why not here
        assert dry[2][key]["what"].startswith(("Florence-2", "JoyCaption")) and "CUDA bf16" in dry[2][key]["what"]


def test_real_size_captioners_have_the_real_models_sizes():
    """The GPU rows' random models are built from the real layouts: on the meta device (shapes only, no memory)
    their parameter counts are Florence-2-large's 0.77 B and JoyCaption beta one's 8.48 B."""
    from captioning_throughput import real_size_model

    counts = {}
    for family in ("florence2", "joycaption"):
        model, processor = real_size_model(family, "meta")
        counts[family] = sum(p.numel() for p in model.parameters()) / 1e9
    assert counts["florence2"] == pytest.approx(0.770, abs=0.005) and counts["joycaption"] == pytest.approx(8.48, abs=0.02)
    assert model.config.vision_feature_layer == -2 and model.config.text_config.num_key_value_heads == 8


def test_steady_rate_leaves_out_the_start():
    # first step 5 s (start-up, kernel choice), then 0.1 s a step: tqdm (smoothing=0) shows n / elapsed
    elapsed = {n: 5.0 + 0.1 * (n - 1) for n in range(1, 41)}
    text = "".join(f"\rsteps: {n * 100 // 40:3d}%|##| {n}/40 [00:05<00:01, {n / elapsed[n]:5.2f}it/s, avr_loss=0.1]"
                   for n in range(1, 41))
    rate, a, b, total = gpu_check.steady_rate(gpu_check.bar_points(text))
    assert (a, b, total) == (10, 40, 40) and rate == pytest.approx(10.0, rel=2e-3)
    slow = "steps:  50%|#| 2/4 [00:20<00:20, 10.00s/it]\rsteps: 100%|#| 4/4 [00:40<00:00, 10.00s/it]"
    assert gpu_check.steady_rate(gpu_check.bar_points(slow))[0] == pytest.approx(0.1)


def test_budget_and_engine_errors(tmp_path):
    with pytest.raises(gpu_check.Skip, match="time budget: 0 s left"):
        gpu_check.Budget(0).grant(10)
    assert gpu_check.Budget(1e12).grant(10) == (10, False)
    log = tmp_path / "log"
    log.write_text("Traceback (most recent call last):\n  File x\nValueError: persistent_workers option needs num_workers > 0\n"
                   "Traceback (most recent call last):\nsubprocess.CalledProcessError: Command '[...]' returned non-zero exit status 1.\n")
    assert gpu_check.last_error(log) == "ValueError: persistent_workers option needs num_workers > 0"


def test_overlay_venv_puts_its_wheels_before_the_machines_packages(tmp_path):
    """What the GPU set-up does for each engine: a venv of the machine's python whose own wheels win, with the
    machine's site-packages (torch ...) still importable after them. Here the 'machine' is this test's python."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    dist = "tomli_w-9.9.9"
    with zipfile.ZipFile(wheels / f"{dist}-py3-none-any.whl", "w") as z:
        z.writestr("tomli_w/__init__.py", "__version__ = '9.9.9'\n")
        z.writestr(f"{dist}.dist-info/METADATA", "Metadata-Version: 2.1\nName: tomli_w\nVersion: 9.9.9\n")
        z.writestr(f"{dist}.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{dist}.dist-info/RECORD", "")
    env = {**os.environ, "PYTHON": sys.executable}
    r = subprocess.run(["bash", str(SCRIPT), "--overlay", str(tmp_path / "venv"), str(wheels)], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    probe = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-c", "import tomli_w, numpy; print(tomli_w.__version__)"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "9.9.9", probe.stderr
