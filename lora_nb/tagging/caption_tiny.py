"""Small, real captioning models with random weights: Florence-2 and JoyCaption (LLaVA) architectures.

No weights can be downloaded in tests or on an offline box, so these build the same transformers classes
the real models use (``Florence2ForConditionalGeneration``: DaViT vision tower + BART encoder-decoder;
``LlavaForConditionalGeneration``: SigLIP vision tower + Llama decoder, as JoyCaption beta one) from
configs with tiny (or, for benchmarks, larger) sizes, with a byte-level BPE tokenizer trained here on a
few sentences, and save model + processor into a folder that ``from_pretrained`` loads offline. Their
captions are meaningless random text, but every step of the captioning path runs for real: the
processor, the vision tower, ``generate`` with batching and padding, decoding.

>>> import tempfile
>>> folder = build_tiny_florence2(tempfile.mkdtemp())
>>> sorted(p.name for p in folder.iterdir() if p.suffix == ".json")[:2]
['config.json', 'generation_config.json']
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["build_tiny_florence2", "build_tiny_joycaption", "tiny_tokenizer", "SIZES"]

_CORPUS = [
    "A photograph of a woman with long hair standing in a garden, looking at the viewer with a smile.",
    "The image shows a red circle on a white background; a blue square and a green triangle are beside it.",
    "An illustration of a girl in a school uniform, drawn in an anime style, with soft lighting.",
    "A close-up of a cat sitting on a wooden table next to a window, sunlight falling on its fur.",
    "Write a descriptive caption for this image in a formal tone. Describe in detail what is shown in the image.",
    "1girl, solo, long hair, smile, outdoors, simple background, looking at viewer, short hair, monochrome",
    "This is a painting of mountains and a lake at sunset, with trees in the foreground and clouds above.",
]

# (vision, text) sizes: "tiny" for tests, "bench" big enough that the model, not Python, takes the time
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"image": 64, "width": 32, "layers": 1, "heads": 2, "vocab": 400},
    "bench": {"image": 224, "width": 256, "layers": 4, "heads": 4, "vocab": 2000},
}


def tiny_tokenizer(vocab_size: int = 400, kind: str = "bart") -> Any:
    """A byte-level BPE tokenizer trained on a few sentences, with the special tokens the processors need.

    ``kind="bart"``: ``<s> <pad> </s> <unk>`` + ``<image>`` (Florence-2); ``kind="llama"``: Llama 3 style
    ``<|begin_of_text|>`` ... header tokens, ``<image>`` and a chat template (JoyCaption)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if kind == "bart":
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<image>"]
    else:
        specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>", "<|start_header_id|>",
                    "<|end_header_id|>", "<|eot_id|>", "<image>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS * 4, trainer)
    if kind == "bart":
        return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                       unk_token="<unk>", extra_special_tokens={"image_token": "<image>"})
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                   pad_token="<|finetune_right_pad_id|>", extra_special_tokens={"image_token": "<image>"})
    fast.chat_template = (
        "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
        "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")
    return fast


def build_tiny_florence2(folder: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Save a random ``Florence2ForConditionalGeneration`` and its processor into ``folder``; return it."""
    import torch
    from transformers import (BartConfig, CLIPImageProcessor, Florence2Config, Florence2ForConditionalGeneration,
                              Florence2Processor, Florence2VisionConfig)

    s = SIZES[size]
    torch.manual_seed(seed)
    tok = tiny_tokenizer(s["vocab"], "bart")
    w, n = s["width"], s["layers"]
    vision = Florence2VisionConfig(depths=[1, 1, n, 1], embed_dim=[w // 2, w, w, w], num_heads=[1, s["heads"], s["heads"], s["heads"]],
                                   num_groups=[1, s["heads"], s["heads"], s["heads"]], window_size=2, projection_dim=w,
                                   max_position_embeddings=max(8, s["image"] // 32 + 1), drop_path_rate=0.0)
    text = BartConfig(vocab_size=len(tok), d_model=w, encoder_layers=n, decoder_layers=n, encoder_attention_heads=s["heads"],
                      decoder_attention_heads=s["heads"], encoder_ffn_dim=w * 2, decoder_ffn_dim=w * 2,
                      max_position_embeddings=512, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.eos_token_id, forced_eos_token_id=None)
    config = Florence2Config(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"))
    model = Florence2ForConditionalGeneration(config).eval()
    grid = s["image"] // 32
    images = CLIPImageProcessor(size={"height": s["image"], "width": s["image"]}, do_center_crop=False, do_resize=True,
                                crop_size={"height": s["image"], "width": s["image"]}, image_seq_length=grid * grid + 1,
                                image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    images.image_seq_length = grid * grid + 1
    processor = Florence2Processor(image_processor=images, tokenizer=tok)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.update(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                   decoder_start_token_id=tok.eos_token_id, forced_eos_token_id=None,
                                   suppress_tokens=_special_ids(tok))
    model.save_pretrained(out)
    processor.save_pretrained(out)
    _mark(out, "florence2", size)
    return out


def build_tiny_joycaption(folder: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Save a random ``LlavaForConditionalGeneration`` (SigLIP + Llama, JoyCaption's layout) and its processor."""
    import torch
    from transformers import (LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor, SiglipImageProcessor,
                              SiglipVisionConfig)

    s = SIZES[size]
    torch.manual_seed(seed)
    tok = tiny_tokenizer(s["vocab"], "llama")
    w, n, patch = s["width"], s["layers"], 16
    vision = SiglipVisionConfig(hidden_size=w, intermediate_size=w * 2, num_hidden_layers=n + 1, num_attention_heads=s["heads"],
                                image_size=s["image"], patch_size=patch)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=w, intermediate_size=w * 2, num_hidden_layers=n,
                       num_attention_heads=s["heads"], num_key_value_heads=s["heads"], max_position_embeddings=1024,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
                         vision_feature_layer=-2, vision_feature_select_strategy="full", projector_hidden_act="gelu")
    model = LlavaForConditionalGeneration(config).eval()
    images = SiglipImageProcessor(size={"height": s["image"], "width": s["image"]})
    processor = LlavaProcessor(image_processor=images, tokenizer=tok, patch_size=patch, vision_feature_select_strategy="full",
                               chat_template=tok.chat_template)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.update(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                   suppress_tokens=_special_ids(tok))
    model.save_pretrained(out)
    processor.save_pretrained(out)
    _mark(out, "joycaption", size)
    return out


def _special_ids(tok: Any) -> list[int]:
    """Random weights would often end a caption at once (or emit pad/image tokens): the tiny models never generate
    special tokens, so every caption runs to max_new_tokens and has text (a real model stops at its end token)."""
    return sorted(set(tok.all_special_ids) | {tok.convert_tokens_to_ids("<image>")})


def _mark(folder: Path, family: str, size: str) -> None:
    (folder / "lora_nb_captioner.json").write_text(json.dumps({"family": family, "random_weights": True, "size": size}) + "\n",
                                                   encoding="utf-8")
