"""What lora-nb renders and launches for kohya, checked by the REAL sd-scripts (real engine code, no model weights).

Uses the REAL engine: sd-scripts 48d368f extracted by scripts/kohya-cpu-setup.sh into its own venv
(``LORA_NB_REAL_KOHYA_DIR``; skipped without it, a failure on CI). For each config, lora-nb renders
train.toml + dataset.toml and the launch command exactly as a job would (``KohyaEngine.prepare``);
``kohya_harness.py``, running in the engine venv, feeds that command line to accelerate's own launch
parser and to the script's own parser, TOML reader, argument checks, dataset blueprint, bucket manager,
accelerator, optimizer, data loader and LR scheduler, and stops where the model would be loaded.
Then: no error, no TOML key the script does not declare or of the wrong type, no engine warning
outside a short list of harmless ones, and the engine's own step count, steps per epoch, epochs,
buckets and image counts equal lora-nb's ``steps(cfg, ws)``.

Configs come from hypothesis over the whole TrainingConfig space the form allows (all four
scripts, both launchers, 1 to 8 processes, datasets of random image sizes in ``N_name`` folders,
subsets and regularisation folders). Configs that lora-nb refuses are not sent (the refusal is the
behaviour); every mismatch found was fixed in lora_nb/engines/kohya.py or lora_nb/config/model.py and
is kept below as an explicit regression case. ``LORA_NB_REAL_EXAMPLES`` sets the examples per family
(default 40); on CI the examples are derandomized, so every run checks the same configs.
"""
from __future__ import annotations

import io
import itertools
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

import lora_nb
from lora_nb import TrainingConfig
from lora_nb.config.model import NETWORK_TYPES, OPTIMIZERS, SCHEDULERS
from lora_nb.engines import get_engine
from lora_nb.engines.hints import match_hint
from lora_nb.errors import ConfigError, EngineError

from kohya_env import ON_CI, Harness, options, real_kohya_dir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = int(os.environ.get("LORA_NB_REAL_EXAMPLES", "40"))
SCRIPT = {"sd15": "train_network.py", "sd2": "train_network.py", "sdxl": "sdxl_train_network.py",
          "flux": "flux_train_network.py", "sd3": "sd3_train_network.py"}

# engine log records that are harmless here (each was read in the engine source)
HARMLESS = re.compile("|".join([
    r"no regularization images",                                   # train_util: a dataset without reg images
    r"The following values were not passed to `accelerate launch`",  # accelerate: defaults for num_machines, dynamo
    r"learning rate is too low\. If using D-Adaptation or Prodigy", r"recommend option: lr=1\.0",
    r"when multiple learning rates are specified with dadaptation",
    r"learning rate is used as initial_lr", r"unet_lr and text_encoder_lr are ignored",  # Adafactor (relative_step)
    r"because max_grad_norm is set, clip_grad_norm is enabled", r"constant_with_warmup will be good",
    r"clip_threshold=1\.0 will be good",
    r"min_bucket_reso and max_bucket_reso are ignored if bucket_no_upscale is set",
    r"cache_text_encoder_outputs(_to_disk)? is enabled",            # we render both keys together on purpose
    r"neither caption file nor class tokens are found",             # never: every image has a caption (kept for clarity)
    r"some of reg images are not used",                              # more reg images than train images x repeats
    r"max_token_length is not used in (Flux|SD3|Flux/SD3) training",  # an engine_options key the DiT scripts ignore
]))
# optional packages the engine imports only when asked, missing from this CPU venv (they are not in sd-scripts'
# requirements.txt, or are CUDA-only): the engine then fails with these messages, and lora-nb must hint the fix
MISSING_OK = re.compile(r"No bitsandbytes|No dadaptation|No xformers|No module named 'lycoris'")


# -- the engine, the harness process and a workspace ---------------------------------------------
@pytest.fixture(scope="module")
def kohya() -> Path:
    return real_kohya_dir()


@pytest.fixture(scope="module")
def harness(kohya):
    log_dir = REPO / "test-artifacts" if (REPO / "test-artifacts").is_dir() else Path(os.environ.get("TMPDIR", "/tmp"))
    h = Harness(kohya, log_dir / "kohya-harness.log")
    yield h
    h.close()


@pytest.fixture(scope="module")
def rws(kohya, tmp_path_factory):
    ws = lora_nb.Workspace(tmp_path_factory.mktemp("real-ws"))
    ws.settings.set("kohya_dir", str(kohya / "sd-scripts"))
    ws.settings.set("kohya_python", str(kohya / "venv" / "bin" / "python"))
    models = ws.root / "models"
    models.mkdir(exist_ok=True)
    for name in ("base.safetensors", "clip_l.safetensors", "clip_g.safetensors", "t5xxl.safetensors", "ae.safetensors"):
        (models / name).write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")   # never loaded: the harness stops before
    return ws


_PNG: dict[tuple[int, int], bytes] = {}
_IDS = itertools.count()


def _png(w: int, h: int) -> bytes:
    if (w, h) not in _PNG:
        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (w, h), (w % 256, h % 256, 90)).save(buf, "PNG")
        _PNG[(w, h)] = buf.getvalue()
    return _PNG[(w, h)]


def make_dataset(ws, folders: list[tuple[str, list[tuple[int, int]]]]) -> str:
    """A new workspace dataset with captioned images of the given sizes in the given folders."""
    name = f"d{next(_IDS)}"
    ds = ws.datasets.create(name)
    for folder, sizes in folders:
        items = []
        for i, (w, h) in enumerate(sizes):
            items += [(f"img{i}.png", _png(w, h)), (f"img{i}.txt", f"alice, tag{i}, photo".encode())]
        ds.add_images(items, subset=folder or None)
    return name


def model_paths(ws, family: str) -> dict:
    m = ws.root / "models"
    d = {"pretrained_model_name_or_path": str(m / "base.safetensors")}
    if family in ("flux", "sd3"):
        d.update(clip_l=str(m / "clip_l.safetensors"), t5xxl=str(m / "t5xxl.safetensors"))
    if family == "flux":
        d["ae"] = str(m / "ae.safetensors")
    if family == "sd3":
        d["clip_g"] = str(m / "clip_g.safetensors")
    return d


# -- checking one config against the real engine ---------------------------------------------------
def render(ws, cfg: TrainingConfig, launcher: str, run_id: str):
    ws.settings.set("kohya_launcher", launcher)
    return get_engine("kohya", ws).prepare(cfg, ws.runs_dir / run_id)


def accepted_by_engine(ws, harness, cfg: TrainingConfig, launcher: str = "accelerate") -> dict:
    """Render, run the harness on the exact launch line, assert acceptance and the same step count; the result."""
    run_id = f"r{next(_IDS)}"
    plan = render(ws, cfg, launcher, run_id)
    res = harness.run(run_id, plan.argv)
    if currently_in_test_context():   # hypothesis prints it with a failing example
        note(f"train.toml:\n{plan.files['training'].read_text()}\ndataset.toml:\n{plan.files['dataset'].read_text()}")
    assert res["ok"], f"the real engine rejected it at '{res['stage']}' ({res.get('where')}): {res.get('error')}\n" \
                      f"{res.get('traceback', '')[-1500:]}\nTOML problems: {res['toml_problems']}"
    unexpected = [w for w in res["warnings"] if not HARMLESS.search(w)]
    assert not unexpected, f"the engine warned: {unexpected}"
    for missing in res["missing_packages"]:
        assert MISSING_OK.search(missing), missing
        assert match_hint(missing) is not None, f"lora-nb has no hint for the engine's error: {missing}"
    est = lora_nb.steps(cfg, ws)
    ours = {"total_steps": est.total_steps, "steps_per_epoch": est.steps_per_epoch, "epochs": est.epochs,
            "num_train_images": est.num_train_images, "reg_samples_per_epoch": est.num_reg_images,
            "buckets": {f"{w}x{h}": n for (w, h), n in est.buckets.items() if n}}
    theirs = {k: res[k] for k in ours if k in res}
    # the engine's num_reg_images counts reg images x repeats; the reg samples it uses per epoch are in its buckets
    theirs["reg_samples_per_epoch"] = sum(res["buckets"].values()) - res["num_train_images"]
    assert theirs == ours, f"step count differs: engine {theirs} != lora-nb {ours}"
    launch = res["launch"]
    if launcher == "accelerate":
        assert launch["num_processes"] == cfg.num_processes and launch["multi_gpu"] == (cfg.num_processes > 1)
        assert launch["mixed_precision"] == launch["env_mixed_precision"] == cfg.mixed_precision
        assert launch["launcher"] == ("multi_gpu" if cfg.num_processes > 1 else "simple")
        if cfg.num_processes > 1:
            assert launch["nproc_per_node"] == str(cfg.num_processes)
            assert launch["torchrun_args"] == ["--config_file", str(plan.files["training"])]
    else:
        assert launch == {"launcher": "python", "num_processes": 1}
    assert res["script"] == SCRIPT[cfg.model_family]
    return res


# -- the config space the form allows ----------------------------------------------------------------
SIDES = [256, 320, 384, 448, 512, 576, 640, 768, 832, 896, 1024, 1152, 1280]
COMMON_SIZES = [(512, 512), (768, 512), (512, 768), (1024, 1024), (1216, 832), (832, 1216), (640, 480), (300, 700),
                (64, 64), (96, 64), (1536, 640), (448, 576), (2048, 1536), (1000, 1000), (576, 448)]
OPT_ARGS = {
    "AdamW": ["weight_decay=0.01", "betas=(0.9,0.99)", "eps=1e-08"], "AdamW8bit": ["weight_decay=0.01", "betas=(0.9,0.99)"],
    "PagedAdamW8bit": ["weight_decay=0.01"], "Lion": ["weight_decay=0.01", "betas=(0.9,0.99)"], "Lion8bit": ["weight_decay=0.01"],
    "Prodigy": ["decouple=True", "weight_decay=0.01", "d_coef=2", "use_bias_correction=True", "safeguard_warmup=True"],
    "Adafactor": ["scale_parameter=False", "relative_step=False", "warmup_init=False"],
    "DAdaptAdam": ["decouple=True", "weight_decay=0.01"], "DAdaptation": ["decouple=True"], "DAdaptLion": ["weight_decay=0.01"],
    "SGDNesterov": ["weight_decay=0.01"], "SGDNesterov8bit": ["weight_decay=0.01"],
    "AdamWScheduleFree": ["weight_decay=0.01", "warmup_steps=10"], "RAdamScheduleFree": ["weight_decay=0.01"],
    "torch.optim.SGD": ["momentum=0.9", "weight_decay=0.0001"], "torch.optim.Adam": ["weight_decay=0.01"],
}
SAMPLERS = ["ddim", "pndm", "lms", "euler", "euler_a", "heun", "dpm_2", "dpm_2_a", "dpmsolver", "dpmsolver++", "dpmsingle",
            "k_lms", "k_euler", "k_euler_a", "k_dpm_2", "k_dpm_2_a", "Euler a", "DPM++ 2M"]   # the last two: A1111 names users type
ENGINE_OPTIONS = [{}, {}, {}, {"max_token_length": 225}, {"max_token_length": "225"}, {"vae_batch_size": 4},
                  {"vae_batch_size": 2.0}, {"loss_type": "huber"}, {"loss_type": "l3"}, {"lowram": True}, {"lowram": "true"},
                  {"caption_separator": ";"}, {"ip_noise_gamma": 0.1}, {"multires_noise_iterations": 6, "multires_noise_discount": 0.3}]


# hypothesis favours boundary values (0, the first and last element): these put the True in the middle
SOMETIMES = st.sampled_from([False, False, True, False, False])
RARELY = st.sampled_from([False, False, False, False, True, False, False, False, False])


def _families_ok(field: str, family: str) -> bool:
    extra = TrainingConfig.model_fields[field].json_schema_extra or {}
    return family in extra.get("families", [family])


@st.composite
def dataset_specs(draw, family: str):
    sizes = st.lists(st.one_of(st.sampled_from(COMMON_SIZES), st.tuples(st.integers(64, 1600), st.integers(64, 1600))),
                     min_size=1, max_size=4)
    if draw(st.booleans()):   # a dataset name: N_name folders (repeats N), a plain top folder, maybe reg/N_person
        folders = [(f"{draw(st.integers(1, 12))}_alice", draw(sizes))]
        if draw(st.booleans()):
            folders.append((f"{draw(st.integers(1, 12))}_style", draw(sizes)))
        if draw(SOMETIMES):
            folders.append(("", draw(sizes)))
        if draw(SOMETIMES):
            folders.append((f"reg/{draw(st.integers(1, 3))}_person", draw(sizes)))
        return {"layout": "name", "folders": folders}
    subsets = [("a", draw(sizes), draw(st.integers(1, 20)), False)]
    if draw(st.booleans()):
        subsets.append(("b", draw(sizes), draw(st.integers(1, 20)), False))
    if draw(SOMETIMES):
        subsets.append(("reg", draw(sizes), draw(st.integers(1, 3)), True))
    return {"layout": "subsets", "subsets": subsets}


@st.composite
def config_specs(draw, family: str):
    """(TrainingConfig keyword arguments without dataset and models, dataset spec, launcher)."""
    d: dict = {"model_family": family}
    side = st.sampled_from(SIDES)
    d["resolution"] = str(draw(side)) if draw(st.booleans()) else f"{draw(side)},{draw(side)}"
    sides = [int(s) for s in d["resolution"].split(",")]
    d["enable_bucket"] = draw(st.booleans())
    steps = {"sd15": [64, 128], "sd2": [64, 128], "flux": [64, 64, 128, 64, 32, 64]}.get(family, [32, 64, 64, 96, 128])
    step = d["bucket_reso_steps"] = draw(st.sampled_from(steps))
    # mostly limits that fit (multiples of the step around the resolution), sometimes anything the form takes
    fits_lo = [k * step for k in range(1, 9) if k * step <= min(sides) and k * step >= 64] or [step]
    fits_hi = [k * step for k in range(1, 33) if max(sides) <= k * step <= 4096][:6] or [4096 - 4096 % step]
    d["min_bucket_reso"] = draw(st.one_of(st.sampled_from(fits_lo), st.sampled_from(fits_lo),
                                          st.sampled_from([64, 100, 256, 512, 700])))
    d["max_bucket_reso"] = draw(st.one_of(st.sampled_from(fits_hi), st.sampled_from(fits_hi),
                                          st.sampled_from([512, 1000, 1024, 2048])))
    d["bucket_no_upscale"] = draw(st.booleans())
    d["num_repeats"] = draw(st.integers(1, 20))
    d["shuffle_caption"] = draw(st.booleans())
    d["keep_tokens"] = draw(st.integers(0, 3))
    d["caption_dropout_rate"] = draw(st.sampled_from([0.0, 0.0, 0.05, 0.5]))
    d["caption_tag_dropout_rate"] = draw(st.sampled_from([0.0, 0.0, 0.1]))
    d["flip_aug"] = draw(st.booleans())
    if family in ("flux", "sd3"):   # LyCORIS is refused for the DiT families (kept, rarely, to see the refusal)
        d["network_type"] = draw(st.sampled_from(NETWORK_TYPES)) if draw(RARELY) else "lora"
    else:
        d["network_type"] = draw(st.one_of(st.just("lora"), st.just("lora"), st.sampled_from(NETWORK_TYPES)))
    d["network_dim"] = draw(st.one_of(st.sampled_from([1, 4, 8, 16, 32, 64, 128]), st.integers(1, 1024)))
    d["network_alpha"] = draw(st.one_of(st.sampled_from([0.5, 1.0, 4.0, 8.0, 16.0, 64.0]), st.floats(0.01, 1024.0)))
    if draw(SOMETIMES):
        d["conv_dim"] = draw(st.integers(1, 64))
        d["conv_alpha"] = draw(st.one_of(st.none(), st.floats(0.5, 64.0)))
    d["network_dropout"] = draw(st.one_of(st.none(), st.sampled_from([0.0, 0.1, 0.5])))
    d["network_args"] = draw(st.lists(st.sampled_from(["rank_dropout=0.1", "module_dropout=0.05", "loraplus_lr_ratio=4"]), unique=True, max_size=2))
    d["network_train_unet_only"] = draw(st.booleans())
    opt = draw(st.sampled_from([*OPTIMIZERS, "torch.optim.SGD", "torch.optim.Adam"]))
    d["optimizer_type"] = opt
    d["optimizer_args"] = draw(st.lists(st.sampled_from(OPT_ARGS.get(opt, ["weight_decay=0.01"])), unique=True, max_size=2))
    if draw(RARELY):
        d["optimizer_args"].append(draw(st.sampled_from(["weight_decay=abc", "betas=0.9,0.99=1", "eps="])))
    d["learning_rate"] = draw(st.one_of(st.sampled_from([1e-6, 1e-5, 1e-4, 5e-4, 1e-3, 0.5, 1.0]), st.floats(1e-8, 10.0)))
    d["unet_lr"] = draw(st.one_of(st.none(), st.sampled_from([1e-5, 1e-4, 1.0])))
    d["text_encoder_lr"] = draw(st.one_of(st.none(), st.sampled_from([0.0, 1e-5, 5e-5, 1.0])))
    d["lr_scheduler"] = draw(st.sampled_from(SCHEDULERS))
    d["lr_warmup_steps"] = 0 if d["lr_scheduler"] == "constant" else draw(st.one_of(st.just(0), st.integers(1, 500), st.floats(0.01, 0.99)))
    d["lr_scheduler_num_cycles"] = draw(st.integers(1, 5))
    d["lr_scheduler_power"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
    d["max_grad_norm"] = draw(st.sampled_from([0.0, 1.0, 2.5]))
    if draw(st.booleans()):
        d.update(max_train_epochs=draw(st.integers(1, 30)), max_train_steps=None)
    else:
        d.update(max_train_epochs=None, max_train_steps=draw(st.integers(1, 5000)))
    d["train_batch_size"] = draw(st.integers(1, 8))
    d["gradient_accumulation_steps"] = draw(st.integers(1, 4))
    d["num_processes"] = draw(st.sampled_from([1, 1, 2, 3, 4, 8]))
    d["mixed_precision"] = draw(st.sampled_from(["no", "fp16", "bf16"]))
    d["save_precision"] = draw(st.sampled_from([None, "float", "fp16", "bf16"]))
    d["full_bf16"] = d["mixed_precision"] == "bf16" and draw(st.booleans())
    d["full_fp16"] = d["mixed_precision"] == "fp16" and draw(st.booleans())
    d["gradient_checkpointing"] = draw(st.booleans())
    d["cache_latents"] = draw(st.booleans())
    d["cache_latents_to_disk"] = draw(st.booleans())
    if _families_ok("cache_text_encoder_outputs", family) and draw(st.booleans()):
        d.update(cache_text_encoder_outputs=True, network_train_unet_only=True, shuffle_caption=False, caption_dropout_rate=0.0,
                 caption_tag_dropout_rate=0.0)
    d["sdpa"] = draw(st.booleans())
    d["xformers"] = not d["sdpa"] and draw(st.booleans())
    d["fp8_base"] = d["mixed_precision"] != "no" and draw(SOMETIMES)
    if _families_ok("blocks_to_swap", family):
        d["blocks_to_swap"] = draw(st.one_of(st.none(), st.integers(1, 30)))
    d["max_data_loader_n_workers"] = draw(st.integers(0, 8))
    d["persistent_data_loader_workers"] = draw(st.booleans())
    d["noise_offset"] = draw(st.one_of(st.none(), st.sampled_from([0.0, 0.05, 0.1])))
    d["min_snr_gamma"] = draw(st.one_of(st.none(), st.sampled_from([1.0, 5.0])))
    if _families_ok("clip_skip", family):
        d["clip_skip"] = draw(st.one_of(st.none(), st.integers(1, 4)))
    d["seed"] = draw(st.one_of(st.none(), st.integers(0, 2**32 - 1)))
    d["prior_loss_weight"] = draw(st.sampled_from([0.0, 0.5, 1.0]))
    if family == "sd2":
        d["v_parameterization"] = draw(st.booleans())
    if family == "flux":
        d["timestep_sampling"] = draw(st.sampled_from(["sigma", "uniform", "sigmoid", "shift", "flux_shift"]))
        d["guidance_scale"] = draw(st.sampled_from([1.0, 3.5]))
        d["model_prediction_type"] = draw(st.sampled_from(["raw", "additive", "sigma_scaled"]))
    if family in ("flux", "sd3"):
        d["discrete_flow_shift"] = draw(st.sampled_from([1.0, 3.0, 3.1582]))
    d["output_name"] = draw(st.sampled_from(["lora", "my-lora_v2", "alice"]))
    d["save_every_n_epochs"] = draw(st.one_of(st.none(), st.integers(1, 5)))
    d["save_every_n_steps"] = draw(st.one_of(st.none(), st.integers(1, 500)))
    d["save_last_n_epochs"] = draw(st.one_of(st.none(), st.integers(1, 3)))
    d["save_state"] = draw(st.booleans())
    d["save_model_as"] = draw(st.sampled_from(["safetensors", "ckpt", "pt"]))
    d["training_comment"] = draw(st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)))
    if draw(st.booleans()):
        d["sample_prompts"] = draw(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30), min_size=1, max_size=2))
        d["sample_every_n_epochs"] = draw(st.one_of(st.none(), st.integers(1, 3)))
        d["sample_every_n_steps"] = draw(st.one_of(st.none(), st.integers(1, 100)))
    d["sample_sampler"] = draw(st.sampled_from(SAMPLERS))
    d["log_with"] = draw(st.sampled_from(["tensorboard", None]))
    d["engine_options"] = dict(draw(st.sampled_from(ENGINE_OPTIONS)))
    if d["lr_scheduler"] == "piecewise_constant" and not draw(RARELY):
        d["engine_options"]["lr_scheduler_args"] = [draw(st.sampled_from(["step_rules='1:10,0.1:20,0.01'", "step_rules='1:100,0.5'"]))]
    if d["lr_scheduler"] in ("cosine_with_min_lr", "warmup_stable_decay") and not draw(RARELY):
        d["engine_options"]["lr_scheduler_min_lr_ratio"] = draw(st.sampled_from([0.0, 0.1, 0.5]))
    launcher = "python" if d["num_processes"] == 1 and draw(SOMETIMES) else "accelerate"
    if draw(RARELY):
        launcher = "python"   # also with several processes: lora-nb must refuse that (no multi-GPU without accelerate)
    return d, draw(dataset_specs(family)), launcher


def build(ws, family: str, spec: dict, dspec: dict) -> TrainingConfig:
    if dspec["layout"] == "name":
        dataset = make_dataset(ws, dspec["folders"])
    else:
        name = make_dataset(ws, [(f, sizes) for f, sizes, _, _ in dspec["subsets"]])
        dataset = [{"dataset": name, "folder": f, "num_repeats": r, "is_reg": reg} for f, _, r, reg in dspec["subsets"]]
    return TrainingConfig(engine="kohya", dataset=dataset, **model_paths(ws, family), **spec)


def refused(ws, cfg: TrainingConfig) -> None:
    """What ws.jobs.submit_training checks before queueing (the dataset preflight) raises like it does."""
    from lora_nb.engines.launch import preflight

    reasons = preflight(ws, cfg)
    if reasons:
        raise ConfigError("The run cannot start: " + reasons[0], fix=" ".join(reasons[1:3]) or "")


def _one_sentence(e: Exception) -> None:
    """A refusal is one clear sentence plus its fix (lora_nb.errors types carry ``fix``)."""
    assert isinstance(e, (ConfigError, EngineError)), e
    assert str(e).strip(), e
    assert getattr(e, "fix", None) or str(e).rstrip().endswith("."), e   # preflight reasons carry their fix in the sentence


@pytest.mark.parametrize("family", ["sd15", "sd2", "sdxl", "flux", "sd3"])
def test_real_engine_accepts_what_lora_nb_renders(family, rws, harness):
    """Property: every config lora-nb accepts (for every family and launcher) is accepted by the real engine's
    own parsers, checks, dataset/bucket code, optimizer, data loader and scheduler, with the same step count."""
    stats = {"sent": 0, "refused": 0}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=ON_CI, database=None if ON_CI else settings.default.database,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(config_specs(family))
    def check(drawn):
        spec, dspec, launcher = drawn
        try:
            cfg = build(rws, family, spec, dspec)
            refused(rws, cfg)
            render(rws, cfg, launcher, f"p{next(_IDS)}")   # prepare() may refuse too (before anything is queued)
        except (ConfigError, EngineError) as e:
            _one_sentence(e)
            stats["refused"] += 1
            event(f"refused: {str(e)[:70]}")
            return
        stats["sent"] += 1
        event(f"launcher {launcher}, {cfg.num_processes} process(es)")
        accepted_by_engine(rws, harness, cfg, launcher)

    check()
    print(f"{family}: {stats['sent']} configs checked by the real engine, {stats['refused']} refused by lora-nb")
    assert stats["sent"] >= EXAMPLES // 4, f"too few configs reached the engine: {stats}"


def test_our_option_list_is_the_real_parsers(kohya):
    """kohya_options.json (what render_training and engine_options are checked against) equals the REAL scripts'
    argparse options: same names, kinds, list-ness and choices (real engine: the four setup_parser() functions)."""
    from lora_nb.engines.kohya import SCRIPTS, accepted_keys, _options

    real = options(kohya)
    ours = _options()
    for family, (script, _, groups) in SCRIPTS.items():
        theirs = real[script]
        keys = accepted_keys(family)
        assert sorted(set(theirs) - keys - {"config_file", "output_config"}) == [], f"{script}: options missing from kohya_options.json"
        assert sorted(keys - set(theirs)) == [], f"{script}: options in kohya_options.json the script does not have"
        for key in keys:
            spec = next(ours[g][key] for g in ("common", *groups) if key in ours[g])
            t = theirs[key]
            assert spec["kind"] == t["kind"], (script, key, spec, t)
            assert bool(spec.get("nargs")) == bool(t.get("nargs")), (script, key, spec, t)
            if "choices" in t:   # kohya_options.json writes the choices of int options as strings
                assert [str(c) for c in t["choices"] if c is not None] == [str(c) for c in spec.get("choices", []) if c is not None], (script, key)


# -- regression cases: each mismatch the property suite found, kept explicitly -------------------------
def _cfg(ws, family="sd15", sizes=((512, 512), (768, 512), (300, 700)), **kw) -> TrainingConfig:
    base = dict(engine="kohya", model_family=family, dataset=make_dataset(ws, [("5_alice", list(sizes))]), max_train_epochs=2,
                **model_paths(ws, family))
    base.update(kw)
    return TrainingConfig(**base)


def test_workers_zero_is_accepted_by_the_real_engine(rws, harness):
    """Regression (issue 13, real engine): max_data_loader_n_workers=0 with the default 'keep workers' used to
    render persistent_data_loader_workers = true -> ValueError: persistent_workers option needs num_workers > 0."""
    cfg = _cfg(rws, max_data_loader_n_workers=0, persistent_data_loader_workers=True)
    accepted_by_engine(rws, harness, cfg)
    toml = render(rws, cfg, "accelerate", f"w{next(_IDS)}").files["training"].read_text()
    assert "persistent_data_loader_workers" not in toml and "max_data_loader_n_workers = 0" in toml


def raw_engine_result(ws, harness, cfg: TrainingConfig, train: dict | None = None, dataset: dict | None = None,
                      launcher: str = "accelerate") -> dict:
    """The real engine's verdict on ``cfg`` rendered by lora-nb and then edited by hand (``train``: keys of the training
    TOML, None removes one; ``dataset``: keys of the dataset table): how the config reached the engine before a fix."""
    import tomllib

    import tomli_w

    run_id = f"raw{next(_IDS)}"
    plan = render(ws, cfg, launcher, run_id)
    t = tomllib.loads(plan.files["training"].read_text())
    for key, value in (train or {}).items():
        for section in t.values():
            if isinstance(section, dict):
                section.pop(key, None)
        if value is not None:
            t.setdefault("training", {})[key] = value
    plan.files["training"].write_text(tomli_w.dumps(t))
    d = tomllib.loads(plan.files["dataset"].read_text())
    d["datasets"][0].update(dataset or {})
    plan.files["dataset"].write_text(tomli_w.dumps(d))
    return harness.run(run_id, plan.argv)


def _refused(match: str, make) -> None:
    with pytest.raises((ConfigError, EngineError)) as e:
        make()
    _one_sentence(e.value)
    assert match in str(e.value), str(e.value)


# (id, family, fixed config, hand edits that reproduce what reached the engine before the fix (train, dataset),
#  what the real engine then did, the refused config (None: fixed in the rendering), lora-nb's refusal)
REGRESSIONS = [
    ("flux_bucket_step_32", "flux", {}, ({}, {"bucket_reso_steps": 32}), "bucket_reso_steps is 32. it must be divisible by 64",
     {"bucket_reso_steps": 32}, "FLUX.1 trainer needs a multiple of 64"),
    ("min_bucket_below_step", "sd15", {}, ({}, {"bucket_reso_steps": 128, "min_bucket_reso": 64}), "ZeroDivisionError",
     {"bucket_reso_steps": 128, "min_bucket_reso": 64}, "must be multiples of bucket_reso_steps (128)"),
    ("max_bucket_not_multiple", "sd15", {}, ({}, {"max_bucket_reso": 1000}), "max_bucket_reso is adjusted to be multiple",
     {"max_bucket_reso": 1000}, "Use 256 and 1024"),
    ("no_upscale_min_above_resolution", "sd15", {}, ({}, {"bucket_no_upscale": True, "min_bucket_reso": 768}),
     "min_bucket_reso must be equal or less than resolution", {"bucket_no_upscale": True, "min_bucket_reso": 768},
     "min_bucket_reso (768) is larger than the resolution"),
    ("optimizer_arg_not_a_literal", "sd15", {}, ({"optimizer_args": ["weight_decay=abc"]}, {}), "malformed node or string",
     {"optimizer_args": ["weight_decay=abc"]}, "not one key=value with a Python literal value"),
    ("piecewise_without_step_rules", "sd15", {"lr_scheduler": "piecewise_constant",
                                               "engine_options": {"lr_scheduler_args": ["step_rules='1:10,0.1'"]}},
     ({"lr_scheduler_args": None}, {}), "missing 1 required positional argument: 'step_rules'",
     {"lr_scheduler": "piecewise_constant"}, "needs its step rules"),
    ("cosine_with_min_lr_without_minimum", "sdxl", {"lr_scheduler": "cosine_with_min_lr", "engine_options": {"lr_scheduler_min_lr_ratio": 0.1}},
     ({"lr_scheduler_min_lr_ratio": None}, {}), "One of min_lr or min_lr_rate should be set",
     {"lr_scheduler": "cosine_with_min_lr"}, "needs its minimum"),
    ("adafactor_schedule_with_adamw", "sd15", {}, ({"lr_scheduler": "adafactor", "optimizer_type": "AdamW"}, {}),
     "adafactor scheduler must be used with Adafactor optimizer", {"lr_scheduler": "adafactor", "optimizer_type": "AdamW"},
     "adafactor schedule works only with the Adafactor optimizer"),
    ("adafactor_schedule_without_relative_step", "sd3", {},
     ({"lr_scheduler": "adafactor", "optimizer_type": "Adafactor", "optimizer_args": ["relative_step=False"]}, {}), "IndexError",
     {"lr_scheduler": "adafactor", "optimizer_type": "Adafactor", "optimizer_args": ["relative_step=False"]},
     "adafactor schedule works only with the Adafactor optimizer"),
    ("adafactor_with_warmup", "sd15", {"optimizer_type": "Adafactor", "lr_scheduler": "cosine"},
     ({"lr_warmup_steps": 10}, {}), "does not require `num_warmup_steps`",
     {"optimizer_type": "Adafactor", "lr_scheduler": "cosine", "lr_warmup_steps": 10}, "takes no warm-up"),
    ("polynomial_with_tiny_learning_rate", "sd3", {"lr_scheduler": "polynomial", "learning_rate": 1e-8,
                                                    "engine_options": {"lr_scheduler_args": ["lr_end=1e-9"]}},
     ({"lr_scheduler_args": None}, {}), "lr_end (1e-07) must be smaller than initial lr (1e-08)",
     {"lr_scheduler": "polynomial", "learning_rate": 1e-8}, "polynomial schedule decays to 1e-7"),
    ("sampler_name_of_another_ui", "sd15", {"sample_prompts": ["alice"], "sample_every_n_epochs": 1},
     ({"sample_sampler": "Euler a"}, {}), "sample_sampler: 'Euler a' is not one of",
     {"sample_prompts": ["alice"], "sample_every_n_epochs": 1, "sample_sampler": "Euler a"}, "not a sampler sd-scripts knows"),
    ("engine_option_number_as_text", "sdxl", {"engine_options": {"max_token_length": 225}},
     ({"max_token_length": "225"}, {}), "not a valid value for object value @ data['max_token_length']",
     {"engine_options": {"max_token_length": "225"}}, "must be a whole number, not '225'"),
    ("engine_option_flag_as_text", "sd15", {}, ({"lowram": "false"}, {}), "lowram: 'false' is not of kind flag",
     {"engine_options": {"lowram": "false"}}, "must be true or false"),
    ("clip_skip_with_sd2", "sd2", {}, ({"clip_skip": 2}, {}), "v2 with clip_skip will be unexpected",
     {"clip_skip": 2}, "clip_skip is for SD 1.x only"),
    ("workers0_persistent", "sd15", {"max_data_loader_n_workers": 0, "persistent_data_loader_workers": True},
     ({"persistent_data_loader_workers": True}, {}), "persistent_workers option needs num_workers > 0", None, None),
    ("cache_to_disk_without_cache", "sd3", {"cache_latents": False, "cache_latents_to_disk": True},
     ({"cache_latents_to_disk": True}, {}), "cache_latents_to_disk is enabled, so cache_latents is also enabled", None, None),
]


@pytest.mark.parametrize("rid,family,fixed,edits,engine_said,bad,refusal", REGRESSIONS, ids=[r[0] for r in REGRESSIONS])
def test_regression(rid, family, fixed, edits, engine_said, bad, refusal, rws, harness):
    """Each mismatch the property suite found, against the REAL engine: the raw form (lora-nb's old rendering, or what
    lora-nb now refuses) really fails or misbehaves in sd-scripts; lora-nb now refuses it with one sentence and a fix,
    or renders it so that the real engine accepts it with lora-nb's step count."""
    cfg = _cfg(rws, family, **fixed)
    accepted_by_engine(rws, harness, cfg)
    raw = raw_engine_result(rws, harness, cfg, *edits)
    said = " ".join([str(raw.get("error")), *raw["warnings"], *raw["toml_problems"]])
    assert engine_said in said, raw
    if bad is not None:   # refused by the validation (TrainingConfig) or the rendering (prepare)
        _refused(refusal, lambda: render(rws, _cfg(rws, family, **bad), "accelerate", f"bad{next(_IDS)}"))


def test_regression_python_launcher_runs_one_process(rws, harness):
    """Real engine: `python train_network.py` is one process whatever num_processes says, so it runs the single-GPU
    step count, not the one lora-nb estimates for 2 GPUs; lora-nb now refuses that launch before anything runs."""
    two = _cfg(rws, num_processes=2, max_train_epochs=3)
    accepted_by_engine(rws, harness, two, "accelerate")
    _refused("need the accelerate launcher", lambda: render(rws, two, "python", f"py{next(_IDS)}"))
    res = harness.run("py", render(rws, two.model_copy(update={"num_processes": 1}), "python", f"py{next(_IDS)}").argv)
    assert res["ok"] and res["num_processes"] == 1
    assert res["total_steps"] > lora_nb.steps(two, rws).total_steps   # what the old python launch line really ran
    rws.settings.set("kohya_launcher", "accelerate")


@pytest.mark.parametrize("n, precision", [(2, "no"), (4, "bf16")])
def test_multi_gpu_lines_are_accepted_by_accelerate(rws, harness, n, precision):
    """Real accelerate parser and launcher set-up on the --multi_gpu line lora-nb renders for 2 and 4 processes
    (issue 19): torchrun gets N processes per node and the script with its --config_file, the mixed precision reaches
    the processes' environment, no gpu_ids (the job's CUDA_VISIBLE_DEVICES, from its GPU slots, is kept),
    one machine, and no master port, so torch's run() rendezvouses on a free port (c10d localhost:0): two
    multi-GPU runs on one box do not both take 29500. The step count is the engine's for N processes."""
    cfg = _cfg(rws, num_processes=n, mixed_precision=precision, max_train_epochs=3)
    launch = accepted_by_engine(rws, harness, cfg)["launch"]
    # no --gpu_ids and no accelerate config file: gpu_ids stays None, which prepare_multi_gpu_env treats like 'all'
    assert (launch["gpu_ids"], launch["num_machines"], launch["nnodes"]) == (None, 1, "1:1")
    assert launch["cuda_visible_devices_kept"] is True
    assert launch["master_port"] is None and launch["rdzv_backend"] == "static" and not launch["rdzv_endpoint"]
    assert lora_nb.steps(cfg, rws).total_steps < lora_nb.steps(cfg.model_copy(update={"num_processes": 1}), rws).total_steps


def test_regression_subset_folder_without_images(rws, harness):
    """Real engine: a subset whose folder holds no images is skipped, and with nothing else sd-scripts logs
    'No data found' and exits 0 without training; lora-nb's preflight now refuses it, naming the folder."""
    name = make_dataset(rws, [("a", [(512, 512)])])
    cfg = TrainingConfig(engine="kohya", model_family="sd15", dataset=[{"dataset": name, "folder": "nothing-here"}],
                         max_train_epochs=1, **model_paths(rws, "sd15"))
    res = harness.run("empty", render(rws, cfg, "accelerate", f"e{next(_IDS)}").argv)
    assert not res["ok"] and res.get("returned_early") and any("No data found" in w for w in res["warnings"])
    _refused("holds no images", lambda: refused(rws, cfg))


def test_regression_never_upscale_narrow_image(rws, harness):
    """Real engine: with 'never upscale' an image whose side rounds down to 0 at the bucket step crashes sd-scripts'
    BucketManager (ZeroDivisionError); lora-nb's preflight now refuses it, naming the image."""
    cfg = _cfg(rws, "sdxl", sizes=[(512, 512), (760, 75)], bucket_reso_steps=96, resolution="576", min_bucket_reso=192,
               max_bucket_reso=1152)
    accepted_by_engine(rws, harness, cfg)
    raw = raw_engine_result(rws, harness, cfg, {}, {"bucket_no_upscale": True})
    assert "ZeroDivisionError" in str(raw.get("error")), raw
    bad = _cfg(rws, "sdxl", sizes=[(512, 512), (760, 75)], bucket_reso_steps=96, resolution="576", min_bucket_reso=192,
               max_bucket_reso=1152, bucket_no_upscale=True)
    _refused("(760x75) is too small or too narrow", lambda: refused(rws, bad))
