"""Stand-in for ostris/ai-toolkit's run.py (process-level behaviour per ENGINES.md Part B). Test use only."""
import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import yaml

KNOWN = {
    "process": {"type", "training_folder", "name", "device", "trigger_word", "performance_log_every", "log_dir",
                "training_seed", "network", "save", "datasets", "train", "model", "sample", "logging"},
    "network": {"type", "linear", "linear_alpha", "conv", "conv_alpha", "dropout", "network_kwargs", "transformer_only"},
    "save": {"dtype", "save_every", "max_step_saves_to_keep", "save_format", "push_to_hub", "hf_repo_id", "hf_private"},
    "dataset": {"folder_path", "caption_ext", "default_caption", "caption_dropout_rate", "shuffle_tokens", "keep_tokens",
                "token_dropout_rate", "cache_latents_to_disk", "cache_latents", "resolution", "buckets", "bucket_tolerance",
                "num_repeats", "batch_size", "is_reg", "flip_x", "flip_y"},
    "train": {"batch_size", "steps", "gradient_accumulation_steps", "gradient_accumulation", "train_unet", "train_text_encoder",
              "gradient_checkpointing", "noise_scheduler", "optimizer", "optimizer_params", "lr", "lr_scheduler",
              "lr_scheduler_params", "dtype", "max_grad_norm", "noise_offset", "min_snr_gamma", "disable_sampling",
              "skip_first_sample", "ema_config"},
    "model": {"name_or_path", "arch", "is_flux", "quantize", "low_vram"},
    "sample": {"sampler", "sample_every", "sample_start_step", "width", "height", "prompts", "neg", "seed", "walk_seed",
               "guidance_scale", "sample_steps", "format"},
}
OPTIMIZERS = {"adamw", "adam", "adamw8bit", "adam8bit", "lion", "lion8bit", "adagrad", "adafactor", "prodigy", "prodigy8bit", "dadaptation"}


def load(path):
    text = Path(path).read_text()

    def env(m):
        if m.group(1) not in os.environ:
            raise ValueError(f"Environment variable {m.group(1)} not set")
        return os.environ[m.group(1)]
    text = re.sub(r"\$\{([^}]+)\}", env, text)
    cfg = yaml.safe_load(text)
    if "job" not in cfg or "config" not in cfg:
        raise ValueError("config file must have a job and config key")
    name = cfg["config"].get("name")
    if not name:
        raise ValueError("config.name is required")
    return json.loads(json.dumps(cfg).replace("[name]", name))


def check_keys(section, data):
    unknown = set(data) - KNOWN[section]
    if unknown:  # the real trainer ignores unknown keys; the stand-in is stricter so rendering mistakes show up
        raise ValueError(f"unknown {section} keys: {sorted(unknown)}")


def save_lora(path, step):
    from safetensors.numpy import save_file
    import numpy as np
    tmp = path.with_suffix(".tmp")
    save_file({"transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight": np.zeros((4, 8), np.float16)}, str(tmp),
              metadata={"training_info": json.dumps({"step": step, "epoch": 0}), "ss_base_model_version": "flux.1",
                        "software": json.dumps({"name": "ai-toolkit", "repo": "https://github.com/ostris/ai-toolkit", "version": "stand-in"})})
    os.replace(tmp, path)


def bar(name, n, total, t0, lr, loss):
    el = time.time() - t0
    rate = n / el if el > 0 and n else 0
    pct = int(100 * n / total)
    fill = "█" * (pct // 10)
    clock = lambda s: "%02d:%02d" % divmod(int(s), 60)
    eta = clock((total - n) / rate) if rate else "?"
    sys.stderr.write(f"\r{name}:  {pct:>2}%|{fill:<10}| {n}/{total} [{clock(el)}<{eta}, {rate:5.2f}it/s, lr: {lr:.1e} loss: {loss:.3e}]")
    sys.stderr.flush()


def run_job(cfg):
    name = cfg["config"]["name"]
    if cfg["job"] != "extension":
        raise ValueError(f"Unknown job type {cfg['job']}")
    proc = cfg["config"]["process"][0]
    print(json.dumps(proc, indent=4), flush=True)
    print("#" * 43 + f"\n# Running job: {name}\n" + "#" * 43, flush=True)
    print("Running  1 process", flush=True)
    if proc["type"] not in ("sd_trainer", "diffusion_trainer"):
        raise ValueError(f"Unknown process type {proc['type']}")
    if not proc.get("training_folder"):
        raise TypeError("expected str, bytes or os.PathLike object, not NoneType")
    check_keys("process", proc)
    for sec in ("network", "save", "train", "model") + (("sample",) if "sample" in proc else ()):
        check_keys(sec, proc[sec])
    for d in proc["datasets"]:
        check_keys("dataset", d)
    train = proc["train"]
    if train["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer type {train['optimizer']}")
    if not proc["model"].get("name_or_path"):
        raise ValueError("name_or_path must be specified")
    if os.environ.get("FAKE_AITK_FAIL") == "missing":
        raise OSError(f"Error no file named model_index.json found in directory {proc['model']['name_or_path']}.")
    images = 0
    for d in proc["datasets"]:
        folder = Path(d["folder_path"])
        if not folder.is_dir():
            raise FileNotFoundError(f"[Errno 2] No such file or directory: '{folder}'")
        images += sum(1 for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    print(f"Dataset: {images} images", flush=True)
    out = Path(proc["training_folder"]) / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    start = 0
    previous = sorted(out.glob(f"{name}*.safetensors"), key=lambda p: p.stat().st_mtime)
    if previous:
        from safetensors import safe_open
        with safe_open(str(previous[-1]), "np") as f:
            start = json.loads(f.metadata()["training_info"])["step"]
        print(f"#### IMPORTANT RESUMING FROM {previous[-1]} ####", flush=True)
        print(f"Found step {start} in metadata, starting from there", flush=True)
    total, every = int(train["steps"]), int(proc["save"]["save_every"])
    keep = int(proc["save"].get("max_step_saves_to_keep", 5))
    sample = proc.get("sample")
    delay = float(os.environ.get("FAKE_AITK_STEP_SECONDS", "0.03"))
    t0 = time.time()
    lr = float(train["lr"])
    for step in range(start, total):
        if os.environ.get("FAKE_AITK_FAIL") == "oom" and step == start + 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.65 GiB total capacity)")
        time.sleep(delay)
        n = step + 1
        bar(name, n, total, t0, lr, 0.5 / (1 + 0.01 * n))
        if n % every == 0 and n != total:
            sys.stderr.write("\n")
            print(f"Saving at step {n}", flush=True)
            path = out / f"{name}_{n:09d}.safetensors"
            save_lora(path, n)
            print(f"Saved checkpoint to {path}", flush=True)
            olds = sorted(out.glob(f"{name}_*.safetensors"), key=lambda p: p.stat().st_mtime)
            for old in olds[:-keep]:
                print(f"Removing old save: {old}", flush=True)
                old.unlink()
        if sample and n % int(sample["sample_every"]) == 0:
            sys.stderr.write("\n")
            print("Generating Images", flush=True)
            (out / "samples").mkdir(exist_ok=True)
            for i, _ in enumerate(sample["prompts"]):
                (out / "samples" / f"{int(time.time() * 1000)}__{n:09d}_{i}.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    sys.stderr.write("\n")
    if os.environ.get("FAKE_AITK_NO_FINAL"):
        return
    final = out / f"{name}.safetensors"
    save_lora(final, total)
    print(f"Saved checkpoint to {final}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config_file_list", nargs="+")
    ap.add_argument("-r", "--recover", action="store_true")
    ap.add_argument("-n", "--name")
    ap.add_argument("-l", "--log")
    args = ap.parse_args()
    print(f"Running {len(args.config_file_list)} job", flush=True)
    for path in args.config_file_list:
        try:
            run_job(load(path))
        except KeyboardInterrupt:
            print("=" * 40 + "\nJob stopped\n" + "=" * 40, flush=True)
            sys.exit(0)
        except Exception as e:
            print(f"Error running job: {e}", flush=True)
            print("=" * 40 + "\nResult:\n - 0 completed jobs\n - 1 failure\n" + "=" * 40, flush=True)
            raise


if __name__ == "__main__":
    main()
