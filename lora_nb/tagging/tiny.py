"""A small, real ONNX tagger with the same inputs and outputs as SmilingWolf's WD14 models.

Input ``input`` of shape (N, size, size, 3), float32 BGR 0-255, NHWC; output ``predictions_sigmoid``
of shape (N, labels) with scores in (0, 1); a ``selected_tags.csv`` with 4 ratings, general tags and
character tags. The network is a strided 3x3 convolution, ReLU, global average pooling and a dense
layer with a sigmoid, with seeded random weights: its tags are meaningless, but it exercises every
part of the tagging path (onnxruntime, layout, preprocessing, thresholds) without a download.

>>> import tempfile
>>> folder = build_tiny_tagger(tempfile.mkdtemp())
>>> sorted(p.name for p in folder.iterdir())
['model.onnx', 'selected_tags.csv']
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["build_tiny_tagger", "GENERAL", "CHARACTER", "RATINGS"]

RATINGS = ["general", "sensitive", "questionable", "explicit"]
GENERAL = ["1girl", "solo", "simple_background", "white_background", "red_theme", "blue_theme", "green_theme", "circle",
           "square", "triangle", "no_humans", "monochrome", "greyscale", "looking_at_viewer", "long_hair", "short_hair",
           "smile", "outdoors", "indoors", "^_^"]
CHARACTER = ["hatsune_miku", "kagamine_rin", "saber_(fate)", "rem_(re:zero)"]


def build_tiny_tagger(folder: str | Path, size: int = 64, seed: int = 0, channels: int = 8, fixed_batch: int | None = None,
                      input_name: str = "input", general: list[str] | None = None, character: list[str] | None = None) -> Path:
    """Write ``model.onnx`` and ``selected_tags.csv`` into ``folder`` (created); return the folder."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    general = list(GENERAL if general is None else general)
    character = list(CHARACTER if character is None else character)
    n_labels = len(RATINGS) + len(general) + len(character)
    rng = np.random.default_rng(seed)
    conv_w = rng.normal(0, 0.5, (channels, 3, 3, 3)).astype(np.float32)
    conv_b = rng.normal(0, 0.1, (channels,)).astype(np.float32)
    dense_w = rng.normal(0, 1.5, (channels, n_labels)).astype(np.float32)
    dense_b = rng.normal(0, 0.5, (n_labels,)).astype(np.float32)
    batch = fixed_batch if fixed_batch else "batch"
    nodes = [
        helper.make_node("Mul", [input_name, "scale"], ["scaled"]),
        helper.make_node("Transpose", ["scaled"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "conv_w", "conv_b"], ["conv"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "dense_w", "dense_b"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["predictions_sigmoid"]),
    ]
    inits = [numpy_helper.from_array(np.array(1 / 255, dtype=np.float32), "scale"), numpy_helper.from_array(conv_w, "conv_w"),
             numpy_helper.from_array(conv_b, "conv_b"), numpy_helper.from_array(dense_w, "dense_w"), numpy_helper.from_array(dense_b, "dense_b")]
    graph = helper.make_graph(nodes, "lnb_tiny_tagger",
                              [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, size, size, 3])],
                              [helper.make_tensor_value_info("predictions_sigmoid", TensorProto.FLOAT, [batch, n_labels])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="lora-nb tiny tagger")
    model.ir_version = 8
    onnx.checker.check_model(model)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out / "model.onnx"))
    rows = ["tag_id,name,category,count"]
    rows += [f"{9000 + i},{name},9,{1000 - i}" for i, name in enumerate(RATINGS)]
    rows += [f"{i},{name},0,{500 - i}" for i, name in enumerate(general)]
    rows += [f"{100 + i},{name},4,{50 - i}" for i, name in enumerate(character)]
    (out / "selected_tags.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out
