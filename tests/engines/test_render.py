"""Rendered sd-scripts files: golden files per family, only keys the engine accepts, strict dataset types (ENGINES.md Part C)."""
from __future__ import annotations

from pathlib import Path

import pytest
import toml

from golden_configs import CONFIGS
from lora_nb.config import TrainingConfig
from lora_nb.engines.kohya import SCRIPTS, accepted_keys, render_dataset, render_training

GOLDEN = Path(__file__).resolve().parent / "golden"


def rendered(name):
    cfg = CONFIGS[name]
    train = render_training(cfg, Path("/RUN/dataset.toml"), Path("/RUN/output"), Path("/RUN/logs"),
                            Path("/RUN/sample_prompts.txt") if cfg.sample_prompts else None)
    ds = render_dataset(cfg, [{"image_dir": "/WS/datasets/alice/5_alice", "num_repeats": 5}])
    return cfg, train, ds


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_golden_files(name):
    import tomli_w

    _, train, ds = rendered(name)
    assert tomli_w.dumps(train) == (GOLDEN / f"{name}.train.toml").read_text()
    assert tomli_w.dumps(ds) == (GOLDEN / f"{name}.dataset.toml").read_text()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_key_is_one_the_script_accepts_and_parses_with_sd_scripts_toml_reader(name):
    cfg, train, _ = rendered(name)
    text = (GOLDEN / f"{name}.train.toml").read_text()
    flat = {}
    for value in toml.loads(text).values():  # sd-scripts reads with `toml` 0.10 and flattens one level
        flat.update(value)
    assert set(flat) <= accepted_keys(cfg.model_family)
    assert flat["network_module"] == {"sd15": "networks.lora", "sdxl": "networks.lora", "flux": "networks.lora_flux",
                                      "sd3": "networks.lora_sd3"}[cfg.model_family] or cfg.network_type != "lora"
    assert "resolution" not in flat or isinstance(flat["resolution"], str)   # Part C 2
    for key in ("learning_rate", "network_alpha"):
        assert isinstance(flat[key], float)
    if flat.get("lr_scheduler") == "constant":
        assert "lr_warmup_steps" not in flat
    assert all(isinstance(v, bool) for k, v in flat.items() if k in ("gradient_checkpointing", "cache_latents", "sdpa"))


def test_dataset_toml_types_are_exact():
    _, _, ds = rendered("sd15")
    data = toml.loads((GOLDEN / "sd15.dataset.toml").read_text())
    assert data == ds
    g, d, s = data["general"], data["datasets"][0], data["datasets"][0]["subsets"][0]
    assert g["caption_extension"] == ".txt"                                  # Part C 4
    assert type(g["caption_dropout_rate"]) is float and type(g["keep_tokens"]) is int
    assert d["resolution"] == [512, 512] and all(type(x) is int for x in d["resolution"])
    assert set(g) <= {"caption_extension", "shuffle_caption", "keep_tokens", "caption_dropout_rate", "caption_tag_dropout_rate", "flip_aug"}
    assert set(d) <= {"resolution", "batch_size", "enable_bucket", "min_bucket_reso", "max_bucket_reso", "bucket_reso_steps",
                      "bucket_no_upscale", "subsets"}
    assert set(s) <= {"image_dir", "num_repeats", "is_reg", "class_tokens"}


def test_family_specific_keys():
    _, sd3, _ = rendered("sd3")
    flat = {k: v for sec in sd3.values() for k, v in sec.items()}
    assert flat["training_shift"] == 3.0 and "discrete_flow_shift" not in flat   # SD3 names it training_shift
    _, locon, _ = rendered("sd15_locon")
    net = locon["network"]
    assert net["network_module"] == "lycoris.kohya" and net["network_args"][:1] == ["algo=locon"]
    assert "conv_dim=4" in net["network_args"] and locon["optimizer"]["lr_warmup_steps"] == 50


def test_scripts_per_family():
    assert SCRIPTS["sdxl"][:2] == ("sdxl_train_network.py", "networks.lora")
    assert SCRIPTS["flux"][:2] == ("flux_train_network.py", "networks.lora_flux")
    assert SCRIPTS["sd3"][:2] == ("sd3_train_network.py", "networks.lora_sd3")


def test_engine_options_pass_through_and_are_checked():
    from lora_nb.errors import ConfigError

    cfg = CONFIGS["sd15"].model_copy(update={"engine_options": {"tokenizer_cache_dir": "/opt/tok", "max_token_length": 150}})
    train = render_training(cfg, Path("/RUN/dataset.toml"), Path("/RUN/output"), Path("/RUN/logs"), None)
    flat = {k: v for section in train.values() for k, v in section.items()}
    assert flat["tokenizer_cache_dir"] == "/opt/tok" and flat["max_token_length"] == 150
    for bad, message in (({"no_such_option": 1}, "is not an option of train_network.py"), ({"output_dir": "/x"}, "sets 'output_dir' itself")):
        with pytest.raises(ConfigError, match=message):
            render_training(CONFIGS["sd15"].model_copy(update={"engine_options": bad}), Path("/d"), Path("/o"), Path("/l"), None)
    with pytest.raises(ConfigError, match="looks like a secret"):
        TrainingConfig(dataset="x", engine_options={"hub_token": "hf_abcdefghijklmnopqrstuvwx"})
    assert "engine_options" not in TrainingConfig.ui_schema()["properties"]
