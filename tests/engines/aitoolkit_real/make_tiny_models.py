#!/usr/bin/env python3
"""Build tiny, randomly initialised models of the REAL architectures as diffusers folders, offline, for running
the real ai-toolkit on a CPU (run it with ai-toolkit's own venv: it needs torch, diffusers, transformers, tokenizers).

    python make_tiny_models.py OUT_DIR [--families flux,sd15,sdxl] [--seed 0]

OUT_DIR/flux-tiny   FLUX.1 layout as ai-toolkit's FLUX loader reads it (toolkit/stable_diffusion_model.py, arch flux):
                    transformer/ (FluxTransformer2DModel, guidance embeds like FLUX.1-dev), vae/ (AutoencoderKL,
                    16 latent channels, 4 blocks = scale factor 8, FLUX's scaling/shift factors), text_encoder/
                    (CLIPTextModel) + tokenizer/ (CLIPTokenizer), text_encoder_2/ (T5EncoderModel) + tokenizer_2/
                    (T5TokenizerFast), scheduler/ (FlowMatchEulerDiscreteScheduler, FLUX.1-dev's config), model_index.json.
OUT_DIR/sd15-tiny   StableDiffusionPipeline layout (UNet2DConditionModel, 4-channel VAE, CLIP, PNDM scheduler).
OUT_DIR/sdxl-tiny   StableDiffusionXLPipeline layout (text_time UNet, CLIPTextModel + CLIPTextModelWithProjection).

Every class is the real diffusers/transformers class, loaded by ai-toolkit through from_pretrained, which honours the
config: only the sizes are tiny (a few MB in all). Tokenizers are built here with the `tokenizers` library (a byte-level
BPE for CLIP with the real special tokens, a Unigram model for T5), since nothing can be fetched from the Hub.
"""
from __future__ import annotations

import argparse
import json
import os
import string
from pathlib import Path

WORDS = ("a photo of alice portrait style img0 img1 img2 img3 red green blue square and the woman man cat dog in on "
         "with sks ohwx person face smiling").split()


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------- tokenizers
def clip_tokenizer(folder: Path, max_length: int = 77):
    """A byte-level BPE CLIP tokenizer (the real CLIP's pre-tokenisation, '</w>' word ends, <|startoftext|>/<|endoftext|>)
    with a small vocabulary: the 256 byte symbols (plain and word-final), merges for WORDS, then BOS and EOS as the
    two highest ids (CLIP pools at the EOS position, found as the highest id, as in the real vocabulary)."""
    from transformers import CLIPTokenizer

    from tokenizers.pre_tokenizers import ByteLevel

    alphabet = ByteLevel.alphabet()
    alphabet.sort()
    vocab: dict[str, int] = {}
    for sym in alphabet:
        vocab.setdefault(sym, len(vocab))
    for sym in alphabet:
        vocab.setdefault(sym + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    for word in sorted(set(WORDS)):
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            a, b = parts[0], parts[1]
            if (a, b) not in merges:
                merges.append((a, b))
                vocab.setdefault(a + b, len(vocab))
            parts = [a + b] + parts[2:]
    bos, eos = "<|startoftext|>", "<|endoftext|>"
    vocab[bos] = len(vocab)
    vocab[eos] = len(vocab)
    # vocab.json + merges.txt: what every transformers version reads (it builds CLIP's own normaliser and pre-tokeniser)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "vocab.json", vocab)
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    write_json(folder / "tokenizer_config.json", {
        "tokenizer_class": "CLIPTokenizer", "bos_token": bos, "eos_token": eos, "unk_token": eos, "pad_token": eos,
        "model_max_length": max_length, "do_lower_case": True, "add_prefix_space": False, "errors": "replace",
        "clean_up_tokenization_spaces": True})
    write_json(folder / "special_tokens_map.json", {"bos_token": bos, "eos_token": eos, "unk_token": eos, "pad_token": eos})
    loaded = CLIPTokenizer.from_pretrained(str(folder))
    ids = loaded("a photo of alice")["input_ids"]
    assert ids[0] == vocab[bos] and ids[-1] == vocab[eos] and len(ids) == 6, ids
    return len(vocab), vocab[bos], vocab[eos]


def t5_tokenizer(folder: Path, max_length: int = 512):
    """A Unigram (SentencePiece-style) T5 tokenizer: <pad>=0, </s>=1, <unk>=2 as in T5, '▁' word pieces, '</s>' appended."""
    from transformers import T5TokenizerFast

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    seen = {p for p, _ in pieces}
    for w in sorted(set(WORDS)):
        if "▁" + w not in seen:
            pieces.append(("▁" + w, -2.0 - len(w) * 0.1))
            seen.add("▁" + w)
    for ch in "▁" + string.ascii_lowercase + string.ascii_uppercase + string.digits + string.punctuation:
        if ch not in seen:
            pieces.append((ch, -10.0))
            seen.add(ch)
    tok = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    hf = T5TokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>", pad_token="<pad>", extra_ids=0,
                         model_max_length=max_length)
    hf.save_pretrained(str(folder))
    loaded = T5TokenizerFast.from_pretrained(str(folder))
    ids = loaded("a photo of alice")["input_ids"]
    assert ids[-1] == 1 and 2 not in ids, ids
    return len(loaded)


# ---------------------------------------------------------------------------------------------- models
def save(model, folder: Path) -> None:
    model.save_pretrained(str(folder), safe_serialization=True)


def clip_text_config(vocab: int, bos: int, eos: int, hidden: int, **kw):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=2,
                          num_attention_heads=2, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=hidden,
                          bos_token_id=bos, eos_token_id=eos, pad_token_id=eos, **kw)


def vae(latent_channels: int, **kw):
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=latent_channels, block_out_channels=(32, 32, 32, 32),
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         layers_per_block=1, norm_num_groups=32, sample_size=64, **kw)


def make_flux(out: Path) -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    n_clip, bos, eos = clip_tokenizer(out / "tokenizer")
    n_t5 = t5_tokenizer(out / "tokenizer_2")
    save(CLIPTextModel(clip_text_config(n_clip, bos, eos, 32)), out / "text_encoder")
    t5 = T5Config(vocab_size=n_t5, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2, relative_attention_num_buckets=8,
                  relative_attention_max_distance=16, feed_forward_proj="gated-gelu", dense_act_fn="gelu_new",
                  is_gated_act=True, tie_word_embeddings=False, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    save(T5EncoderModel(t5), out / "text_encoder_2")
    # FLUX.1-dev's transformer with 1 double + 1 single block, 2 heads of 16 (rope axes 4+6+6 = 16, like 16+56+56 = 128)
    save(FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
                                num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True,
                                axes_dims_rope=(4, 6, 6)), out / "transformer")
    save(vae(16, scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False), out / "vae")
    FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5,
                                    max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096).save_pretrained(str(out / "scheduler"))
    write_json(out / "model_index.json", {
        "_class_name": "FluxPipeline", "_diffusers_version": __import__("diffusers").__version__,
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "FluxTransformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"]})


def make_sd15(out: Path) -> None:
    from diffusers import PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    n_clip, bos, eos = clip_tokenizer(out / "tokenizer")
    save(CLIPTextModel(clip_text_config(n_clip, bos, eos, 32)), out / "text_encoder")
    save(UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
                              down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                              cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32), out / "unet")
    save(vae(4, scaling_factor=0.18215), out / "vae")
    PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000, skip_prk_steps=True,
                  steps_offset=1, set_alpha_to_one=False).save_pretrained(str(out / "scheduler"))
    write_json(out / "model_index.json", {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": __import__("diffusers").__version__,
        "feature_extractor": [None, None], "image_encoder": [None, None], "requires_safety_checker": False, "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]})


def make_sdxl(out: Path) -> None:
    from diffusers import EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    n_clip, bos, eos = clip_tokenizer(out / "tokenizer")
    clip_tokenizer(out / "tokenizer_2")
    save(CLIPTextModel(clip_text_config(n_clip, bos, eos, 32)), out / "text_encoder")
    save(CLIPTextModelWithProjection(clip_text_config(n_clip, bos, eos, 32)), out / "text_encoder_2")
    # SDXL's conditioning: cross attention on both encoders' hidden states (32 + 32), text_time embedding of the
    # pooled projection (32) plus 6 size/crop numbers x 8
    save(UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
                              down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                              cross_attention_dim=64, attention_head_dim=(2, 4), transformer_layers_per_block=(1, 1),
                              use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
                              projection_class_embeddings_input_dim=6 * 8 + 32, norm_num_groups=32), out / "unet")
    save(vae(4, scaling_factor=0.13025, force_upcast=True), out / "vae")
    EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                           steps_offset=1, timestep_spacing="leading").save_pretrained(str(out / "scheduler"))
    write_json(out / "model_index.json", {
        "_class_name": "StableDiffusionXLPipeline", "_diffusers_version": __import__("diffusers").__version__,
        "feature_extractor": [None, None], "image_encoder": [None, None], "force_zeros_for_empty_prompt": True,
        "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]})


BUILDERS = {"flux": ("flux-tiny", make_flux), "sd15": ("sd15-tiny", make_sd15), "sdxl": ("sdxl-tiny", make_sdxl)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--families", default=",".join(BUILDERS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for fam in args.families.split(","):
        name, build = BUILDERS[fam]
        torch.manual_seed(args.seed)
        folder = Path(args.out) / name
        folder.mkdir(parents=True, exist_ok=True)
        build(folder)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        print(f"{folder}: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
