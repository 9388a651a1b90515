"""The extra engine options checker (lora_nb.engines.options_check): every problem is one sentence that names the
fix (closest option name, the type wanted, the lora-nb field to use), and what passes it renders."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_nb.config import TrainingConfig
from lora_nb.engines.aitoolkit import render_job
from lora_nb.engines.kohya import render_training
from lora_nb.engines.options_check import (AITK_FIELDS, check_engine_options, format_option_lines,
                                           parse_option_lines)


def test_kohya_unknown_name_gets_the_closest():
    msgs = check_engine_options("kohya", "sdxl", {"debiased_estimaton_loss": True, "zzzz": 1})
    assert msgs["debiased_estimaton_loss"] == ("sdxl_train_network.py has no option 'debiased_estimaton_loss'; "
                                               "did you mean 'debiased_estimation_loss'?")
    assert msgs["zzzz"] == "sdxl_train_network.py has no option 'zzzz'."


def test_kohya_family_decides_the_script():
    """An SDXL-only option is unknown to the SD 1.5 script and fine for SDXL's."""
    assert check_engine_options("kohya", "sdxl", {"cache_text_encoder_outputs_to_disk": True}) == {}
    assert check_engine_options("kohya", "flux", {"apply_t5_attn_mask": True}) == {}
    assert "has no option 'apply_t5_attn_mask'" in check_engine_options("kohya", "sd15", {"apply_t5_attn_mask": True})["apply_t5_attn_mask"]


@pytest.mark.parametrize("key, value, expected", [
    ("huber_c", "x", "huber_c of train_network.py must be a number, not 'x'."),
    ("debiased_estimation_loss", 1, "debiased_estimation_loss of train_network.py must be true or false, not 1."),
    ("lr_scheduler_args", "lr_end=1e-9", "lr_scheduler_args of train_network.py takes a list; write it as a list, e.g. ['lr_end=1e-9']."),
    ("loss_type", "l3", "'l3' is not a value loss_type of train_network.py accepts; use one of l1, l2, huber, smooth_l1."),
])
def test_kohya_types_and_choices_as_the_script_declares(key, value, expected):
    assert check_engine_options("kohya", "sd15", {key: value}) == {key: expected}


def test_kohya_fields_and_managed_options_name_what_to_use():
    msgs = check_engine_options("kohya", "sd15", {"learning_rate": 1e-3, "output_dir": "/x", "train_data_dir": "/d"})
    assert msgs["learning_rate"] == "lora-nb has a field for 'learning_rate': set 'Learning rate' (learning_rate) in the form instead."
    assert msgs["output_dir"] == "lora-nb sets 'output_dir' itself from the run folder; remove it here."
    assert msgs["train_data_dir"] == "lora-nb sets 'train_data_dir' itself from the Dataset field; remove it here."


def test_kohya_options_that_pass_render():
    """What the checker accepts, render_training accepts and writes with the same value."""
    opts = {"debiased_estimation_loss": True, "huber_c": 0.2, "loss_type": "huber", "lr_scheduler_args": ["lr_end=1e-9"]}
    assert check_engine_options("kohya", "sd15", opts) == {}
    cfg = TrainingConfig(model_family="sd15", dataset="a", pretrained_model_name_or_path="/m.safetensors", engine_options=opts)
    flat = {k: v for sec in render_training(cfg, Path("/d.toml"), Path("/o"), Path("/l"), None).values() for k, v in sec.items()}
    assert {k: flat[k] for k in opts} == opts


def test_aitoolkit_paths_keys_types_and_fields():
    msgs = check_engine_options("ai-toolkit", "flux", {
        "model.low_vrm": True, "model.low_vram": "yes", "train.lr": 1e-3, "optim.x": 1, "model": 1,
        "train.ema_config.use_ema": True, "train.steps": 10, "sample.guidance_scale": 3.5, "save.dtype.x": 1})
    assert msgs.pop("model.low_vrm") == "ai-toolkit's model section has no key 'low_vrm'; did you mean 'model.low_vram'?"
    assert msgs.pop("model.low_vram") == "model.low_vram must be true or false, not 'yes'."
    assert msgs.pop("train.lr") == "lora-nb writes 'train.lr' from 'Learning rate' (learning_rate); set that in the form instead."
    assert msgs.pop("train.steps").startswith("lora-nb writes 'train.steps' from 'Max steps' (max_train_steps)")
    assert msgs.pop("optim.x").startswith("'optim.x' is not a section.key path of ai-toolkit's job; start it with one of network")
    assert msgs.pop("model").startswith("'model' is not a section.key path")
    assert msgs.pop("save.dtype.x") == "save.dtype is a text, not a table; write 'save.dtype = value'."
    assert msgs == {}          # a table option (ema_config) takes sub-keys; guidance_scale takes any number


def test_aitoolkit_fields_are_what_render_job_writes():
    """Every path the checker reserves for a lora-nb field is one render_job writes (or reads from sample_prompts)."""
    cfg = TrainingConfig(engine="ai-toolkit", model_family="flux", dataset="a", pretrained_model_name_or_path="org/m",
                         max_train_epochs=None, max_train_steps=10, sample_prompts=["p"], sample_every_n_steps=5, conv_dim=4,
                         network_dropout=0.1, noise_offset=0.05, min_snr_gamma=5, optimizer_args=["weight_decay=0.01"])
    proc = render_job(cfg, [{"image_dir": "/d", "num_repeats": 1}], 10, None, Path("/o"), None)["config"]["process"][0]
    for path in AITK_FIELDS:
        section, key = path.split(".")
        assert key in proc[section] or path == "train.disable_sampling", path


def test_options_json_lists_the_config_classes_keys():
    data = json.loads((Path(__file__).resolve().parents[2] / "lora_nb" / "engines" / "aitoolkit_options.json").read_text())
    assert data["_source"].startswith("ai-toolkit 27a03a9")
    assert data["model"]["low_vram"] == "bool" and data["train"]["steps"] == "int" and data["save"]["save_every"] == "int"


def test_option_lines_round_trip_and_bad_lines():
    opts = {"model.low_vram": True, "huber_c": 0.2, "lr_scheduler_args": ["lr_end=1e-9"], "loss_type": "huber"}
    assert parse_option_lines(format_option_lines(opts)) == (opts, {})
    parsed, problems = parse_option_lines("# a comment\n\nloss_type = huber\nnoequals\nhuber_c =\nloss_type = l2\n")
    assert parsed == {"loss_type": "l2"}
    assert problems == {"line 4": "Line 4 is not KEY = VALUE.", "huber_c": "huber_c has no value; write huber_c = VALUE.",
                        "loss_type": "loss_type is given twice; keep one line."}
