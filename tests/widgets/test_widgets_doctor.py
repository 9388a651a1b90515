"""The dataset doctor in the Training panel (widgets/doctor.py): blocking findings beside Start, Start disabled
while they exist, a fix button per finding that applies it and checks again, the check off the kernel thread.
Real files: a truncated JPEG and a Windows-1252 caption in the generated demo dataset; Start on the STAND-IN sd-scripts."""
from __future__ import annotations

import io
import threading

import pytest

from lora_nb.errors import DatasetBlocked
from lora_nb.widgets import TrainingPanel
from widgets.doctor import DoctorBox, dataset_folders


def _truncated_jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.effect_noise((64, 64), 40).convert("RGB").save(buf, "JPEG")
    return buf.getvalue()[:300]


def _break(ds):
    sub = ds.path / "10_lnbdemo"
    (sub / "zz_broken.jpg").write_bytes(_truncated_jpeg())
    (sub / "zz_broken.txt").write_bytes(b"lnbdemo, broken")
    first = sorted(sub.glob("*.txt"))[0]
    first.write_bytes("lnbdemo, café".encode("cp1252"))
    return first


def _panel(ws, model_file, **kw):
    p = TrainingPanel(ws, dataset="demo", **kw)
    p.set_values(dict(pretrained_model_name_or_path=str(model_file), resolution="64", min_bucket_reso=64, max_bucket_reso=128,
                      max_train_epochs=1, output_name="demo", mixed_precision="no", optimizer_type="AdamW",
                      trigger_words=["lnbdemo"]))
    p.validate()
    p.runner.idle()
    p.doctor.idle()
    return p


def _buttons(box):
    return [c for row in box.rows.children for c in row.children if hasattr(c, "on_click")]


def test_findings_disable_start_and_each_fix_button_clears_its_finding(ws, demo_ds, model_file, standin_kohya, monkeypatch):
    caption = _break(demo_ds)
    p = _panel(ws, model_file)
    assert p.errors == {} and p.doctor.blocked and p.start_button.disabled
    assert p.doctor in p.children and "Start is disabled: the dataset has 2 problems" in p.doctor.status.value
    reasons = [row.children[0].value for row in p.doctor.rows.children]
    assert "1 image cannot be decoded (10_lnbdemo/zz_broken.jpg" in reasons[0] and "not UTF-8" in reasons[1]
    fix_exclude, fix_encoding = _buttons(p.doctor)
    assert (fix_exclude.description, fix_encoding.description) == ("Move 1 image to .lora-nb/excluded", "Re-encode 1 caption as UTF-8")
    fix_exclude.click()
    p.doctor.idle()
    assert "Moved 1 image" in p.doctor.message.value and [f.code for f in p.doctor.findings] == ["caption_encoding"]
    assert (demo_ds.meta_dir / "excluded" / "10_lnbdemo" / "zz_broken.jpg").is_file() and p.start_button.disabled
    _buttons(p.doctor)[0].click()
    p.doctor.idle()
    assert caption.read_bytes() == "lnbdemo, café".encode("utf-8")
    assert not p.doctor.blocked and p.doctor.rows.children == () and not p.start_button.disabled
    monkeypatch.setenv("LORA_NB_STANDIN_SPEED", "0.01")
    p.start_button.click()
    assert p.job is not None and p.job.kind == "training", p.banner.text
    p.job.stop(grace=2)


def test_a_launch_refused_at_start_shows_its_findings(ws, demo_ds, model_file, standin_kohya):
    p = _panel(ws, model_file)
    assert not p.doctor.blocked and not p.start_button.disabled
    _break(demo_ds)                                   # broken after the check: the launch itself refuses
    with pytest.raises(DatasetBlocked, match="cannot be decoded"):
        p.start()
    assert ws.jobs.list() == [] and p.doctor.blocked and p.start_button.disabled
    assert [b.description for b in _buttons(p.doctor)] == ["Move 1 image to .lora-nb/excluded", "Re-encode 1 caption as UTF-8"]
    p.start_button.click()                            # the button path shows the sentence beside Start
    assert p.start_notice.text.startswith("The run cannot start: dataset 'demo'") and p.start_notice.kind == "error"


def test_the_check_runs_off_the_kernel_thread_once_per_dataset_choice(ws, demo_ds, monkeypatch):
    from lora_nb.datasets import Dataset

    threads = []
    real = Dataset.doctor

    def spy(self, folders=None):
        threads.append(threading.current_thread().name)
        return real(self, folders)

    monkeypatch.setattr(Dataset, "doctor", spy)
    box = DoctorBox(ws)
    box.watch("demo"); box.idle()
    box.watch("demo"); box.idle()                     # unchanged: not checked again
    box.watch([{"dataset": "demo", "folder": "10_lnbdemo"}]); box.idle()
    box.recheck(); box.idle()
    assert len(threads) == 3 and all(t.startswith("lnb-doctor") for t in threads)
    assert threading.main_thread().name not in threads


def test_dataset_folders_reads_names_and_subsets():
    from lora_nb.config.model import Subset

    assert dataset_folders("a") == {"a": None} and dataset_folders("") == {} and dataset_folders(None) == {}
    assert dataset_folders([Subset(dataset="a", folder="1_x"), {"dataset": "a", "folder": ""}, {"dataset": "b"}]) == \
        {"a": {"1_x", ""}, "b": {""}}
