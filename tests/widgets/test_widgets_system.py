"""lora_nb.system: facts for the header. nvidia-smi is replaced by a small script on PATH (a real
subprocess printing what nvidia-smi prints for --query-gpu ... --format=csv,noheader,nounits)."""
from __future__ import annotations

import os
import stat

from lora_nb import system


def _fake_smi(folder, body: str):
    exe = folder / "nvidia-smi"
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return folder


def test_gpu_facts_from_nvidia_smi(tmp_path, monkeypatch):
    _fake_smi(tmp_path, "echo 'NVIDIA H100 80GB HBM3, 1234, 81559, 7'\necho 'NVIDIA H100 80GB HBM3, 10, 81559, 0'\n")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    facts = system.info(tmp_path)
    assert [g["name"] for g in facts["gpus"]] == ["NVIDIA H100 80GB HBM3"] * 2
    assert facts["gpus"][0]["memory_used"] == 1234 and facts["gpus"][0]["memory_total"] == 81559
    line = system.summary(facts)
    assert line.startswith("NVIDIA H100 80GB HBM3 1.2/79.6 GiB") and "RAM" in line and "free" in line


def test_no_gpu_and_broken_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))          # no nvidia-smi at all
    assert system.gpus() == []
    _fake_smi(tmp_path, "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'\nexit 9\n")
    facts = system.info(tmp_path)
    assert facts["gpus"] == [] and system.summary(facts).startswith("no GPU")


def test_disk_is_measured_where_the_workspace_lives(tmp_path):
    import shutil

    facts = system.info(tmp_path / "not" / "yet" / "created")
    assert abs(facts["disk_free"] - shutil.disk_usage(tmp_path).free) < 64 << 20
    assert facts["ram_total"] >= facts["ram_used"] > 0
