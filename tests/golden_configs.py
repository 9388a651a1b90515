"""Configs whose rendered engine files are kept as golden files (tests/engines/golden)."""
from lora_nb.config import TrainingConfig

CONFIGS = {
    "sd15": TrainingConfig(model_family="sd15", dataset="alice", pretrained_model_name_or_path="/models/sd15.safetensors",
                           output_name="alice", network_dim=8, network_alpha=4, mixed_precision="fp16", save_precision="fp16",
                           clip_skip=2, noise_offset=0.05, min_snr_gamma=5, sample_prompts=["alice, portrait"], sample_every_n_epochs=2),
    "sd15_locon": TrainingConfig(model_family="sd15", dataset="alice", pretrained_model_name_or_path="/models/sd15.safetensors",
                                 output_name="alice", network_type="locon", conv_dim=4, conv_alpha=1,
                                 lr_scheduler="cosine_with_restarts", lr_warmup_steps=50, lr_scheduler_num_cycles=3,
                                 optimizer_type="Prodigy", learning_rate=1.0, optimizer_args=["d_coef=2", "weight_decay=0.01"]),
    "sdxl": TrainingConfig(model_family="sdxl", dataset="alice", pretrained_model_name_or_path="/models/sdxl.safetensors",
                           output_name="alice", resolution="1024", max_bucket_reso=2048, network_train_unet_only=True,
                           cache_text_encoder_outputs=True, save_state=True, save_every_n_epochs=1, max_train_epochs=8),
    "flux": TrainingConfig(model_family="flux", dataset="alice", pretrained_model_name_or_path="/models/flux1-dev.safetensors",
                           clip_l="/models/clip_l.safetensors", t5xxl="/models/t5xxl_fp16.safetensors", ae="/models/ae.safetensors",
                           output_name="alice", resolution="1024", network_train_unet_only=True, cache_text_encoder_outputs=True,
                           fp8_base=True, blocks_to_swap=8, network_dim=16, network_alpha=16),
    "sd3": TrainingConfig(model_family="sd3", dataset="alice", pretrained_model_name_or_path="/models/sd3.5_medium.safetensors",
                          clip_l="/models/clip_l.safetensors", clip_g="/models/clip_g.safetensors", t5xxl="/models/t5xxl.safetensors",
                          output_name="alice", resolution="1024", network_train_unet_only=True, cache_text_encoder_outputs=True,
                          discrete_flow_shift=3.0),
}

# ai-toolkit job YAMLs (tests/engines/golden/<name>.job.yaml)
AITK_CONFIGS = {
    "flux_aitk": TrainingConfig(engine="ai-toolkit", model_family="flux", dataset="alice",
                                pretrained_model_name_or_path="black-forest-labs/FLUX.1-dev", output_name="alice",
                                resolution="1024", trigger_words=["alice"], network_dim=16, network_alpha=16,
                                optimizer_type="AdamW8bit", learning_rate=1e-4, fp8_base=True, max_train_epochs=None,
                                max_train_steps=2000, save_every_n_steps=250, sample_prompts=["alice, portrait, [trigger]"],
                                sample_every_n_steps=250),
    "sd15_aitk": TrainingConfig(engine="ai-toolkit", model_family="sd15", dataset="alice",
                                pretrained_model_name_or_path="stable-diffusion-v1-5/stable-diffusion-v1-5", output_name="alice",
                                resolution="512", trigger_words=["alice"], network_dim=8, network_alpha=4,
                                optimizer_type="AdamW", learning_rate=1e-4, max_train_epochs=None, max_train_steps=1000,
                                save_every_n_steps=200, lr_scheduler="cosine", sample_prompts=["alice, portrait, [trigger]"],
                                sample_every_n_steps=200),
    "sdxl_aitk": TrainingConfig(engine="ai-toolkit", model_family="sdxl", dataset="alice",
                                pretrained_model_name_or_path="stabilityai/stable-diffusion-xl-base-1.0", output_name="alice",
                                resolution="1024", network_dim=16, network_alpha=8, optimizer_type="AdamW8bit",
                                learning_rate=1e-4, max_train_epochs=None, max_train_steps=1500, save_every_n_steps=500,
                                lr_scheduler="constant_with_warmup", lr_warmup_steps=100, gradient_checkpointing=True),
}
