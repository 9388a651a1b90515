"""Multi-GPU sd-scripts runs (issue 19): the `accelerate launch` line lora-nb renders, and what its processes see.

- the argv for 1, 2 and 4 processes: ``--multi_gpu`` from 2 up, ``--num_processes N``, the run's mixed precision;
  no ``--gpu_ids`` (the job's CUDA_VISIBLE_DEVICES, from its GPU slots, already names the devices, and
  accelerate's default 'all' keeps it) and no ``--main_process_port`` (accelerate then lets torchrun pick a
  free port on one machine, so two multi-GPU runs on one box do not meet on 29500; ENGINES.md / docs/engines.md);
- the python launcher (one process) refuses several GPUs before anything is written or queued;
- the devices a queued run holds reach the launcher process as CUDA_VISIBLE_DEVICES (+ CUDA_DEVICE_ORDER).

The launcher process here is a STAND-IN ``accelerate`` package (put first on PYTHONPATH) whose
``accelerate.commands.launch`` writes down its argv and environment and exits: a real process under a real
supervisor, so what is asserted is what the real launcher would be started with. That the real accelerate parser
accepts these lines, and a real 2-process run on CPU, are in tests/engines/real/test_kohya_real_configs.py and
tests/engines/test_engines_real_kohya.py.
"""
from __future__ import annotations

import json
import sys

import pytest

from lora_nb.engines import get_engine
from lora_nb.engines.kohya import KohyaEngine
from lora_nb.errors import EngineError
from support import wait_for
from test_launch import cfg_for  # the stand-in launch tests' config

RECORDER = """
import json, os, sys
with open(os.environ["LNB_LAUNCH_RECORD"], "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "cvd": os.environ.get("CUDA_VISIBLE_DEVICES"),
                        "order": os.environ.get("CUDA_DEVICE_ORDER")}) + "\\n")
"""


@pytest.fixture
def accelerate_ws(ws, dataset, standin_kohya):
    ws.settings.set("kohya_launcher", "accelerate")
    return ws


@pytest.mark.parametrize("n, precision", [(2, "bf16"), (4, "fp16"), (2, "no")])
def test_the_accelerate_line_for_several_processes(accelerate_ws, model_file, n, precision):
    ws = accelerate_ws
    engine = get_engine("kohya", ws)
    run_dir = ws.runs_dir / f"r{n}{precision}"
    plan = engine.prepare(cfg_for(model_file, num_processes=n, mixed_precision=precision), run_dir)
    assert plan.argv == [str(engine.python), "-m", "accelerate.commands.launch", "--num_cpu_threads_per_process", "1",
                         "--mixed_precision", precision, "--num_processes", str(n), "--multi_gpu",
                         str(engine.folder / "train_network.py"), "--config_file", str(run_dir / "train.toml")]
    assert not any(a.startswith(("--gpu_ids", "--main_process_port", "--num_machines")) for a in plan.argv)


def test_one_process_is_not_multi_gpu(accelerate_ws, model_file):
    plan = get_engine("kohya", accelerate_ws).prepare(cfg_for(model_file, mixed_precision="bf16"), accelerate_ws.runs_dir / "one")
    assert plan.argv[3:9] == ["--num_cpu_threads_per_process", "1", "--mixed_precision", "bf16", "--num_processes", "1"]
    assert "--multi_gpu" not in plan.argv


@pytest.mark.parametrize("n", [2, 4])
def test_the_python_launcher_refuses_several_gpus_and_leaves_nothing(ws, dataset, model_file, standin_kohya, n):
    assert ws.settings.get("kohya_launcher") == "python"
    ws.jobs.set_gpu_slots(list(range(n)))
    with pytest.raises(EngineError, match=f"{n} GPUs need the accelerate launcher; the kohya_launcher setting is 'python'") as e:
        ws.jobs.submit_training(cfg_for(model_file, num_processes=n))
    assert "kohya_launcher', 'accelerate'" in e.value.fix
    assert list(ws.runs_dir.iterdir()) == [] and ws.jobs.list() == []
    with pytest.raises(EngineError, match="need the accelerate launcher"):
        get_engine("kohya", ws).prepare(cfg_for(model_file, num_processes=n), ws.runs_dir / "direct")
    assert not (ws.runs_dir / "direct").exists()


def test_held_slots_reach_the_launcher_as_cuda_visible_devices(accelerate_ws, model_file, tmp_path, monkeypatch):
    """Slots on devices 1, 3, 0, 2: a 2-process run takes the first two free (1 and 3), a 4-process run queued behind
    it waits for all four and then gets every one; each launcher sees exactly its devices, in PCI bus order."""
    ws = accelerate_ws
    pkg = tmp_path / "standin_accelerate" / "accelerate" / "commands"
    pkg.mkdir(parents=True)
    (pkg.parent / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "launch.py").write_text(RECORDER)
    record = tmp_path / "launches.jsonl"
    monkeypatch.setenv("PYTHONPATH", str(pkg.parents[1]))
    monkeypatch.setenv("LNB_LAUNCH_RECORD", str(record))
    monkeypatch.setattr(KohyaEngine, "modules", lambda self: ())   # the engine check would look for the real accelerate
    ws.jobs.set_gpu_slots([1, 3, 0, 2])
    two = ws.jobs.submit_training(cfg_for(model_file, num_processes=2, output_name="two"))
    four = ws.jobs.submit_training(cfg_for(model_file, num_processes=4, output_name="four"))
    for job in (two, four):
        job.wait(120)      # the stand-in launcher trains nothing, so the run ends failed: not what is asserted here
    lines = wait_for(lambda: record.is_file() and len(record.read_text().splitlines()) == 2 and record.read_text().splitlines(),
                     timeout=30, what="both launches recorded")
    seen = {r["argv"][r["argv"].index("--num_processes") + 1]: r for r in map(json.loads, lines)}
    assert seen["2"]["cvd"] == "1,3" and seen["4"]["cvd"] == "1,3,0,2"
    assert seen["2"]["order"] == seen["4"]["order"] == "PCI_BUS_ID"
    assert (two.snapshot().devices, four.snapshot().devices) == ([1, 3], [1, 3, 0, 2])
    for r, job in ((seen["2"], two), (seen["4"], four)):
        assert r["argv"] == job.snapshot().argv[3:] and "--multi_gpu" in r["argv"]
    assert sys.executable == two.snapshot().argv[0]
