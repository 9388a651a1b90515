"""ws.runs (lora_nb.jobs.history) and `lora-nb runs`: history and comparison of REAL finished runs.

The runs are made by the STAND-IN sd-scripts (tests/engines/fake_sdscripts: replays a recorded real
run's output through the real job system); sample images are added as the parser would report them
(the stand-in writes none), named the way sd-scripts names them.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lora_nb.errors import ConfigError
from lora_nb.jobs import records
from lora_nb.jobs.history import config_diff, overlay_svg, sample_step, smooth
from lora_nb.progress.events import JobStatus

from test_launch import cfg_for


def _add_sample(ws, job, step: int) -> str:
    path = job.run_dir / "output" / "sample" / f"{job.name}_{step:06d}_00_20261202120000.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    with ws.store.transaction() as c:
        records.add_event(c, job.id, "artifact", {"path": str(path), "kind": "sample"})
    return str(path)


@pytest.fixture
def two_runs(ws, dataset, model_file, standin_kohya, monkeypatch):
    monkeypatch.setenv("LORA_NB_STANDIN_SPEED", "0.01")
    a = ws.jobs.submit_training(cfg_for(model_file, output_name="alpha", network_dim=16))
    b = ws.jobs.submit_training(cfg_for(model_file, output_name="beta", network_dim=8, learning_rate=2e-4))
    assert a.wait(120) is JobStatus.SUCCEEDED, a.error
    assert b.wait(120) is JobStatus.SUCCEEDED, b.error
    for step in (20, 40):
        _add_sample(ws, a, step)
    _add_sample(ws, b, 40)
    return a, b


def test_history_rows_search_filter_and_sort(ws, two_runs):
    a, b = two_runs
    ws.jobs.submit_command([sys.executable, "-c", "pass"], name="not-a-run").wait(30)
    rows = ws.runs.history()
    assert [r.name for r in rows] == ["beta", "alpha"]          # newest first; command jobs left out
    r = rows[1]
    assert (r.status, r.family, r.engine, r.steps, r.total_steps) == ("succeeded", "sd15", "kohya", 40, 40)
    assert r.final_loss == pytest.approx(1.07) and r.duration and r.duration > 0
    assert [p.rsplit("/", 1)[1] for p in r.loras] == ["alpha.safetensors"]
    assert [x.name for x in ws.runs.history(search="ALPHA")] == ["alpha"]
    assert [x.name for x in ws.runs.history(search="beta.safetensors kohya")] == ["beta"]
    assert ws.runs.history(search="nothing-like-it") == []
    assert ws.runs.history(status="failed") == [] and len(ws.runs.history(status=["succeeded"])) == 2
    assert ws.runs.history(family="flux") == []
    assert [x.name for x in ws.runs.history(sort="name", descending=False)] == ["alpha", "beta"]
    with pytest.raises(ConfigError, match="cannot be sorted by 'colour'.*Use one of: created"):
        ws.runs.history(sort="colour")


def test_compare_two_runs(ws, two_runs):
    a, b = two_runs
    cmp = ws.runs.compare([a.id, b.id])
    assert set(cmp.config_diff) >= {"network_dim", "learning_rate", "output_name"}
    assert cmp.config_diff["network_dim"] == {a.id: 16, b.id: 8}
    assert "resolution" not in cmp.config_diff                   # equal options are left out
    steps = [s for s, _ in cmp.losses[a.id]]
    assert steps == sorted(steps) and steps[-1] == 40 and len(steps) > 5
    svg = cmp.loss_svg()
    assert svg.count("<polyline") == 2 and "alpha" in svg and "beta" in svg
    assert cmp.common_sample_steps == [40] and sorted(cmp.samples) == [20, 40]
    with pytest.raises(ConfigError, match="Compare needs 2 to 4 different runs, not 1"):
        ws.runs.compare([a.id, a.id])
    cmd = ws.jobs.submit_command([sys.executable, "-c", "pass"], name="cmd")
    cmd.wait(30)
    with pytest.raises(ConfigError, match="is not a training run"):
        ws.runs.compare([a.id, cmd.id])


def test_cli_runs_list_and_compare(ws, two_runs, tmp_path):
    a, b = two_runs
    run = lambda *args: subprocess.run([sys.executable, "-m", "lora_nb.cli", "--workspace", str(ws.root), "runs", *args],
                                       capture_output=True, text=True, timeout=60)
    out = run("list", "--sort", "name", "--asc")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("ID") and "alpha" in lines[1] and "beta" in lines[2] and "40/40" in lines[1]
    data = json.loads(run("list", "--json", "beta").stdout)
    assert [d["name"] for d in data] == ["beta"]
    svg = tmp_path / "loss.svg"
    out = run("compare", a.id, b.id, "--svg", str(svg))
    assert out.returncode == 0, out.stderr
    assert "network_dim: 16  |  8" in out.stdout and "samples at the same steps: 40" in out.stdout
    assert svg.read_text().count("<polyline") == 2
    bad = run("compare", a.id)
    assert bad.returncode != 0 and "Compare needs 2 to 4 different runs" in bad.stderr


def test_pure_helpers():
    assert smooth([(1, 2.0), (2, 0.0)], 0.0) == [(1, 2.0), (2, 0.0)]
    with pytest.raises(ConfigError, match="smoothing weight must be at least 0 and below 1"):
        smooth([], 1.0)
    assert config_diff({"a": {"x": [1, 2]}, "b": {"x": [1, 2], "y": 1}}) == {"y": {"a": None, "b": 1}}
    assert sample_step("x/demo_e000002_00_20261202.png") is None   # named by epoch, not by step
    assert sample_step("x/notasample.png") is None
    assert "no loss values" in overlay_svg({"a": []})
