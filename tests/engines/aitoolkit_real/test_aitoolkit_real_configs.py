"""Property-based acceptance of lora-nb's ai-toolkit job files by the REAL ai-toolkit's own config parsing.

Uses the REAL engine (27a03a9 in the engine cache, scripts/aitoolkit-cpu-setup.sh), never a model: hypothesis draws
TrainingConfigs over what the form allows for engine="ai-toolkit" (FLUX, SD 1.5, SDXL; sizes, batch, steps or
epochs, learning rates, schedules with and without warm-up, optimizers and their args, network type/dim/alpha/conv/
dropout, caption options, buckets, samples, saves, precision, accumulation, noise offset, min-SNR...). Each draw is
either refused by lora-nb with a message and a fix (ConfigError), or rendered by ``render_job`` and then fed, many
files per subprocess so ai-toolkit's imports are paid once, to accept_harness.py: ai-toolkit's get_config, the config
classes BaseSDTrainProcess builds (+ validate_configs), the sample prompts, get_optimizer on a dummy parameter and
get_lr_scheduler with the parameters the trainer passes. Every rendered job must pass all of it.

The incompatibilities this suite found are kept as explicit cases in ``REGRESSIONS`` (each rendered and accepted,
or refused with a fix). Skipped when LORA_NB_REAL_AITOOLKIT_DIR/_PYTHON are not set, except on CI (CI=true), where
a missing engine FAILS.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from lora_nb import TrainingConfig
from lora_nb.engines.aitoolkit import render_job
from lora_nb.errors import ConfigError

HERE = Path(__file__).resolve().parent
DIR = os.environ.get("LORA_NB_REAL_AITOOLKIT_DIR")
PYTHON = os.environ.get("LORA_NB_REAL_AITOOLKIT_PYTHON")
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
FOLDERS = [{"image_dir": "/WS/datasets/alice/5_alice", "num_repeats": 5}]
MODELS = {"flux": "black-forest-labs/FLUX.1-dev", "sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5",
          "sdxl": "stabilityai/stable-diffusion-xl-base-1.0"}
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def engine():
    if not (DIR and PYTHON):
        message = "LORA_NB_REAL_AITOOLKIT_DIR/_PYTHON are not set: run bash scripts/aitoolkit-cpu-setup.sh (scripts/test.sh does)"
        if ON_CI:
            pytest.fail("on CI the real ai-toolkit must be set up: " + message)
        pytest.skip(message)
    return DIR, PYTHON


def accept(engine, jobs: list[dict], tmp: Path) -> list[dict]:
    """Write the jobs as lora-nb does and run them all through the real engine's parsing in ONE subprocess."""
    paths = []
    for i, job in enumerate(jobs):
        p = tmp / f"job{i}.yaml"
        p.write_text("# rendered by lora-nb\n" + yaml.safe_dump(job, sort_keys=False, allow_unicode=True), encoding="utf-8")
        paths.append(str(p))
    checkout, python = engine
    out = subprocess.run([python, str(HERE / "accept_harness.py"), checkout, *paths], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(paths), out.stderr[-3000:]
    return results


def render(cfg: TrainingConfig) -> dict:
    total = cfg.max_train_steps or (cfg.max_train_epochs or 1) * 20 // cfg.train_batch_size or 1
    per_epoch = None if cfg.max_train_steps else max(1, 20 // cfg.train_batch_size)
    return render_job(cfg, FOLDERS, total, per_epoch, Path("/RUN/output"), Path("/RUN/logs"))


OPTIMIZER_ARGS = st.lists(st.sampled_from(["weight_decay=0.01", "betas=0.9,0.99", "eps=1e-8", "decouple=True",
                                           "relative_step=False", "scale_parameter=False", "d_coef=2"]),
                          max_size=2, unique=True)


@st.composite
def configs(draw) -> dict:
    fam = draw(st.sampled_from(["flux", "sd15", "sdxl"]))
    steps_mode = draw(st.booleans())
    kw = dict(engine="ai-toolkit", model_family=fam, dataset="alice", pretrained_model_name_or_path=MODELS[fam],
              output_name="demo", min_bucket_reso=64, max_bucket_reso=2048)
    side = draw(st.sampled_from([256, 512, 768, 1024]))
    kw["resolution"] = draw(st.sampled_from([str(side), f"{side},{side // 2 * 3 // 64 * 64 or 64}"]))
    kw["train_batch_size"] = draw(st.integers(1, 8))
    kw["gradient_accumulation_steps"] = draw(st.integers(1, 4))
    if steps_mode:
        kw.update(max_train_epochs=None, max_train_steps=draw(st.integers(1, 5000)))
        kw["save_every_n_steps"] = draw(st.none() | st.integers(1, 1000))
        kw["save_every_n_epochs"] = None
    else:
        kw.update(max_train_epochs=draw(st.integers(1, 50)), save_every_n_epochs=draw(st.none() | st.integers(1, 5)))
    kw["save_last_n_epochs"] = draw(st.none() | st.integers(1, 10))
    kw["save_precision"] = draw(st.sampled_from(["bf16", "fp16", "float", None]))
    kw["mixed_precision"] = draw(st.sampled_from(["bf16", "fp16", "no"]))
    kw["learning_rate"] = draw(st.sampled_from([1e-5, 5e-5, 1e-4, 4e-4, 1e-3, 1.0]))
    kw["unet_lr"] = draw(st.none() | st.sampled_from([5e-5, 2e-4]))
    kw["lr_scheduler"] = draw(st.sampled_from(["constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts",
                                               "polynomial"]))
    kw["lr_warmup_steps"] = draw(st.sampled_from([0, 0, 10, 100, 0.05, 0.1]))
    kw["optimizer_type"] = draw(st.sampled_from(["AdamW", "AdamW8bit", "Lion", "Lion8bit", "Prodigy", "Adafactor",
                                                 "DAdaptAdam", "DAdaptation", "DAdaptLion", "PagedAdamW8bit"]))
    kw["optimizer_args"] = draw(OPTIMIZER_ARGS)
    kw["network_type"] = draw(st.sampled_from(["lora", "lora", "locon", "lokr", "loha"]))
    kw["network_dim"] = draw(st.sampled_from([1, 4, 8, 16, 32, 64, 128]))
    kw["network_alpha"] = draw(st.sampled_from([0.5, 1.0, 4.0, 8.0, 16.0, 64.0]))
    if draw(st.booleans()):
        kw.update(conv_dim=draw(st.sampled_from([4, 8, 16])), conv_alpha=draw(st.none() | st.sampled_from([1.0, 4.0])))
    kw["network_dropout"] = draw(st.none() | st.sampled_from([0.0, 0.1]))
    kw["caption_extension"] = draw(st.sampled_from([".txt", ".caption", "txt"]))
    kw["shuffle_caption"] = draw(st.booleans())
    kw["keep_tokens"] = draw(st.integers(0, 3))
    kw["caption_dropout_rate"] = draw(st.sampled_from([0.0, 0.05, 0.5]))
    kw["flip_aug"] = draw(st.booleans())
    kw["enable_bucket"] = draw(st.booleans())
    kw["cache_latents_to_disk"] = draw(st.booleans())
    kw["gradient_checkpointing"] = draw(st.booleans())
    kw["fp8_base"] = draw(st.booleans()) if kw["mixed_precision"] != "no" else False
    kw["noise_offset"] = draw(st.none() | st.sampled_from([0.05, 0.1]))
    kw["min_snr_gamma"] = draw(st.none() | st.sampled_from([1.0, 5.0]))
    kw["max_grad_norm"] = draw(st.sampled_from([0.0, 1.0]))
    kw["seed"] = draw(st.none() | st.integers(0, 2**32 - 1))
    kw["trigger_words"] = draw(st.sampled_from([[], ["alice"], ["alice", "bob"]]))
    kw["log_with"] = draw(st.sampled_from(["tensorboard", None]))
    if draw(st.booleans()):
        kw["sample_prompts"] = draw(st.lists(st.sampled_from(["a photo of [trigger]", "alice, portrait\nsmiling",
                                                              "x --n blurry --w 512 --h 768 --s 10 --l 3.5 --d 7"]),
                                             min_size=1, max_size=3))
        if steps_mode:
            kw["sample_every_n_steps"] = draw(st.integers(1, 500))
        else:
            kw["sample_every_n_epochs"] = draw(st.integers(1, 5))
    return kw


# found by this suite (or by the recordings it reproduces); each must be accepted, or refused with a fix
REGRESSIONS = {
    # recorded run4_cosine_warmup: a warm-up on schedules ai-toolkit builds from torch -> refused with the fix
    "cosine_warmup_refused": dict(lr_scheduler="cosine", lr_warmup_steps=10),
    # constant_with_warmup renders num_warmup_steps (diffusers' schedule takes it)
    "constant_with_warmup": dict(lr_scheduler="constant_with_warmup", lr_warmup_steps=0.1),
    # recorded run4_sample_no_neg: samples must carry neg: ''
    "sample_neg": dict(sample_prompts=["p"], sample_every_n_steps=5),
    "sd15_basic": dict(model_family="sd15", pretrained_model_name_or_path=MODELS["sd15"]),
    # found here: Lion and DAdapt* need packages ai-toolkit's requirements.txt does not install -> refused with a fix
    "lion_refused": dict(optimizer_type="Lion"),
    "dadapt_refused": dict(optimizer_type="DAdaptAdam"),
    # found here: optimizer args another optimizer's __init__ rejects ("unexpected keyword argument") -> refused
    "adafactor_betas_refused": dict(optimizer_type="Adafactor", optimizer_args=["betas=0.9,0.99"]),
    "adamw_relative_step_refused": dict(optimizer_args=["relative_step=False"]),
    # found here: toolkit/optimizer.py passes eps=1e-6 itself ("got multiple values for keyword argument 'eps'")
    "adamw_eps_refused": dict(optimizer_args=["eps=1e-8"]),
    # found here: betas=0.9,0.99 was rendered as the text '0.9,0.99'; now a list, as sd-scripts reads it
    "adamw_betas": dict(optimizer_args=["betas=0.9,0.99", "weight_decay=0.01"]),
    "prodigy_args": dict(optimizer_type="Prodigy", learning_rate=1.0, optimizer_args=["d_coef=2", "decouple=True"]),
    "sdxl_basic": dict(model_family="sdxl", pretrained_model_name_or_path=MODELS["sdxl"], sample_prompts=["p"], sample_every_n_steps=5),
}


def regression_cfg(**kw) -> dict:
    base = dict(engine="ai-toolkit", model_family="flux", dataset="alice", pretrained_model_name_or_path=MODELS["flux"],
                output_name="demo", max_train_epochs=None, max_train_steps=20, optimizer_type="AdamW")
    return {**base, **kw}


def build(kw: dict):
    """TrainingConfig + job, or the ConfigError lora-nb refuses it with (which must carry a fix or a clear message)."""
    try:
        cfg = TrainingConfig(**kw)
        return render(cfg), None
    except ConfigError as e:
        assert str(e).strip(), kw
        return None, e


def test_regression_cases_accepted_or_refused(engine, tmp_path):
    """Real engine: the incompatibilities found so far are refused by lora-nb with a fix, or render jobs ai-toolkit's
    parsing accepts; and the harness itself reproduces the recorded failures (tests/fixtures/aitoolkit/configs)."""
    jobs, names = [], []
    for name, change in REGRESSIONS.items():
        job, err = build(regression_cfg(**change))
        if name.endswith("_refused"):
            assert job is None and err is not None and err.fix, name
        else:
            assert err is None, (name, err)
            jobs.append(job)
            names.append(name)
    rec = HERE.parents[1] / "fixtures" / "aitoolkit" / "configs"
    recorded = {n: yaml.safe_load((rec / f"{n}.job.yaml").read_text())
                for n in ("run4_cosine_warmup", "run4_bad_optimizer", "run4_sample_no_neg", "run6_sd15", "run6_sdxl", "run1")}
    results = accept(engine, jobs + list(recorded.values()), tmp_path)
    for name, r in zip(names, results):
        assert r["ok"], (name, r)
    got = dict(zip(recorded, results[len(jobs):]))
    assert not got["run4_cosine_warmup"]["ok"] and "num_warmup_steps" in got["run4_cosine_warmup"]["error"]
    assert not got["run4_bad_optimizer"]["ok"] and "adamw16bit" in got["run4_bad_optimizer"]["error"]
    assert not got["run4_sample_no_neg"]["ok"] and got["run4_sample_no_neg"]["stage"] == "sample_prompts"
    assert got["run6_sd15"]["ok"] and got["run6_sdxl"]["ok"] and got["run1"]["ok"]


BATCH = 70


@settings(max_examples=3, deadline=None, database=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture,
                                               HealthCheck.large_base_example])
@given(st.lists(configs(), min_size=BATCH, max_size=BATCH))
def test_rendered_configs_are_accepted_by_the_real_engine(engine, tmp_path_factory, batch):
    """Real engine (parsing only): every drawn config lora-nb renders passes ai-toolkit's own config loading, config
    classes, optimizer and scheduler factories; the rest are refused by lora-nb with a ConfigError."""
    jobs, kept = [], []
    refused = 0
    for kw in batch:
        job, err = build(kw)
        if job is None:
            refused += 1
            continue
        jobs.append(job)
        kept.append(kw)
    assert jobs, "every draw was refused"
    results = accept(engine, jobs, tmp_path_factory.mktemp("accept"))
    bad = [(kw, r["stage"], r["error"]) for kw, r in zip(kept, results) if not r["ok"]]
    assert not bad, bad[:5]
