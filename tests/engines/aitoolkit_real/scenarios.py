"""The recorded ai-toolkit scenarios (tests/fixtures/aitoolkit/README.md): lora-nb TrainingConfig fields per run,
plus ``_``-keys for record.py: ``_stop`` (signal, regex on the output, delay), ``_resume_from`` (an earlier
scenario's run folder as ``resume``), ``_edit_job`` (edits the
rendered job.yaml by hand before the run: the broken variants and the families lora-nb does not render), ``_keep_lora``.
The real end-to-end test (tests/engines/test_engines_real_aitoolkit.py) uses BASE too."""
from pathlib import Path

import yaml

# tiny, fast and deterministic: 4 images x 5 repeats at 64 px, plain AdamW (bitsandbytes' 8-bit AdamW also runs on
# CPU, at about a quarter of the speed), bf16 like lora-nb's default
BASE = dict(engine="ai-toolkit", model_family="flux", dataset="alice", resolution="64", min_bucket_reso=64,
            max_bucket_reso=128, output_name="demo", optimizer_type="AdamW", max_train_epochs=None, seed=42)


def _family(folder: str, arch: str):
    """The SD 1.5 / SDXL recordings were made before lora-nb rendered those families: the FLUX job with another model."""
    def edit(job_yaml: Path) -> None:
        text = job_yaml.read_text()
        job = yaml.safe_load(text)
        proc = job["config"]["process"][0]
        proc["model"] = {"name_or_path": str(Path(proc["model"]["name_or_path"]).parent / folder), "arch": arch, "quantize": False}
        proc["train"]["noise_scheduler"] = "ddpm"
        job_yaml.write_text(text.splitlines()[0] + f" (edited by hand: arch {arch})\n" + yaml.safe_dump(job, sort_keys=False))
    return edit


def _drop_neg(job_yaml: Path) -> None:
    """The sample section as lora-nb rendered it before the fix: no `neg` (SampleConfig's default is False)."""
    text = job_yaml.read_text()
    job = yaml.safe_load(text)
    del job["config"]["process"][0]["sample"]["neg"]
    job_yaml.write_text(text.splitlines()[0] + " (edited by hand: no sample.neg)\n" + yaml.safe_dump(job, sort_keys=False))


def _missing_model(job_yaml: Path) -> None:
    text = job_yaml.read_text()
    job = yaml.safe_load(text)
    job["config"]["process"][0]["model"]["name_or_path"] = str(job_yaml.parents[2] / "models" / "no-such-flux")
    job_yaml.write_text(text.splitlines()[0] + " (edited by hand: a model folder that does not exist)\n" + yaml.safe_dump(job, sort_keys=False))


SCENARIOS = {
    # a whole run: baseline samples, checkpoints at 5 and 10 (only the newest kept), samples at 6 and 12, final LoRA
    "run1": dict(max_train_steps=12, save_every_n_steps=5, save_last_n_epochs=1, trigger_words=["alice"],
                 sample_prompts=["[trigger] portrait"], sample_every_n_steps=6, _keep_lora=True),
    # SIGINT to the process group (lora-nb's Stop) a second after the step-8 checkpoint, then the same job resumed
    "run2_stop": dict(max_train_steps=40, save_every_n_steps=8,
                      _stop=dict(signal="SIGINT", when=r"Saved optimizer to \S+\n", delay=1.0)),
    "run2_resume": dict(max_train_steps=40, save_every_n_steps=8, _resume_from="run2_stop"),
    # SIGTERM to the group: no handler in ai-toolkit
    "run3_sigterm": dict(max_train_steps=40, save_every_n_steps=8,
                         _stop=dict(signal="SIGTERM", when=r"Saved optimizer to \S+\n", delay=1.0)),
    # real errors
    # (lora-nb now refuses a missing local folder before launch: the path is put into the rendered job by hand)
    "run4_missing_model": dict(max_train_steps=4, _edit_job=_missing_model),
    "run4_bad_optimizer": dict(max_train_steps=4, engine_options={"train.optimizer": "adamw16bit"}),
    # what lora-nb rendered before the fixes (kept as regression recordings)
    "run4_cosine_warmup": dict(max_train_steps=4, lr_scheduler="cosine",
                               engine_options={"train.lr_scheduler_params.num_warmup_steps": 2}),
    "run4_sample_no_neg": dict(max_train_steps=4, sample_prompts=["portrait"], sample_every_n_steps=4, _edit_job=_drop_neg),
    # the other families ai-toolkit trains, run directly (lora-nb refuses them for ai-toolkit)
    "run6_sd15": dict(max_train_steps=6, save_every_n_steps=3, _edit_job=_family("sd15-tiny", "sd1")),
    "run6_sdxl": dict(max_train_steps=6, save_every_n_steps=3, _edit_job=_family("sdxl-tiny", "sdxl")),
}
