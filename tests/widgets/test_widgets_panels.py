"""TaggingPanel (a real tiny ONNX tagger run by onnxruntime in a job), LoraPanel (real safetensors),
ModelsPanel, SystemHeader and the Dashboard's wiring."""
from __future__ import annotations

import builtins
import json

import numpy as np

from lora_nb.progress.events import JobStatus
from lora_nb.widgets import Dashboard, LoraPanel, ModelsPanel, SystemHeader, TaggingPanel
from support import wait_for


def test_tagging_runs_a_job_and_reports_progress(ws, tmp_path):
    from lora_nb.demo import make_dataset
    from lora_nb.tagging.tiny import build_tiny_tagger

    ds = make_dataset(ws, name="raw", n=6, size=(64, 64), captions=False)
    model = build_tiny_tagger(tmp_path / "tagger")
    done = []
    p = TaggingPanel(ws, dataset="raw", on_done=done.append)
    p.model.value = str(model)
    p.general.value = 0.0
    p.trigger.value = "mytrig"
    p.existing.value = "skip"
    p.start_button.click()
    assert p.banner.kind == "info", p.banner.text
    assert p.job.status is not None and not p.stop_button.disabled
    assert p.job.wait(120) is JobStatus.SUCCEEDED, p.job.error
    wait_for(lambda: done, timeout=15)
    assert p.line.bar.value == 1.0 and "succeeded" in p.line.label.value and p.stop_button.disabled
    caps = [i.caption for i in ds.images()]
    assert all(c and c.startswith("mytrig") for c in caps)


def test_tagging_bad_options_and_missing_module(ws, monkeypatch, tmp_path):
    ws.datasets.create("d")
    p = TaggingPanel(ws)
    p.model.value = str(tmp_path / "no-such-tagger")
    p.start_button.click()
    assert p.banner.kind == "error" and "\n" not in p.banner.text and ws.jobs.list() == []
    real_import = builtins.__import__

    def broken(name, *a, **kw):
        if name.startswith("lora_nb.tagging") or (name == "" and a and a[2] and "tagging" in a[2]):
            raise ImportError("onnxruntime is not installed")
        return real_import(name, *a, **kw)
    monkeypatch.setattr(builtins, "__import__", broken)
    q = TaggingPanel(ws)
    assert q.start_button.disabled and q.banner.text == "Tagging is unavailable: onnxruntime is not installed."


def _lora(path, rank=8):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    t = {f"{name}.lora_down.weight": rng.normal(0, 0.1, (rank, 320)).astype(np.float32),
         f"{name}.lora_up.weight": rng.normal(0, 0.1, (320, rank)).astype(np.float32),
         f"{name}.alpha": np.array(4.0, np.float32)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(t, str(path), metadata={"ss_network_dim": str(rank), "ss_network_alpha": "4.0",
                                      "ss_tag_frequency": json.dumps({"10_alice": {"alice": 9, "smile": 2}})})
    return path


def test_lora_panel_lists_verifies_and_resizes(ws):
    _lora(ws.loras_dir / "alice.safetensors")
    p = LoraPanel(ws)
    assert p.select.value.endswith("alice.safetensors")
    assert "alice" in p.details.value and "rank" in p.details.value
    p.verify_button.click()
    p.runner.idle()
    assert "OK" in p.verify_view.value
    p.rank.value = 4
    p.resize_button.click()
    assert p.banner.kind == "info", p.banner.text
    job = p.resize_line.job
    assert job.wait(120) is JobStatus.SUCCEEDED, job.error
    wait_for(lambda: any("r4" in v for _, v in p.select.options), timeout=15)
    p.repo.value = ""
    p.publish_button.click()
    assert p.banner.kind == "error" and "Hub repository" in p.banner.text


def test_lora_panel_without_files_and_with_a_broken_module(ws, monkeypatch):
    p = LoraPanel(ws)
    assert p.select.options == () and "No LoRA files yet" in p.details.value
    p.verify_button.click()
    assert p.banner.text == "No LoRA file is selected. Choose a LoRA file in the list first."
    import lora_nb.lora as L

    monkeypatch.setitem(L._WHERE, "list_loras", ".does_not_exist")
    q = LoraPanel(ws)
    assert q.L is None and q.banner.text.startswith("LoRA tools are unavailable") and q.resize_button.disabled


def test_models_panel(ws):
    (ws.models_dir / "x.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    p = ModelsPanel(ws)
    p.runner.idle()
    assert "x.safetensors" in p.table.value
    p.family.value = "sdxl"
    assert p.starter.options and p.source.value.startswith("hf:")
    p.source.value = "ftp://nowhere/file"
    p.download_button.click()
    assert p.banner.kind == "error" and "\n" not in p.banner.text and ws.jobs.list() == []


def test_header_shows_system_facts(ws):
    h = SystemHeader(ws, interval=0)
    assert "RAM" in h.value and "free" in h.value and str(ws.root) in h.value and h.facts["ram_total"] > 0


def test_dashboard_wires_the_panels(ws, monkeypatch):
    d = Dashboard(ws, live=False)
    titles = [d.tabs.get_title(i) for i in range(len(d.tabs.children))]
    assert [t for t in titles if t != "Runs"] == ["Datasets", "Tagging", "Captions", "Training", "Jobs", "LoRA tools", "Models"]
    d.datasets.name_box.value = "fresh"
    d.datasets.create_button.click()
    assert d.tagging.dataset.value == "fresh" and d.captions.select.value == "fresh"
    assert d.training.fields["dataset"].widget.value == "fresh"
    from support import standin

    job = ws.jobs.submit_command(standin("--steps", "3", "--delay", "0.01"), name="x", parser="kohya", kind="training", uses_gpu=False)
    d._submitted(job)
    assert d.tabs.selected_index == 4 and d.jobs.monitor.job.id == job.id
    assert job.wait(60) is JobStatus.SUCCEEDED
    d.close()
