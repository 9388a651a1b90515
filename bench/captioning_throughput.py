"""Benchmark: natural-language captioning throughput of lora_nb's job path vs a plain transformers loop, in one run.

    .venv/bin/python bench/captioning_throughput.py                    # Florence-2 layout, "bench" size
    .venv/bin/python bench/captioning_throughput.py --family joycaption
    .venv/bin/python bench/captioning_throughput.py --quick            # tiny model, few images: a fast check

A random model of the real architecture (lora_nb.tagging.caption_tiny: Florence-2 = DaViT + BART encoder-decoder,
JoyCaption = SigLIP + Llama, built from transformers configs at the "bench" size, 224 px, 256 wide, 4 layers) and
generated JPEGs of camera-like sizes (1024x768 and 768x1024). Both sides use the SAME loaded model object, the same
processor, the same images and the same greedy generate settings:

- baseline: the loop a notebook writes: per image, ``Image.open`` -> ``processor(text=..., images=...)`` ->
  ``model.generate`` -> ``batch_decode``;
- lora_nb: ``Captioner.run`` (what the ``caption_dataset`` job runs): decode + image processor in worker threads,
  batches of ``--batch`` through ``generate`` with the prompt tokenized once per batch size, left padding.

Prints images/s for both, the ratio (goal >= 2x on the CPU) and how many captions agree between the two.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_images(folder: Path, n: int, size: tuple[int, int] = (1024, 768)) -> list[Path]:
    """``n`` JPEGs, landscape and portrait in turn, each a different crop of one random picture."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    base = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    out = []
    for i in range(n):
        w, h = size if i % 2 == 0 else size[::-1]
        p = folder / f"{i:04d}.jpg"
        Image.fromarray(np.roll(base, i * 3, axis=1)).resize((w, h), Image.Resampling.BICUBIC).save(p, quality=90)
        out.append(p)
    return out


# the real models' layouts (their config.json on the Hub), for the GPU check: random weights, built on the device
REAL_SIZE = {
    "florence2": "Florence-2-large layout: DaViT (embed 256-2048, depths 1/1/9/1, 768 px) + BART-large (12+12 layers, 1024 wide, "
                 "vocab 51,289)",
    "joycaption": "JoyCaption beta one layout: SigLIP so400m (27 layers, 1152 wide, 384 px, patch 14) + Llama 3.1 8B (32 layers, "
                  "4096 wide, 8 KV heads, vocab 128,256)",
}


def real_size_model(family: str, device: str = "cpu", dtype: Any = None) -> tuple[Any, Any]:
    """(model, processor) of the real model's size with random weights, made directly on ``device`` in ``dtype``
    (``device="meta"`` makes the shapes only: a parameter count without memory). The tokenizer is the small one
    trained here (caption_tiny.tiny_tokenizer): ids beyond it decode to nothing, which changes no timing."""
    import torch
    from transformers import (BartConfig, CLIPImageProcessor, Florence2Config, Florence2ForConditionalGeneration, Florence2Processor,
                              Florence2VisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor,
                              SiglipImageProcessor, SiglipVisionConfig)

    from lora_nb.tagging.caption_tiny import _special_ids, tiny_tokenizer

    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    torch.manual_seed(0)
    if family == "florence2":
        tok = tiny_tokenizer(2000, "bart")
        vision = Florence2VisionConfig(depths=[1, 1, 9, 1], embed_dim=[256, 512, 1024, 2048], num_heads=[8, 16, 32, 64],
                                       num_groups=[8, 16, 32, 64], window_size=12, projection_dim=1024, drop_path_rate=0.0)
        text = BartConfig(vocab_size=51289, d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
                          decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096, max_position_embeddings=1024,
                          pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          decoder_start_token_id=tok.eos_token_id, forced_eos_token_id=None)
        config = Florence2Config(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"))
        cls: Any = Florence2ForConditionalGeneration
        images = CLIPImageProcessor(size={"height": 768, "width": 768}, do_center_crop=False, crop_size={"height": 768, "width": 768},
                                    image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
        images.image_seq_length = 577
        processor = Florence2Processor(image_processor=images, tokenizer=tok)
        extra = {"decoder_start_token_id": tok.eos_token_id, "forced_eos_token_id": None}
    else:
        tok = tiny_tokenizer(2000, "llama")
        vision = SiglipVisionConfig(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                                    image_size=384, patch_size=14)
        text = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                           num_key_value_heads=8, max_position_embeddings=131072, rope_theta=500000.0,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        config = LlavaConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
                             vision_feature_layer=-2, vision_feature_select_strategy="full", projector_hidden_act="gelu")
        cls = LlavaForConditionalGeneration
        processor = LlavaProcessor(image_processor=SiglipImageProcessor(size={"height": 384, "width": 384}), tokenizer=tok,
                                   patch_size=14, vision_feature_select_strategy="full", chat_template=tok.chat_template)
        extra = {}
    with torch.device(device):
        model = cls._from_config(config, dtype=dtype)
    model.generation_config.update(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                   suppress_tokens=_special_ids(tok), **extra)
    return model.eval(), processor


def plain_loop(captioner: Any, paths: list[Path]) -> list[str]:
    """The one-image-at-a-time transformers loop, on the captioner's own model and processor and prompt."""
    import torch
    from PIL import Image

    from lora_nb.tagging.caption_options import clean_sentence

    model, processor = captioner.model, captioner.processor
    out = []
    for p in paths:
        image = Image.open(p).convert("RGB")
        inputs = processor(text=captioner.text, images=image, return_tensors="pt").to(captioner.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(captioner.dtype)
        with torch.inference_mode():
            ids = model.generate(**inputs, max_new_tokens=captioner.max_new_tokens, num_beams=1, do_sample=False)
        if captioner.family == "joycaption":
            ids = ids[:, inputs["input_ids"].shape[1]:]
        out.append(clean_sentence(processor.batch_decode(ids, skip_special_tokens=True)[0]))
    return out


def ours(captioner: Any, paths: list[Path]) -> list[str]:
    results = list(captioner.run(paths))
    bad = [r.error for r in results if r.error]
    if bad:
        raise RuntimeError(f"an image failed: {bad[0]}")
    return [r.text for r in results]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", choices=["florence2", "joycaption"], default="florence2")
    ap.add_argument("--quick", action="store_true", help="the tiny test model and 8 images")
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=32, help="new tokens per caption (the random models never stop early)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved baseline/lora_nb pairs (the ratio is their median)")
    args = ap.parse_args()
    import torch

    from lora_nb.tagging.caption_options import CaptionOptions
    from lora_nb.tagging.caption_tiny import build_tiny_florence2, build_tiny_joycaption
    from lora_nb.tagging.captioner import Captioner

    size = "tiny" if args.quick else "bench"
    n = args.images or (8 if args.quick else 16)
    tmp = Path(tempfile.mkdtemp(prefix="bench-caption-"))
    t0 = time.perf_counter()
    build = build_tiny_florence2 if args.family == "florence2" else build_tiny_joycaption
    folder = build(tmp / args.family, size=size)
    paths = make_images(tmp / "images", n)
    cap = Captioner(folder, CaptionOptions(batch_size=args.batch, workers=args.workers, max_new_tokens=args.tokens), device="cpu")
    params = sum(p.numel() for p in cap.model.parameters()) / 1e6
    print(f"{args.family} ({size} size, {params:.1f} M parameters, random weights), {n} JPEGs 1024x768, "
          f"{args.tokens} new tokens each, greedy; batch {args.batch}, {args.workers} decode workers; torch "
          f"{torch.__version__} on {torch.get_num_threads()} threads (set-up {time.perf_counter() - t0:.0f} s)")
    plain_loop(cap, paths[:1])                               # warm-up: allocations, first-call paths
    ours(cap, paths[:args.batch])

    def timed(fn: Any) -> tuple[float, list[str]]:
        t = time.perf_counter()
        texts = fn(cap, paths)
        return n / (time.perf_counter() - t), texts

    rounds = [(timed(plain_loop), timed(ours)) for _ in range(args.rounds)]    # interleaved: drift hits both alike
    for i, ((b, _), (o, _)) in enumerate(rounds, 1):
        print(f"  round {i}: plain loop {b:.2f}, lora_nb {o:.2f} images/s, ratio {o / b:.2f}")
    base = float(np.median([r[0][0] for r in rounds]))
    best = float(np.median([r[1][0] for r in rounds]))
    ratio = float(np.median([r[1][0] / r[0][0] for r in rounds]))
    same = sum(a == b for a, b in zip(rounds[0][0][1], rounds[0][1][1]))
    print(f"plain transformers loop (one image at a time): {base:6.2f} images/s")
    print(f"lora_nb Captioner (batched, pipelined decode):  {best:6.2f} images/s")
    print(f"ratio lora_nb / plain loop (median of the pairs): {ratio:.2f}x   (goal >= 2x on the CPU)")
    print(f"captions identical in both: {same}/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
