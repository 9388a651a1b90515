"""Random full-size base models for the GPU check, built from hand-written configs (nothing is downloaded).

Run with an ENGINE's python (it needs torch, diffusers and transformers, not lora_nb):

    <kohya venv>/bin/python bench/gpu_models.py sd15 OUT --tools DIR   # SD 1.5 Diffusers folder + tok/ (for sd-scripts)
    <kohya venv>/bin/python bench/gpu_models.py sdxl OUT --tools DIR   # SDXL base 1.0 layout + tok/ (for sd-scripts)
    <ai-toolkit venv>/bin/python bench/gpu_models.py flux OUT          # FLUX.1-dev layout, bf16 (for ai-toolkit)

``--device cuda`` (the default when CUDA is there) initialises the weights on the GPU, which takes seconds
instead of minutes; ``--tiny`` shrinks every model (a quick test of this script on a CPU; sd-scripts cannot load
a tiny SDXL, its U-Net is fixed at full size). OUT gets a ``.ready`` file last, so a half-written folder is never
taken for a model.

- SD 1.5: the configs and the small CLIP tokenizer of ../shared/tools/kohya-cpu/make_model.py (``--tools``, the
  folder holding it), the same model scripts/kohya-cpu-setup.sh builds, in fp16. About 2.1 GB.
- SDXL: stabilityai/stable-diffusion-xl-base-1.0's configs (U-Net with text_time embedding, CLIP ViT-L and
  OpenCLIP bigG text encoders), fp16, the same small tokenizer for both. About 6.9 GB. sd-scripts converts the
  Diffusers U-Net into its own SDXL U-Net, so the config must be the real one, key for key.
- FLUX: FLUX.1-dev's transformer (19 double + 38 single blocks, 3072 wide, guidance embedding), T5-XXL, CLIP-L,
  the 16-channel VAE and the flow-matching scheduler, in bf16, with the tokenizers of
  tests/engines/aitoolkit_real/make_tiny_models.py. About 33 GB.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SDXL_UNET = {
    "act_fn": "silu", "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64, "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20], "block_out_channels": [320, 640, 1280], "center_input_sample": False,
    "cross_attention_dim": 2048, "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816, "sample_size": 128, "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "use_linear_projection": True,
}
SDXL_TE1 = {"hidden_act": "quick_gelu", "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
            "num_hidden_layers": 12, "projection_dim": 768, "max_position_embeddings": 77, "vocab_size": 49408,
            "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1, "layer_norm_eps": 1e-05}
SDXL_TE2 = {**SDXL_TE1, "hidden_act": "gelu", "hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 20,
            "num_hidden_layers": 32, "projection_dim": 1280}
SDXL_VAE = {"act_fn": "silu", "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
            "up_block_types": ["UpDecoderBlock2D"] * 4, "in_channels": 3, "out_channels": 3, "latent_channels": 4,
            "layers_per_block": 2, "norm_num_groups": 32, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True}
SDXL_SCHEDULER = {"_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
                  "beta_start": 0.00085, "clip_sample": False, "interpolation_type": "linear", "num_train_timesteps": 1000,
                  "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": False, "skip_prk_steps": True,
                  "steps_offset": 1, "timestep_spacing": "leading", "trained_betas": None, "use_karras_sigmas": False}
SDXL_INDEX = {"_class_name": "StableDiffusionXLPipeline", "feature_extractor": [None, None], "image_encoder": [None, None],
              "force_zeros_for_empty_prompt": True, "scheduler": ["diffusers", "EulerDiscreteScheduler"],
              "text_encoder": ["transformers", "CLIPTextModel"], "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
              "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
              "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}

FLUX_TRANSFORMER = {"patch_size": 1, "in_channels": 64, "num_layers": 19, "num_single_layers": 38, "attention_head_dim": 128,
                    "num_attention_heads": 24, "joint_attention_dim": 4096, "pooled_projection_dim": 768,
                    "guidance_embeds": True, "axes_dims_rope": (16, 56, 56)}
FLUX_T5 = {"vocab_size": 32128, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64,
           "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128, "feed_forward_proj": "gated-gelu",
           "dense_act_fn": "gelu_new", "is_gated_act": True, "tie_word_embeddings": False, "layer_norm_epsilon": 1e-06,
           "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0}
FLUX_CLIP = {"hidden_act": "quick_gelu", "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
             "num_hidden_layers": 12, "projection_dim": 768, "max_position_embeddings": 77, "vocab_size": 49408}
FLUX_VAE = {"in_channels": 3, "out_channels": 3, "latent_channels": 16, "block_out_channels": (128, 256, 512, 512),
            "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4, "layers_per_block": 2,
            "norm_num_groups": 32, "sample_size": 1024, "scaling_factor": 0.3611, "shift_factor": 0.1159,
            "use_quant_conv": False, "use_post_quant_conv": False}
FLUX_SCHEDULER = {"num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": True, "base_shift": 0.5, "max_shift": 1.15,
                  "base_image_seq_len": 256, "max_image_seq_len": 4096}


def load_module(path: Path, name: str):
    """Import a helper script by path (make_model.py, make_tiny_models.py), without running its main()."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


class Builder:
    """Creates modules on the chosen device and dtype, saves them (from the CPU) and reports what it wrote."""

    def __init__(self, device: str, dtype: str) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[dtype]

    def make(self, factory):
        """``factory()`` run with the device and dtype as defaults: weights are initialised where they live."""
        torch = self.torch
        old = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)
        try:
            with torch.device(self.device):
                return factory()
        finally:
            torch.set_default_dtype(old)

    def save(self, model, folder: Path) -> None:
        t0 = time.perf_counter()
        n = sum(p.numel() for p in model.parameters())
        model.to(self.dtype).save_pretrained(str(folder), safe_serialization=True)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        print(f"  {folder.name}: {type(model).__name__} {n / 1e6:.0f} M parameters, {size / 2**30:.2f} GiB written in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        del model
        if self.device.type == "cuda":
            self.torch.cuda.empty_cache()


def clip_tokenizers(make_model, out: Path, names: list[str]) -> None:
    """make_model.py's small CLIP tokenizer (real special ids 49406/49407) into each named folder."""
    first = out / names[0]
    make_model.make_tokenizer(str(first))
    for name in names[1:]:
        shutil.copytree(first, out / name)


def build_sd15(out: Path, b: Builder, tools: Path, tiny: bool) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    mm = load_module(tools / "make_model.py", "make_model")
    clip_tokenizers(mm, out, ["tok/openai_clip-vit-large-patch14", "model/tokenizer"])
    model = out / "model"
    write_json(model / "scheduler" / "scheduler_config.json", mm.SCHEDULER_CONFIG)
    write_json(model / "model_index.json", mm.MODEL_INDEX)
    unet = {k: v for k, v in mm.UNET_CONFIG.items() if not k.startswith("_")}
    vae = {k: v for k, v in mm.VAE_CONFIG.items() if not k.startswith("_")}
    te = {k: v for k, v in mm.TEXT_ENCODER_CONFIG.items() if k not in ("architectures", "model_type")}
    if tiny:
        unet.update(block_out_channels=[32, 32, 64, 64], attention_head_dim=4)
        vae.update(block_out_channels=[32, 32, 32, 32], layers_per_block=1)
        te.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, projection_dim=64)
    b.save(b.make(lambda: UNet2DConditionModel(**unet)), model / "unet")
    b.save(b.make(lambda: AutoencoderKL(**vae)), model / "vae")
    b.save(b.make(lambda: CLIPTextModel(CLIPTextConfig(**te))), model / "text_encoder")


def build_sdxl(out: Path, b: Builder, tools: Path, tiny: bool) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    mm = load_module(tools / "make_model.py", "make_model")
    clip_tokenizers(mm, out, ["tok/openai_clip-vit-large-patch14", "tok/laion_CLIP-ViT-bigG-14-laion2B-39B-b160k",
                              "model/tokenizer", "model/tokenizer_2"])
    model = out / "model"
    write_json(model / "scheduler" / "scheduler_config.json", SDXL_SCHEDULER)
    write_json(model / "model_index.json", SDXL_INDEX)
    unet, te1, te2, vae = dict(SDXL_UNET), dict(SDXL_TE1), dict(SDXL_TE2), dict(SDXL_VAE)
    if tiny:
        unet.update(block_out_channels=[32, 64, 64], attention_head_dim=[2, 4, 4], transformer_layers_per_block=[1, 1, 1],
                    cross_attention_dim=128, addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 64)
        te1.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, projection_dim=64)
        te2.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, projection_dim=64)
        vae.update(block_out_channels=[32, 32, 32, 32], layers_per_block=1)
    b.save(b.make(lambda: UNet2DConditionModel(**unet)), model / "unet")
    b.save(b.make(lambda: AutoencoderKL(**vae)), model / "vae")
    b.save(b.make(lambda: CLIPTextModel(CLIPTextConfig(**te1))), model / "text_encoder")
    b.save(b.make(lambda: CLIPTextModelWithProjection(CLIPTextConfig(**te2))), model / "text_encoder_2")


def build_flux(out: Path, b: Builder, tools: Path, tiny: bool) -> None:
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    mt = load_module(REPO / "tests" / "engines" / "aitoolkit_real" / "make_tiny_models.py", "make_tiny_models")
    model = out / "model"
    _, bos, eos = mt.clip_tokenizer(model / "tokenizer")
    mt.t5_tokenizer(model / "tokenizer_2")
    transformer, t5, clip, vae = dict(FLUX_TRANSFORMER), dict(FLUX_T5), dict(FLUX_CLIP), dict(FLUX_VAE)
    if tiny:
        transformer.update(num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
                           joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(4, 6, 6))
        t5.update(d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2)
        clip.update(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, projection_dim=32)
        vae.update(block_out_channels=(32, 32, 32, 32), layers_per_block=1)
    clip.update(bos_token_id=bos, eos_token_id=eos, pad_token_id=eos)   # CLIP pools at the first EOS of this tokenizer
    b.save(b.make(lambda: FluxTransformer2DModel(**transformer)), model / "transformer")
    b.save(b.make(lambda: T5EncoderModel(T5Config(**t5))), model / "text_encoder_2")
    b.save(b.make(lambda: CLIPTextModel(CLIPTextConfig(**clip))), model / "text_encoder")
    b.save(b.make(lambda: AutoencoderKL(**vae)), model / "vae")
    FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER).save_pretrained(str(model / "scheduler"))
    import diffusers

    write_json(model / "model_index.json", {
        "_class_name": "FluxPipeline", "_diffusers_version": diffusers.__version__,
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "FluxTransformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"]})


BUILDERS = {"sd15": (build_sd15, "fp16"), "sdxl": (build_sdxl, "fp16"), "flux": (build_flux, "bf16")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("family", choices=sorted(BUILDERS))
    ap.add_argument("out", type=Path, help="folder to create: OUT/model (the Diffusers folder), OUT/tok (tokenizers), OUT/.ready")
    ap.add_argument("--tools", type=Path, default=REPO.parent / "shared" / "tools" / "kohya-cpu", help="folder with make_model.py")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes, for a quick CPU test of this script")
    args = ap.parse_args()
    import torch

    build, dtype = BUILDERS[args.family]
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if (args.out / ".ready").is_file():
        print(f"{args.out}: already built")
        return 0
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    print(f"building {'tiny ' if args.tiny else ''}{args.family} ({dtype}) on {device} into {args.out}", flush=True)
    build(args.out, Builder(device, dtype), args.tools, args.tiny)
    (args.out / ".ready").write_text(f"{args.family} {dtype} {'tiny' if args.tiny else 'full'}\n")
    print(f"done in {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
