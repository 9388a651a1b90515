"""TrainingConfig validation, schema, presets, kohya TOML import and the step calculator."""
from __future__ import annotations

import io

import pytest

from lora_nb.config import TrainingConfig, steps
from lora_nb.config.buckets import bucket_counts, make_bucket_resolutions, select_bucket
from lora_nb.config.model import Subset
from lora_nb.config.stepcalc import count_steps
from lora_nb.errors import ConfigError, InvalidName, NotFound

BASE = dict(dataset="alice", pretrained_model_name_or_path="/m/sd15.safetensors")


@pytest.mark.parametrize("change, field, words", [
    (dict(network_dim=0), "network_dim", "greater than or equal to 1"),
    (dict(learning_rate=-1), "learning_rate", "greater than 0"),
    (dict(resolution="big"), "resolution", "'1024' or 'width,height'"),
    (dict(resolution="32"), "resolution", "between 64 and 8192"),
    (dict(optimizer_type="Adamm"), "optimizer_type", "Unknown optimizer"),
    (dict(lr_scheduler="cosine_annealing"), "lr_scheduler", "Unknown schedule"),
    (dict(output_name="../x"), "output_name", "not a valid output name"),
    (dict(network_args=["conv_dim"]), "network_args", "is not key=value"),
    (dict(dataset="../etc"), "dataset", "not a valid dataset name"),
    (dict(no_such_option=1), "no_such_option", "not a setting lora-nb knows"),
])
def test_field_errors_name_the_field_in_plain_words(change, field, words):
    with pytest.raises(ConfigError) as info:
        TrainingConfig(**{**BASE, **change})
    assert words in info.value.fields[field]
    assert field in str(info.value) and info.value.fix
    assert words in TrainingConfig.check({**BASE, **change})[field]


@pytest.mark.parametrize("change, words", [
    (dict(model_family="flux"), "set clip_l, t5xxl, ae"),
    (dict(model_family="sd3", clip_l="/a"), "set clip_g, t5xxl"),
    (dict(lr_scheduler="constant", lr_warmup_steps=100), "constant schedule takes no warm-up"),
    (dict(min_bucket_reso=1024), "min_bucket_reso (1024) is larger than the resolution"),
    (dict(model_family="sdxl", cache_text_encoder_outputs=True), "needs 'train U-Net/DiT only'"),
    (dict(full_bf16=True, mixed_precision="fp16"), "full_bf16 needs mixed precision bf16"),
    (dict(max_train_epochs=None), "Set the number of epochs"),
    (dict(engine="ai-toolkit", model_family="sd2"), "flux, sd15 and sdxl families"),
    (dict(bucket_reso_steps=32), "multiple of 64"),
])
def test_cross_field_checks(change, words):
    with pytest.raises(ConfigError) as info:
        TrainingConfig(**{**BASE, **change})
    assert words in str(info.value)
    assert words in TrainingConfig.check({**BASE, **change})[""]


def test_assignment_is_validated_and_leaves_the_config_unchanged():
    cfg = TrainingConfig(**BASE)
    with pytest.raises(ConfigError, match="network_dim"):
        cfg.network_dim = -3
    assert cfg.network_dim == 16
    cfg.resolution = (1024, 768)
    assert cfg.resolution == "1024,768" and cfg.resolution_wh == (1024, 768)


def test_schema_has_sections_labels_and_families():
    schema = TrainingConfig.ui_schema()
    props = schema["properties"]
    assert props["network_dim"]["section"] == "basic" and props["network_dim"]["label"] == "Rank (dim)"
    assert props["max_grad_norm"]["section"] == "advanced"
    assert props["ae"]["families"] == ["flux"]
    assert all("section" in p and "label" in p for p in props.values())


def test_presets_round_trip_and_builtins(ws):
    assert {"sd15-8gb", "sdxl-24gb", "flux-12gb", "sd3-16gb"} <= set(ws.presets.list())
    for name in ws.presets.list():  # every built-in is a valid config
        cfg = ws.presets.load(name, dataset="alice", pretrained_model_name_or_path="/m", clip_l="/c", clip_g="/g", t5xxl="/t", ae="/a")
        assert cfg.model_family == name.split("-")[0]
    cfg = TrainingConfig(**BASE, network_dim=24, sample_prompts=["a cat"])
    ws.presets.save("mine", cfg)
    assert ws.presets.load("mine") == cfg
    assert "mine" in ws.presets.list()
    with pytest.raises(InvalidName, match="built-in"):
        ws.presets.save("sdxl-24gb", cfg)
    with pytest.raises(InvalidName):
        ws.presets.save("../evil", cfg)
    ws.presets.delete("mine")
    with pytest.raises(NotFound):
        ws.presets.load("mine")
    (ws.presets_dir / "broken.toml").write_text("x = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        ws.presets.load("broken")


def test_import_the_fixture_kohya_toml(fixtures_dir):
    from lora_nb.config.kohya_import import read_kohya_toml

    cfg, unknown = read_kohya_toml(TrainingConfig, fixtures_dir / "kohya" / "configs" / "train.toml")
    assert (cfg.network_dim, cfg.network_alpha, cfg.max_train_epochs, cfg.learning_rate, cfg.output_name) == (4, 1.0, 2, 1e-4, "demo")
    assert cfg.resolution == "64" and cfg.optimizer_type == "AdamW" and cfg.seed == 42
    assert unknown == []
    with pytest.raises(ConfigError, match="not valid TOML"):
        TrainingConfig.from_kohya_toml(fixtures_dir / "kohya" / "configs" / "train_syntax_error.toml")


def test_buckets_match_kohya_facts():
    resos = make_bucket_resolutions((512, 512), 256, 1024, 64)
    assert (512, 512) in resos and (256, 1024) in resos and (1024, 256) in resos
    assert all(w * h <= 512 * 512 and w % 64 == 0 and h % 64 == 0 for w, h in resos)
    assert select_bucket(64, 64, (64, 64), 64, 128, 64) == (64, 64)
    assert select_bucket(3000, 1000, (512, 512), bucket_no_upscale=True) == (768, 256)
    assert bucket_counts([(10, 10), (0, 5)], (512, 512)) == {(512, 512): 1}
    assert bucket_counts([(800, 600)] * 3, 512, enable_bucket=False) == {(512, 512): 3}


def test_steps_worked_example_from_engines_md():
    est = count_steps([((1024, 1024), 120), ((1152, 896), 50), ((896, 1152), 30)], batch_size=4, epochs=10, grad_accum=2, processes=2)
    assert (est.batches_per_epoch, est.steps_per_epoch, est.total_steps) == (51, 13, 130)


def test_steps_for_the_fixture_run_equal_what_kohya_printed(ws, fixtures_dir):
    """run1: 4 images x 5 repeats at 64 px, batch 1, 2 epochs -> kohya printed 20 batches/epoch, 40 steps."""
    from PIL import Image

    ds = ws.datasets.create("alice")
    imgs = []
    for i in range(4):
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (i * 50, 0, 0)).save(buf, "PNG")
        imgs.append((f"{i}.png", buf.getvalue()))
    ds.add_images(imgs, subset="5_alice")
    cfg = TrainingConfig(dataset="alice", pretrained_model_name_or_path="/m", resolution="64", min_bucket_reso=64,
                         max_bucket_reso=128, train_batch_size=1, max_train_epochs=2)
    est = steps(cfg, ws)
    printed = (fixtures_dir / "kohya" / "captures" / "run1.stdout").read_text(encoding="utf-8", errors="replace")
    assert f"num batches per epoch / 1epochのバッチ数: {est.batches_per_epoch}" in printed
    assert f"total optimization steps / 学習ステップ数: {est.total_steps}" in printed
    assert est.exact and est.num_train_images == 20 and est.buckets == {(64, 64): 20}


def test_steps_with_reg_images_and_mixed_buckets(ws):
    from PIL import Image

    ds = ws.datasets.create("mix")

    def png(w, h):
        buf = io.BytesIO()
        Image.new("RGB", (w, h)).save(buf, "PNG")
        return buf.getvalue()

    ds.add_images([("a.png", png(512, 512)), ("b.png", png(768, 512)), ("c.png", png(512, 768))], subset="3_x")
    ds.add_images([("r.png", png(512, 512))], subset="1_reg")
    est = steps(TrainingConfig(dataset="mix", pretrained_model_name_or_path="/m", train_batch_size=2, max_train_epochs=1), ws)
    # 1_reg is not a reg folder by name convention here, so: 3 images x3 + 1 image x1 in three buckets
    assert est.num_train_images == 10
    assert est.batches_per_epoch == sum(-(-n // 2) for n in est.buckets.values())


def test_steps_without_the_dataset_is_an_estimate(ws):
    est = steps(TrainingConfig(**BASE), ws)
    assert not est.exact and est.total_steps == 0 and est.notes


def test_preset_keeps_fields_set_to_none(ws):
    from lora_nb.config import TrainingConfig as TC

    cfg = TC(dataset="alice", max_train_epochs=None, max_train_steps=400, save_every_n_epochs=None)
    ws.presets.save("steps-only", cfg)
    back = ws.presets.load("steps-only")
    assert (back.max_train_epochs, back.max_train_steps, back.save_every_n_epochs) == (None, 400, None)
    assert ws.presets.raw("steps-only")["max_train_epochs"] is None


def test_steps_with_never_upscale_and_a_sliver_image_notes_it_instead_of_crashing(ws):
    """A 2000x20 strip rounds a bucket side to 0 under 'never upscale' (sd-scripts divides by it): the live
    step count leaves it out and says why; the other images are counted. Also an all-sliver reg set ends."""
    from PIL import Image

    def png(w, h):
        buf = io.BytesIO()
        Image.new("RGB", (w, h)).save(buf, "PNG")
        return buf.getvalue()

    ds = ws.datasets.create("strip")
    ds.add_images([("ok.png", png(512, 512)), ("strip.png", png(2000, 20))], subset="2_x")
    cfg = TrainingConfig(dataset="strip", pretrained_model_name_or_path="/m", train_batch_size=1, max_train_epochs=1,
                         bucket_no_upscale=True)
    est = steps(cfg, ws)
    assert est.num_train_images == 2 and est.total_steps == 2
    assert any("2000x20" in n and "never upscale" in n for n in est.notes)
    sub = [Subset(dataset="strip", folder="2_x", num_repeats=1), Subset(dataset="strip", folder="2_x", num_repeats=1, is_reg=True)]
    ds.add_images([("strip2.png", png(20, 2000))], subset="1_r")
    reg_only_strips = [Subset(dataset="strip", folder="2_x", num_repeats=1), Subset(dataset="strip", folder="1_r", num_repeats=1, is_reg=True)]
    for dataset in (sub, reg_only_strips):
        est = steps(cfg.model_copy(update={"dataset": dataset}), ws)   # ends (no endless reg loop)
        assert est.num_train_images == 1
