"""STAND-IN for ostris/ai-toolkit's run.py (test use only; not the real trainer).

Rebuilt from the REAL engine's recordings in tests/fixtures/aitoolkit/captures (ai-toolkit 27a03a9 on CPU with tiny
random FLUX models, see that README): the same lines on the same streams in the same order (text on stdout; tqdm bars
on stderr with `\\r` redraws, two frames per step, the nested `Generating Images` bar with its cursor-up escapes), the
files it writes (config.yaml, PEFT-format safetensors checkpoints with ai-toolkit's metadata, optimizer.pt, samples
`<ms>__<step:09d>_<i>.jpg` with `.thumbs/`, `_latent_cache/` and `.aitk_size.json` in the dataset folder), rotation,
automatic resume from the newest checkpoint, SIGINT -> `Job stopped` and exit 0, SIGTERM -> killed by the signal (no
handler), and the recorded failures: a missing model folder, an unknown optimizer, warm-up params on a schedule without
warm-up, and a sample section without `neg`. Phase durations follow the recordings, scaled by FAKE_AITK_TIME_SCALE.

Knobs: FAKE_AITK_STEP_SECONDS (seconds per step, default 0.03), FAKE_AITK_TIME_SCALE (default 0.01 of the recorded
start-up, model-loading, caching and sampling times), FAKE_AITK_FAIL=oom (ai-toolkit's OOM path, from its source: three
skipped batches then a RuntimeError; never recorded, a CPU cannot run out of GPU memory) or =missing (a missing model
folder, as recorded), FAKE_AITK_NO_FINAL=1 (exit 0 without the final LoRA; no real run did this).
Deliberately stricter than the real engine: an unknown key in a section lora-nb writes is an error here (the real one
ignores it silently), so that a rendering typo fails the stand-in tests.
"""
import argparse
import json
import os
import re
import sys
import time
from collections import OrderedDict
from pathlib import Path

import yaml

SCALE = float(os.environ.get("FAKE_AITK_TIME_SCALE", "0.01"))
STEP_SECONDS = float(os.environ.get("FAKE_AITK_STEP_SECONDS", "0.03"))
VERSION = "0.12.26"
RULE = "=" * 40
HASHES = "#" * 45

KNOWN = {
    "process": {"type", "training_folder", "name", "device", "trigger_word", "performance_log_every", "log_dir", "sqlite_db_path",
                "training_seed", "network", "save", "datasets", "train", "model", "sample", "logging"},
    "network": {"type", "linear", "linear_alpha", "conv", "conv_alpha", "dropout", "network_kwargs", "transformer_only"},
    "save": {"dtype", "save_every", "max_step_saves_to_keep", "save_format", "push_to_hub", "hf_repo_id", "hf_private"},
    "dataset": {"folder_path", "caption_ext", "default_caption", "caption_dropout_rate", "shuffle_tokens", "keep_tokens",
                "token_dropout_rate", "cache_latents_to_disk", "cache_latents", "resolution", "buckets", "bucket_tolerance",
                "num_repeats", "batch_size", "is_reg", "flip_x", "flip_y", "num_workers", "random_crop"},
    "train": {"batch_size", "steps", "gradient_accumulation_steps", "gradient_accumulation", "train_unet", "train_text_encoder",
              "gradient_checkpointing", "noise_scheduler", "optimizer", "optimizer_params", "lr", "lr_scheduler",
              "lr_scheduler_params", "dtype", "max_grad_norm", "noise_offset", "min_snr_gamma", "disable_sampling",
              "skip_first_sample", "ema_config", "start_step"},
    "model": {"name_or_path", "arch", "is_flux", "quantize", "low_vram"},
    "sample": {"sampler", "sample_every", "sample_start_step", "width", "height", "prompts", "neg", "seed", "walk_seed",
               "guidance_scale", "sample_steps", "format"},
}
# toolkit/optimizer.py's names (anything else: "Unknown optimizer type X")
OPTIMIZERS = re.compile(r"^(dadaptation.*|prodigy.*|adam8|adamw8|adam8bit|ademamix8bit|adamw8bit|lion8bit|adam|adamw|lion|adagrad|"
                        r"adafactor|automagic|automagic2|automagic3|automagicexperiment)$")
# toolkit/scheduler.py: the torch schedulers it builds, and the keyword arguments they accept besides total_iters
SCHEDULER_KWARGS = {"cosine": {"T_max", "eta_min", "last_epoch"}, "cosine_with_restarts": {"T_0", "T_mult", "eta_min", "last_epoch"},
                    "step": {"step_size", "gamma", "last_epoch"}, "constant": {"factor", "last_epoch"},
                    "linear": {"start_factor", "end_factor", "last_epoch"}, "constant_with_warmup": {"num_warmup_steps", "last_epoch"}}
TORCH_NAMES = {"cosine": "CosineAnnealingLR", "cosine_with_restarts": "CosineAnnealingWarmRestarts", "step": "StepLR",
               "constant": "ConstantLR", "linear": "LinearLR", "constant_with_warmup": "LambdaLR"}


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def pause(recorded_seconds: float) -> None:
    time.sleep(recorded_seconds * SCALE)


def tqdm_cls():
    try:
        from tqdm import tqdm            # the real bar (tqdm 4.70.1 was recorded), when the test venv has it
        return tqdm
    except ImportError:                  # pragma: no cover - a minimal look-alike
        return _Bar


class _Bar:
    """Enough of tqdm for the stand-in when tqdm is not installed: same frame shape, redrawn on every update."""

    def __init__(self, iterable=None, total=None, desc=None, leave=True, initial=0, smoothing=0.3, file=None, position=None,
                 mininterval=0.1):
        self.total, self.n, self.desc, self.leave = total if total is not None else len(iterable), initial, desc, leave
        self.iterable, self.t0, self.postfix, self.file = iterable, time.time(), "", file or sys.stderr
        self.refresh()

    def __iter__(self):
        for x in self.iterable:
            yield x
            self.update(1)
        self.close()

    def _frame(self) -> str:
        el = time.time() - self.t0
        pct = 100 * self.n / self.total if self.total else 0
        fill = int(10 * self.n / self.total) if self.total else 0
        bar = ("█" * fill).ljust(10)
        clock = lambda s: "%02d:%02d" % divmod(int(s), 60)
        rate = (self.n / el) if el > 0 and self.n else None
        rate_s = "?it/s" if not rate else (f"{rate:5.2f}it/s" if rate >= 1 else f"{1 / rate:5.2f}s/it")
        eta = "?" if not rate else clock((self.total - self.n) / rate)
        label = f"{self.desc}: " if self.desc else ""
        post = f", {self.postfix}" if self.postfix else ""
        return f"{label}{pct:3.0f}%|{bar}| {self.n}/{self.total} [{clock(el)}<{eta}, {rate_s}{post}]"

    def refresh(self):
        self.file.write("\r" + self._frame())
        self.file.flush()

    def set_postfix_str(self, s):
        self.postfix = s
        self.refresh()

    def update(self, k=1):
        self.n += k
        self.refresh()

    def close(self):
        self.file.write("\n" if self.leave else "\r" + " " * 64 + "\r")
        self.file.flush()


# -- config loading: toolkit/config.py and toolkit/job.py --------------------------------------------------------
def load(path: str, name: str | None):
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"Could not find config file {path}")
    text = p.read_text()

    def env(m):
        value = os.environ.get(m.group(1))
        if value is None:
            raise ValueError(f"Environment variable {m.group(1)} not set. Please ensure it's defined before proceeding.")
        return value

    cfg = yaml.safe_load(re.sub(r"\$\{([^}]+)\}", env, text))
    if "job" not in cfg:
        raise ValueError("config file must have a job key")
    if "config" not in cfg:
        raise ValueError("config file must have a config section")
    if "name" not in cfg["config"] and name is None:
        raise ValueError("config file must have a config.name key")
    name = name or cfg["config"]["name"]
    cfg = json.loads(json.dumps(cfg).replace("[name]", name), object_pairs_hook=OrderedDict)
    if cfg["job"] != "extension":
        raise ValueError(f"Unknown job type {cfg['job']}")
    return cfg


def check_keys(section: str, data: dict) -> None:
    unknown = set(data) - KNOWN[section]
    if unknown:
        raise ValueError(f"[stand-in only: the real ai-toolkit ignores unknown keys] unknown {section} keys: {sorted(unknown)}")


# -- files --------------------------------------------------------------------------------------------------------
def save_lora(path: Path, step: int, rank: int, meta: dict) -> None:
    """A PEFT-format FLUX LoRA (lora_A / lora_B, no alpha) with ai-toolkit's metadata, like the recorded run1.safetensors."""
    import numpy as np
    from safetensors.numpy import save_file

    tensors = {}
    for block in ("transformer_blocks.0.attn.to_q", "single_transformer_blocks.0.attn.to_q"):
        tensors[f"transformer.{block}.lora_A.weight"] = np.zeros((rank, 32), np.float16)
        tensors[f"transformer.{block}.lora_B.weight"] = np.zeros((32, rank), np.float16)
    metadata = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    metadata.update({"training_info": json.dumps({"step": step, "epoch": 0}), "format": "pt", "ss_base_model_version": "flux.1",
                     "software": json.dumps({"name": "ai-toolkit", "repo": "https://github.com/ostris/ai-toolkit", "version": VERSION}),
                     "sshs_model_hash": "0" * 64, "sshs_legacy_hash": "00000000"})
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def write_sample(folder: Path, step: int, i: int) -> None:
    (folder / ".tmp").mkdir(parents=True, exist_ok=True)
    (folder / ".thumbs").mkdir(exist_ok=True)
    name = f"{int(time.time() * 1000)}__{step:09d}_{i}.jpg"
    tmp = folder / ".tmp" / name
    tmp.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\xff\xd9")
    (folder / ".thumbs" / (name + ".jpg")).write_bytes(tmp.read_bytes())
    os.replace(tmp, folder / name)


# -- the run: jobs/process/BaseSDTrainProcess.py, in the recorded order ------------------------------------------------
class Run:
    def __init__(self, cfg):
        self.name = cfg["config"]["name"]
        self.meta = cfg.get("meta", {})
        self.proc = cfg["config"]["process"][0]
        self.bar = None
        self.tqdm = tqdm_cls()

    def sample(self, step: int) -> None:
        sample = self.proc["sample"]
        if sample.get("neg", False) is False:    # SampleConfig's default `neg` is False; the tokenizer rejects it
            raise ValueError("text input must be of type `str` (single example), `list[str]` (batch or single pretokenized "
                             "example) or `list[list[str]]` (batch of pretokenized examples) or `list[tuple[list[str], "
                             "list[str]]]` (batch of pretokenized sequence pairs).")
        folder = self.out / "samples"
        for i in self.tqdm(range(len(sample["prompts"])), desc="Generating Images", leave=False, mininterval=0):
            pause(3.0)
            write_sample(folder, step, i)

    def save(self, step: int | None) -> None:
        final = step is None
        path = self.out / (f"{self.name}.safetensors" if final else f"{self.name}_{step:09d}.safetensors")
        meta = dict(self.meta, ss_output_name=self.name)
        if self.proc.get("trigger_word"):
            meta["ss_tag_frequency"] = {f"1_{self.proc['trigger_word']}": {self.proc["trigger_word"]: 1}}
        save_lora(path, self.total if final else step, int(self.proc["network"].get("linear", 4)), meta)
        out(f"Saved checkpoint to {path}")
        (self.out / "optimizer.pt").write_bytes(b"PK\x03\x04 stand-in optimizer state")
        out(f"Saved optimizer to {self.out / 'optimizer.pt'}")
        if not final:   # rotation: <name>_* by creation time, keep max_step_saves_to_keep
            keep = int(self.proc["save"].get("max_step_saves_to_keep", 5))
            olds = sorted(self.out.glob(f"{self.name}_*.safetensors"), key=lambda p: p.stat().st_ctime_ns)
            for old in olds[:-keep] if keep > 0 else olds:
                out(f"Removing old save: {old}")
                old.unlink()

    # -- DiffusionTrainer's flag polling (extensions_built_in/sd_trainer/DiffusionTrainer.py at 27a03a9) ----------------
    def ui_db(self) -> str | None:
        """The SQLite file when the process is a diffusion_trainer with sqlite_db_path present and AITK_JOB_ID set."""
        path = self.proc.get("sqlite_db_path", "./aitk_db.db")
        if self.proc.get("type") != "diffusion_trainer" or not os.path.exists(path) or os.environ.get("AITK_JOB_ID") is None:
            return None
        return path

    def db(self, sql: str, *args):
        import sqlite3

        conn = sqlite3.connect(self.ui_db(), timeout=30.0)
        conn.isolation_level = None
        try:
            return conn.execute(sql, (*args, os.environ["AITK_JOB_ID"].strip())).fetchone()
        finally:
            conn.close()

    def end_step_hook(self, step_num: int) -> None:
        """After every step: the step into the row, then stop / save_now / sample_now, each flag cleared before acting."""
        if self.ui_db() is None:
            return
        self.db("UPDATE Job SET step = ? WHERE id = ?", str(step_num))
        if (self.db("SELECT stop FROM Job WHERE id = ?") or (0,))[0] == 1:
            self.db("UPDATE Job SET status = ?, info = ? WHERE id = ?", "stopped", "Job stopped")
            raise Exception("Job stopped")
        if (self.db("SELECT save_now FROM Job WHERE id = ?") or (0,))[0] == 1:
            self.db("UPDATE Job SET save_now = ? WHERE id = ?", "0")
            out(f"\nSaving at step {step_num}")
            self.save(step_num)
        if (self.db("SELECT sample_now FROM Job WHERE id = ?") or (0,))[0] == 1:
            self.db("UPDATE Job SET sample_now = ? WHERE id = ?", "0")
            out(f"\nSampling at step {step_num}")
            self.sample(step_num)

    def run(self) -> None:
        proc, name = self.proc, self.name
        if proc.get("type") not in ("sd_trainer", "diffusion_trainer", "textual_inversion_trainer"):
            raise ValueError(f"Unknown process type {proc.get('type')}")
        if not proc.get("training_folder"):
            raise TypeError("expected str, bytes or os.PathLike object, not NoneType")
        check_keys("process", proc)
        for sec in ("network", "save", "train", "model") + (("sample",) if "sample" in proc else ()):
            check_keys(sec, proc.get(sec, {}))
        for d in proc["datasets"]:
            check_keys("dataset", d)
        train, model = proc["train"], proc["model"]
        if not model.get("name_or_path"):
            raise ValueError("name_or_path must be specified")
        if self.ui_db() is not None:
            out(f"Using SQLite database at {self.ui_db()}")
            out(f'Job ID: "{os.environ["AITK_JOB_ID"].strip()}"')
        self.out = Path(proc["training_folder"]) / name
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.yaml").write_text(yaml.safe_dump(json.loads(json.dumps({"job": "extension", "config": {"name": name, "process": [proc]}, "meta": self.meta}))))
        out(json.dumps(proc, indent=4))
        out()
        out(HASHES + "\n# Running job: " + name + "\n" + HASHES)
        out()
        out()
        out("Running  1 process")
        out("Loading Flux model")
        out("Loading transformer")
        pause(2.3)
        path = model["name_or_path"]
        if os.environ.get("FAKE_AITK_FAIL") == "missing" or (path.startswith("/") and not os.path.isdir(path)):
            sys.stderr.write("Traceback (most recent call last):\n  File \"diffusers/configuration_utils.py\", line 424, in load_config\n"
                             f"huggingface_hub.errors.HFValidationError: Repo id must be in the form 'repo_name' or 'namespace/repo_name': '{path}'. "
                             "Use `repo_type` argument if needed.\n\nDuring handling of the above exception, another exception occurred:\n\n")
            raise OSError(f"We couldn't connect to 'https://huggingface.co' to load this model, couldn't find it in the cached files "
                          f"and it looks like {path} is not the path to a directory containing a config.json file.\nCheckout your "
                          "internet connection or see how to run the library in offline mode at "
                          "'https://huggingface.co/docs/diffusers/installation#offline-mode'.")
        out("Loading VAE")
        pause(0.7)
        out("Loading T5")
        for _ in self.tqdm(range(21), desc="Loading weights"):
            pass
        out("Loading CLIP")
        for _ in self.tqdm(range(36), desc="Loading weights"):
            pass
        out("Making pipe")
        out("Preparing Model")
        pause(2.0)
        rank = int(proc["network"].get("linear", 4))
        out(f"create LoRA network. base dim (rank): {rank}, alpha: {rank}")     # FLUX: PEFT format, alpha forced to the rank
        out("neuron dropout: p=None, rank dropout: p=None, module dropout: p=None")
        out("create LoRA for Text Encoder: 0 modules.")
        out("create LoRA for U-Net: 20 modules.")
        out("enable LoRA for U-Net")
        # automatic resume: the newest <name>*.safetensors in the job folder
        start = int(train.get("start_step") or 0)
        saves = sorted(self.out.glob(f"{name}*.safetensors"), key=lambda p: p.stat().st_ctime_ns)
        if saves:
            from safetensors import safe_open

            latest = saves[-1]
            out(f"#### IMPORTANT RESUMING FROM {latest} ####")
            out(f"Loading from {latest}")
            out("Missing keys: []")
            with safe_open(str(latest), "np") as f:
                start = json.loads(f.metadata()["training_info"])["step"]
            out(f"Found step {start} in metadata, starting from there")
            if (self.out / "optimizer.pt").is_file():
                out(f"Loading optimizer state from {self.out / 'optimizer.pt'}")
            out("Updating optimizer LR from params")
        optimizer = str(train.get("optimizer", "adamw")).lower()
        if not OPTIMIZERS.match(optimizer):
            raise ValueError(f"Unknown optimizer type {train.get('optimizer')}")
        scheduler = train.get("lr_scheduler", "constant")
        params = dict(train.get("lr_scheduler_params") or {})
        if scheduler in SCHEDULER_KWARGS:
            extra = sorted(set(params) - SCHEDULER_KWARGS[scheduler])
            if extra:
                raise TypeError(f"{TORCH_NAMES[scheduler]}.__init__() got an unexpected keyword argument '{extra[0]}'")
        elif scheduler not in ("polynomial", "piecewise_constant"):
            raise ValueError("Scheduler must be cosine, cosine_with_restarts, step, linear or constant")
        images = 0
        for d in proc["datasets"]:
            folder = Path(d["folder_path"])
            out(f"Dataset: {folder}")
            out("  -  Preprocessing image dimensions")
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")) if folder.is_dir() else []
            n = len(files) * int(d.get("num_repeats", 1))
            for _ in self.tqdm(range(n)):
                pass
            out(f"  -  Found {n} images")
            res = d.get("resolution", 512)
            side = res[0] if isinstance(res, list) else res
            out(f"Bucket sizes for {folder}:")
            out(f"{side}x{side}: {n} files")
            out("1 buckets made")
            if d.get("cache_latents_to_disk"):
                out(f"Caching latents for {folder}")
                out(" - Saving latents to disk")
                (folder / "_latent_cache").mkdir(exist_ok=True)
                sizes = {"__version__": "0.1.2"}
                for p in files:
                    (folder / "_latent_cache" / f"{p.stem}_standin.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
                    sizes["/" + p.name] = [side, side, f"{p.stat().st_size}:{int(p.stat().st_mtime)}"]
                (folder / ".aitk_size.json").write_text(json.dumps(sizes))
                for _ in self.tqdm(range(n), desc="Caching latents to disk", mininterval=0):
                    pause(0.45)
            images += n
        if images == 0:
            raise ValueError("No images found in dataset")    # (not recorded; lora-nb refuses an empty dataset before launch)
        sampling = "sample" in proc and not train.get("disable_sampling")
        if not sampling or train.get("skip_first_sample") or start:
            out("Skipping first sample due to config setting")
        else:
            out("Generating baseline samples before training")
            self.sample(0)
        self.total = total = int(train["steps"])
        every = int(proc["save"].get("save_every", 1000))
        sample_every = int(proc["sample"]["sample_every"]) if sampling else 0
        lr = float(train.get("lr", 1e-6))
        fail = os.environ.get("FAKE_AITK_FAIL")
        # (mininterval=0: every frame is drawn, as the real bar draws them at real step times, which exceed tqdm's 0.1 s)
        self.bar = self.tqdm(total=total, desc=name, leave=True, initial=start, smoothing=0.7, mininterval=0)
        ooms = 0
        for step in range(start, total):
            time.sleep(STEP_SECONDS)
            if fail == "oom" and step >= start + 2:
                ooms += 1       # toolkit catches torch.cuda.OutOfMemoryError per step and skips the batch
                if ooms > 3:
                    raise RuntimeError("OOM during training step 3 times in a row, aborting training")
                out()
                out("################################################")
                out(f"# OOM during training step, skipping batch {ooms}/3 #")
                out("################################################")
                out()
                continue
            loss = 1.5 + 0.1 * ((step * 7919) % 13) / 13
            if scheduler == "linear":
                lr_now = lr * max(0.0, 1 - (step + 1) / total)
            else:
                lr_now = lr
            self.bar.set_postfix_str(f"lr: {lr_now:.1e} loss: {loss:.3e}")
            if step != start:
                if every and step % every == 0:
                    out(f"\nSaving at step {step}")
                    self.save(step)
                if sample_every and step % sample_every == 0:
                    self.sample(step)
            self.bar.update(step + 1 - self.bar.n)
            self.end_step_hook(step + 1)
        # the loop's last step is never saved on its own: the final file is
        self.bar.close()
        self.bar = None
        if os.environ.get("FAKE_AITK_NO_FINAL"):
            return
        self.save(None)
        if sampling:
            self.sample(total)
        out()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config_file_list", nargs="+", type=str)
    ap.add_argument("-r", "--recover", action="store_true")
    ap.add_argument("-n", "--name", type=str, default=None)
    ap.add_argument("-l", "--log", type=str, default=None)
    args = ap.parse_args()
    n = len(args.config_file_list)
    out(f"Running {n} job{'' if n == 1 else 's'}")
    pause(7.0)
    sys.stderr.write("WARNING:torchao.kernel.intmm:Warning: Detected no triton, on systems without Triton certain kernels will not work\n")
    sys.stderr.flush()
    pause(6.0)
    completed = failed = 0
    for path in args.config_file_list:
        job = None
        try:
            job = Run(load(path, args.name))
            job.run()
            completed += 1
        except Exception as e:
            out(f"Error running job: {e}")
            failed += 1
            if job is None:
                out("Error running on_error: cannot access local variable 'job' where it is not associated with a value")
            if not args.recover:
                out()
                out(RULE)
                out("Result:")
                out(f" - {completed} completed job{'' if completed == 1 else 's'}")
                out(f" - {failed} failure{'' if failed == 1 else 's'}")
                out(RULE)
                raise
        except KeyboardInterrupt:
            if job is None:
                out("Error running on_error: cannot access local variable 'job' where it is not associated with a value")
            if not args.recover:
                out()
                out(RULE)
                out("Job stopped")
                out(RULE)
                if job is not None and job.bar is not None:
                    job.bar.close()          # the real bar's last frame and newline come when the interpreter exits
                sys.exit(0)


if __name__ == "__main__":
    main()
