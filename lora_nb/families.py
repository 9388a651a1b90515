"""Which base model family a safetensors file belongs to, from its tensor names and shapes alone.

Works on headers (see :func:`lora_nb.lora.header.read_header`), so nothing is loaded.

>>> detect_lora_family(["lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", "lora_unet_input_blocks_4_1_proj_in.alpha"])
'sdxl'
>>> detect_model_family(["model.diffusion_model.double_blocks.0.img_attn.qkv.weight"])
'flux'
"""
from __future__ import annotations

from typing import Iterable, Mapping

__all__ = ["FAMILY_NAMES", "detect_lora_family", "detect_model_family"]

FAMILY_NAMES = {"sd15": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL", "flux": "FLUX.1", "sd3": "SD3", "unknown": "unknown"}


def detect_lora_family(keys: Iterable[str], shapes: Mapping[str, tuple[int, ...]] | None = None) -> str:
    """sd15 / sd2 / sdxl / flux / sd3 / unknown for a LoRA (kohya, PEFT or diffusers key names)."""
    keys = list(keys)
    joined = "\n".join(keys)
    if "lora_te1_" in joined or "lora_te2_" in joined or "lora_unet_input_blocks_" in joined or "lora_unet_output_blocks_" in joined:
        return "sdxl"
    if ("lora_unet_double_blocks_" in joined or "lora_unet_single_blocks_" in joined or "single_transformer_blocks" in joined
            or "double_blocks." in joined or "lora_transformer_single_transformer_blocks" in joined):
        return "flux"
    if "lora_unet_joint_blocks_" in joined or "joint_blocks." in joined or "transformer_blocks" in joined and "context_block" in joined:
        return "sd3"
    if "lora_unet_" in joined or "lora_te_" in joined or "unet.down_blocks" in joined:
        # SD 2.x text encoder is OpenCLIP (1024 wide, 23 layers used); SD 1.x is CLIP-L (768)
        if shapes:
            for k, s in shapes.items():
                if "attn2_to_k" in k and k.endswith("lora_down.weight") and len(s) == 2:
                    return "sd2" if s[1] == 1024 else "sd15"
        if "lora_te_text_model_encoder_layers_22_" in joined:
            return "sd2"
        return "sd15"
    return "unknown"


def detect_model_family(keys: Iterable[str], shapes: Mapping[str, tuple[int, ...]] | None = None) -> str:
    """sd15 / sd2 / sdxl / flux / sd3 / unknown for a full checkpoint (single-file or diffusers component)."""
    keys = list(keys)
    joined = "\n".join(keys)
    if "double_blocks." in joined or "single_blocks." in joined or "single_transformer_blocks." in joined:
        return "flux"
    if "joint_blocks." in joined:
        return "sd3"
    if "conditioner.embedders.1" in joined or "add_embedding.linear_1" in joined or "label_emb.0.0.weight" in joined:
        return "sdxl"
    if "model.diffusion_model." in joined or "down_blocks." in joined:
        if shapes:
            for k, s in shapes.items():
                if k.endswith("attn2.to_k.weight") and len(s) == 2:
                    return "sd2" if s[1] == 1024 else ("sd15" if s[1] == 768 else "unknown")
        if "cond_stage_model.model.transformer" in joined:
            return "sd2"
        return "sd15"
    return "unknown"
