"""Subsets (TrainingConfig.dataset as a list): the per-subset options sd-scripts' dataset TOML takes (caption
extension, keep tokens, flip, random crop), validated with one sentence, rendered by both engines, counted by the
step calculator."""
from __future__ import annotations

import io
import tomllib
from pathlib import Path

import pytest
import tomli_w

from lora_nb.config import TrainingConfig, steps
from lora_nb.config.model import Subset
from lora_nb.engines.aitoolkit import render_job
from lora_nb.engines.kohya import SUBSET_KEYS, dataset_subsets, render_dataset
from lora_nb.errors import ConfigError


def png(w: int, h: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def two_folders(ws):
    ds = ws.datasets.create("mix")
    ds.add_images([("a.png", png(512, 512)), ("b.png", png(512, 512))], subset="3_alice")
    ds.add_images([("r.png", png(512, 512))], subset="1_reg")
    return ds


def cfg(subsets, **kw):
    return TrainingConfig(dataset=subsets, pretrained_model_name_or_path="/m.safetensors", max_train_epochs=1, **kw)


@pytest.mark.parametrize("change, words", [
    (dict(num_repeats=0), "dataset.0.num_repeats: Input should be greater than or equal to 1"),
    (dict(keep_tokens=-1), "keep_tokens: Input should be greater than or equal to 0"),
    (dict(caption_extension="t x t"), "dataset.0.caption_extension: Write a caption extension like .txt or .caption"),
    (dict(folder="../other"), "dataset.0.folder: The folder is a sub-folder inside the dataset"),
])
def test_bad_subset_values_are_one_sentence(change, words):
    with pytest.raises(ConfigError, match=words):
        cfg([{"dataset": "mix", **change}])


def test_caption_extension_gets_its_dot_and_empty_means_inherit():
    sub = cfg([{"dataset": "mix", "caption_extension": "caption"}, {"dataset": "mix", "caption_extension": ""}]).dataset
    assert (sub[0].caption_extension, sub[1].caption_extension) == (".caption", None)


def test_random_crop_with_cached_latents_is_refused():
    with pytest.raises(ConfigError, match="Random crop cannot be used with cached latents"):
        cfg([Subset(dataset="mix", random_crop=True)])
    assert cfg([Subset(dataset="mix", random_crop=True)], cache_latents=False).dataset[0].random_crop


def test_kohya_subset_tables_carry_the_overrides_with_exact_types(ws, two_folders):
    c = cfg([Subset(dataset="mix", folder="3_alice", num_repeats=4, caption_extension=".caption", keep_tokens=1, flip_aug=True),
             Subset(dataset="mix", folder="1_reg", is_reg=True, flip_aug=False, random_crop=True)], cache_latents=False)
    tables = dataset_subsets(c, ws)
    assert tables[0] == {"image_dir": str(two_folders.path / "3_alice"), "num_repeats": 4, "caption_extension": ".caption",
                         "keep_tokens": 1, "flip_aug": True}
    assert tables[1] == {"image_dir": str(two_folders.path / "1_reg"), "num_repeats": 1, "is_reg": True, "flip_aug": False,
                         "random_crop": True}
    for t in tables:                        # the types sd-scripts' voluptuous subset schema wants
        assert all(type(v) is SUBSET_KEYS[k] for k, v in t.items())
    back = tomllib.loads(tomli_w.dumps(render_dataset(c, tables)))
    assert back["datasets"][0]["subsets"] == tables and back["general"]["caption_extension"] == ".txt"


def test_aitoolkit_folders_take_the_subset_values(ws, two_folders):
    c = cfg([Subset(dataset="mix", folder="3_alice", caption_extension=".caption", keep_tokens=2, flip_aug=True),
             Subset(dataset="mix", folder="1_reg", is_reg=True, random_crop=True)],
            engine="ai-toolkit", model_family="sd15", optimizer_type="AdamW", cache_latents=False, keep_tokens=0, flip_aug=False)
    datasets = render_job(c, dataset_subsets(c, ws), 10, None, Path("/o"), None)["config"]["process"][0]["datasets"]
    assert (datasets[0]["caption_ext"], datasets[0]["keep_tokens"], datasets[0].get("flip_x")) == ("caption", 2, True)
    assert (datasets[1]["caption_ext"], datasets[1]["keep_tokens"], datasets[1].get("flip_x")) == ("txt", 0, None)
    assert datasets[1]["random_crop"] is True and datasets[1]["is_reg"] is True and "random_crop" not in datasets[0]


def test_step_count_follows_the_subsets(ws, two_folders):
    one = steps(cfg([Subset(dataset="mix", folder="3_alice", num_repeats=2)]), ws)
    assert one.exact and one.num_train_images == 4 and one.total_steps == 4
    more = steps(cfg([Subset(dataset="mix", folder="3_alice", num_repeats=5)]), ws)
    assert more.total_steps == 10
