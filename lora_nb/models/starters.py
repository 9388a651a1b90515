"""Known-good base models per family, so a new user can pick one (sources for ``ws.models.download``).

Gated repositories (FLUX.1-dev, SD3.5) need the licence accepted on the Hub and HF_TOKEN.

>>> [s.name for s in STARTERS["sdxl"]][:1]
['SDXL 1.0 base']
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Starter", "STARTERS"]


@dataclass(frozen=True)
class Starter:
    name: str
    source: str            # for ws.models.download(source)
    size: str
    note: str = ""
    gated: bool = False


STARTERS: dict[str, list[Starter]] = {
    "sd15": [
        Starter("Stable Diffusion 1.5 (pruned, fp16)", "hf:stable-diffusion-v1-5/stable-diffusion-v1-5/v1-5-pruned-emaonly-fp16.safetensors", "2.1 GB",
                "the reference SD 1.5 base"),
        Starter("SD 1.5 VAE ft-MSE", "hf:stabilityai/sd-vae-ft-mse-original/vae-ft-mse-840000-ema-pruned.safetensors", "335 MB", "better faces/text than the stock VAE"),
    ],
    "sdxl": [
        Starter("SDXL 1.0 base", "hf:stabilityai/stable-diffusion-xl-base-1.0/sd_xl_base_1.0.safetensors", "6.9 GB", "the reference SDXL base"),
        Starter("SDXL VAE (fp16 fix)", "hf:madebyollin/sdxl-vae-fp16-fix/sdxl_vae.safetensors", "335 MB", "lets SDXL run in fp16 without NaNs"),
    ],
    "flux": [
        Starter("FLUX.1 dev (transformer)", "hf:black-forest-labs/FLUX.1-dev/flux1-dev.safetensors", "23.8 GB", "kohya: with clip_l, t5xxl and ae below", True),
        Starter("FLUX autoencoder", "hf:black-forest-labs/FLUX.1-dev/ae.safetensors", "335 MB", "ae for kohya's flux_train_network.py", True),
        Starter("CLIP-L text encoder", "hf:comfyanonymous/flux_text_encoders/clip_l.safetensors", "246 MB"),
        Starter("T5-XXL text encoder (fp16)", "hf:comfyanonymous/flux_text_encoders/t5xxl_fp16.safetensors", "9.8 GB", "fp8 variant: t5xxl_fp8_e4m3fn.safetensors"),
    ],
    "sd3": [
        Starter("SD 3.5 medium", "hf:stabilityai/stable-diffusion-3.5-medium/sd3.5_medium.safetensors", "5.1 GB", "", True),
        Starter("CLIP-G text encoder", "hf:stabilityai/stable-diffusion-3.5-medium/text_encoders/clip_g.safetensors", "1.4 GB", "", True),
        Starter("CLIP-L text encoder", "hf:stabilityai/stable-diffusion-3.5-medium/text_encoders/clip_l.safetensors", "246 MB", "", True),
        Starter("T5-XXL text encoder (fp16)", "hf:stabilityai/stable-diffusion-3.5-medium/text_encoders/t5xxl_fp16.safetensors", "9.8 GB", "", True),
    ],
    "sd2": [
        Starter("Stable Diffusion 2.1 (768-v)", "hf:stabilityai/stable-diffusion-2-1/v2-1_768-ema-pruned.safetensors", "5.2 GB",
                "v-parameterization: set v_parameterization"),
    ],
}
