"""WD14 tagging: preprocessing against independent computations, tag selection against an independent
transcription of kohya's rules (ENGINES.md A10), the session reading size/layout from the model, and bad input.
The models are small real ONNX files built here (lora_nb.tagging.tiny) and run by onnxruntime."""
from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image

from lora_nb.errors import ConfigError, InvalidInput, TaggerError
from lora_nb.tagging.labels import Labels, read_labels
from lora_nb.tagging.options import TagOptions
from lora_nb.tagging.pipeline import Tagger, tag_images
from lora_nb.tagging.preprocess import load_and_preprocess, preprocess
from lora_nb.tagging.select import mcut_threshold, select_tags
from lora_nb.tagging.session import open_session
from lora_nb.tagging.tiny import build_tiny_tagger

# -- preprocessing -------------------------------------------------------------------------------


def test_pad_to_square_on_white_bgr_and_float():
    img = Image.new("RGB", (30, 20), (200, 100, 10))          # wider than tall: pad 10 rows, 5 top / 5 bottom
    out = preprocess(img, 30)                                   # same size: INTER_AREA at scale 1 is the identity
    assert out.dtype == np.float32 and out.shape == (30, 30, 3)
    assert (out[:5] == 255).all() and (out[25:] == 255).all()
    assert out[15, 15].tolist() == [10.0, 100.0, 200.0]         # BGR, 0-255, not normalised


def test_odd_padding_goes_to_the_bottom_right():
    out = preprocess(Image.new("RGB", (4, 7), (0, 0, 0)), 7)   # pad 3 columns: 1 left, 2 right
    assert (out[:, 0] == 255).all() and (out[:, 1:5] == 0).all() and (out[:, 5:] == 255).all()


def test_shrinking_equals_block_mean():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out = preprocess(Image.fromarray(rgb), 16)
    # independent: INTER_AREA at an integer factor is the mean of each 4x4 block, rounded
    expect = rgb[:, :, ::-1].reshape(16, 4, 16, 4, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(out - expect).max() <= 0.5 + 1e-6


def test_enlarging_uses_lanczos():
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
    out = preprocess(Image.fromarray(rgb), 25)
    expect = np.asarray(Image.fromarray(np.ascontiguousarray(rgb[:, :, ::-1])).resize((25, 25), Image.Resampling.LANCZOS), dtype=np.float32)
    assert np.array_equal(out, expect)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_goes_on_white(mode):
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 0))             # fully transparent red
    img.putpixel((0, 0), (255, 0, 0, 255))
    if mode == "LA":
        img = img.convert("LA")
    elif mode == "P":
        img = img.convert("P")
        img.info["transparency"] = img.getpixel((1, 1))
    out = preprocess(img, 8)
    assert out[5, 5].tolist() == [255.0, 255.0, 255.0]
    assert out[0, 0].tolist() != [255.0, 255.0, 255.0]


def test_broken_image_is_invalid_input(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(InvalidInput, match="x.png is not a readable image"):
        load_and_preprocess(bad, 32)


# -- tag selection ---------------------------------------------------------------------------------

LABELS = Labels(["general", "sensitive", "questionable", "explicit"],
                ["1girl", "long_hair", "^_^", "red_eyes", "smile", "monochrome"],
                ["hatsune_miku", "saber_(fate)", "rem_(re:zero)"])


def kohya_reference(scores, labels: Labels, o: TagOptions) -> list[str]:
    """Independent transcription of kohya's standard-layout rules (ENGINES.md A10), for comparison."""
    def under(tags):
        return [t.replace("_", " ") if len(t) > 3 else t for t in tags] if o.remove_underscore else list(tags)
    char = list(labels.character)
    if o.character_tag_expand:
        char = [(t[:t.rindex("(")].rstrip("_") + o.caption_separator + t[t.rindex("(") + 1:-1]) if t.endswith(")") else t for t in char]
    general, char, ratings = under(labels.general), under(char), under(labels.rating)
    undesired = set(o.blacklist)
    out = []
    probs = scores[4:]
    for i, p in enumerate(probs):
        if i < len(general) and p >= o.general_threshold:
            if general[i] not in undesired:
                out.append(general[i])
        elif i >= len(general) and p >= o.character_threshold:
            name = char[i - len(general)]
            if name not in undesired:
                out.insert(0, name) if o.character_tags_first else out.append(name)
    if o.rating != "off":
        r = ratings[int(np.argmax(scores[:4]))]
        if r not in undesired:
            out.insert(0, r) if o.rating == "first" else out.append(r)
    for t in o.always_first_tags:
        if t in out:
            out.remove(t)
            out.insert(0, t)
    return out


OPTION_SETS = [
    {}, {"general_threshold": 0.5, "character_threshold": 0.2}, {"remove_underscore": False},
    {"blacklist": ["long hair", "monochrome"]}, {"character_tags_first": True, "character_threshold": 0.1},
    {"rating": "first"}, {"rating": "last", "always_first_tags": ["smile", "red eyes"]},
    {"character_tag_expand": True, "character_threshold": 0.0}, {"general_threshold": 1.01, "character_threshold": 1.01},
]


@pytest.mark.parametrize("opts", OPTION_SETS)
def test_selection_matches_kohyas_rules(opts):
    rng = random.Random(str(opts))
    o = TagOptions(**opts)
    for _ in range(200):
        scores = [rng.random() for _ in range(len(LABELS))]
        assert select_tags(scores, LABELS, o).tags == kohya_reference(scores, LABELS, o)


def test_general_tags_keep_csv_order_not_score_order():
    scores = [0.9, 0, 0, 0, 0.4, 0.99, 0.0, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert select_tags(scores, LABELS, TagOptions()).tags == ["1girl", "long hair", "red eyes"]


def test_trigger_words_come_first_in_order_and_are_not_duplicated():
    scores = [0.9, 0, 0, 0, 0.9, 0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0]
    r = select_tags(scores, LABELS, TagOptions(trigger_words=["smile", "mylora"]))
    assert r.tags == ["smile", "mylora", "1girl"]
    assert r.scores == {"1girl": 0.9, "smile": 0.9}


def test_mcut():
    assert mcut_threshold([0.9, 0.85, 0.2, 0.1]) == pytest.approx(0.525)
    scores = [0.1, 0, 0, 0, 0.9, 0.85, 0.2, 0.1, 0.05, 0.0, 0.0, 0.0, 0.0]
    assert select_tags(scores, LABELS, TagOptions(general_mcut=True)).tags == ["1girl", "long hair"]
    assert select_tags(scores, LABELS, TagOptions(character_mcut=True)).tags[-1:] != ["hatsune miku"]


def test_options_are_checked_with_one_sentence():
    with pytest.raises(ConfigError, match="existing: .*Choose overwrite, append or skip"):
        TagOptions(existing="keep")
    with pytest.raises(ConfigError, match="general_threshold"):
        TagOptions(general_threshold=-1)
    with pytest.raises(ConfigError, match="Known options"):
        TagOptions(treshold=0.3)
    assert TagOptions(blacklist="a, b,,c").blacklist == ["a", "b", "c"]


# -- labels, model, session ------------------------------------------------------------------------

def test_bad_selected_tags_csv():
    with pytest.raises(TaggerError, match="header"):
        read_labels(io.StringIO("name,category\nx,0\n"))
    with pytest.raises(TaggerError, match="lists 2 rating tags"):
        read_labels(io.StringIO("tag_id,name,category,count\n1,general,9,1\n2,sensitive,9,1\n3,x,0,1\n"))


def test_session_reads_size_layout_and_fixed_batch(tmp_path):
    folder = build_tiny_tagger(tmp_path / "t", size=48, fixed_batch=4, input_name="input_1:0")
    s = open_session(folder / "model.onnx")
    assert (s.size, s.layout, s.fixed_batch, s.input_name) == (48, "NHWC", 4, "input_1:0")
    assert s.providers[-1] == "CPUExecutionProvider"
    out = s.run(np.zeros((3, 48, 48, 3), np.float32))            # padded to the fixed batch, then cut back
    assert out.shape == (3, 4 + 20 + 4) and ((out > 0) & (out < 1)).all()


def test_model_and_csv_mismatch_is_refused(tmp_path):
    folder = build_tiny_tagger(tmp_path / "t")
    (folder / "selected_tags.csv").write_text("tag_id,name,category,count\n1,general,9,1\n2,sensitive,9,1\n3,questionable,9,1\n4,explicit,9,1\n5,x,0,1\n")
    with pytest.raises(TaggerError, match="outputs but selected_tags.csv lists 5"):
        Tagger(folder)


def test_not_a_model_file(tmp_path):
    folder = tmp_path / "t"
    build_tiny_tagger(folder)
    (folder / "model.onnx").write_bytes(b"truncated")
    with pytest.raises(TaggerError, match="could not be loaded by onnxruntime"):
        Tagger(folder)
    with pytest.raises(TaggerError, match="has no model.onnx"):
        Tagger(tmp_path)
    with pytest.raises(TaggerError, match="neither a known tagger"):
        Tagger("no-such-tagger")


def test_tag_images_end_to_end_with_an_independent_forward_pass(tmp_path):
    """The scores tag_images uses are the model's output for the preprocessed image: recompute the tiny
    network in numpy from its weights and check the kept tags."""
    import onnx
    from onnx import numpy_helper

    folder = build_tiny_tagger(tmp_path / "t", size=32)
    weights = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(folder / "model.onnx")).graph.initializer}
    rng = np.random.default_rng(3)
    paths = []
    for i in range(5):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (40 + i, 50, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    (tmp_path / "broken.jpg").write_bytes(b"nope")
    results = tag_images(paths + [tmp_path / "broken.jpg"], folder, general_threshold=0.5, character_threshold=0.5, batch_size=2)
    assert [r.path for r in results] == [str(p) for p in paths + [tmp_path / "broken.jpg"]]
    assert results[-1].error and results[-1].tags == []
    labels = read_labels(folder / "selected_tags.csv")
    for p, r in zip(paths, results):
        x = preprocess(Image.open(p), 32) / 255.0                       # (32, 32, 3)
        xp = np.pad(x.transpose(2, 0, 1), ((0, 0), (1, 1), (1, 1)))
        conv = np.zeros((weights["conv_w"].shape[0], 16, 16))
        for c in range(conv.shape[0]):
            for i in range(16):
                for j in range(16):
                    conv[c, i, j] = (xp[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3] * weights["conv_w"][c]).sum() + weights["conv_b"][c]
        pooled = np.maximum(conv, 0).mean(axis=(1, 2))
        probs = 1 / (1 + np.exp(-(pooled @ weights["dense_w"] + weights["dense_b"])))
        expect = select_tags(list(probs), labels, TagOptions(general_threshold=0.5, character_threshold=0.5)).tags
        assert r.tags == expect
        for tag, score in r.scores.items():
            assert score == pytest.approx(float(probs[[*labels.rating, *[t.replace('_', ' ') if len(t) > 3 else t for t in labels.general],
                                                         *[t.replace('_', ' ') if len(t) > 3 else t for t in labels.character]].index(tag)]), abs=1e-4)
