"""``ws.jobs.submit_training(cfg)``: validate, check the dataset, render the engine's files, queue the run.

Every run folder keeps what is needed to understand it later: ``config.json`` (the
TrainingConfig), the rendered engine files, ``manifest.json`` (the dataset's files with sizes and
caption hashes) and the engine's commit.
"""
from __future__ import annotations

import hashlib
import re
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, EngineError
from .base import LaunchPlan

if TYPE_CHECKING:  # pragma: no cover
    from ..ports import JobHandle, TrainingHome
    from ..config.model import TrainingConfig

__all__ = ["submit_training", "preflight", "dataset_manifest", "check_doctor", "doctor_findings"]

_HF_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")   # "org/model": the engine downloads it


def preflight(ws: "TrainingHome", cfg: "TrainingConfig") -> list[str]:
    """Reasons the run must not start (empty when it may): no images, missing captions, trigger word absent."""
    from ..errors import NotFound

    names = [cfg.dataset] if isinstance(cfg.dataset, str) else sorted({s.dataset for s in cfg.dataset})
    if names == [""]:
        return ["No dataset is selected. Choose a workspace dataset (ws.datasets.list())."]
    reasons: list[str] = []
    for name in names:
        try:
            ds = ws.datasets.get(name)
        except NotFound as e:
            reasons.append(str(e))
            continue
        items = ds.images()
        if not items:
            reasons.append(f"Dataset '{name}' has no images. Import some first.")
            continue
        missing = [i for i in items if i.caption is None or not i.caption.strip()]
        if missing:
            reasons.append(f"{len(missing)} of {len(items)} images in '{name}' have no caption (first: {missing[0].path.name}). "
                           "Tag the dataset or write captions.")
        for word in cfg.trigger_words:
            lacking = [i for i in items if i.caption and word.lower() not in i.caption.lower()]
            if lacking:
                reasons.append(f"The trigger word '{word}' is missing from {len(lacking)} captions in '{name}'. "
                               "Add it with the caption tools (ds.captions.add_trigger).")
    reasons += _dataset_shape(ws, cfg)
    if not cfg.pretrained_model_name_or_path:
        reasons.append("No base model is set. Set pretrained_model_name_or_path (the Models tab lists and downloads them).")
    elif not Path(cfg.pretrained_model_name_or_path).exists() and not _HF_REPO.match(cfg.pretrained_model_name_or_path):
        reasons.append(f"The base model {cfg.pretrained_model_name_or_path} does not exist. Check the path.")
    for key in ("vae", "clip_l", "clip_g", "t5xxl", "ae", "network_weights", "resume"):
        value = getattr(cfg, key)
        if value and not Path(value).exists():
            reasons.append(f"{key} points at {value}, which does not exist.")
    return reasons


def doctor_findings(ws: "TrainingHome", cfg: "TrainingConfig") -> list[Any]:
    """The dataset doctor's blocking findings for the datasets and subset folders ``cfg`` trains on
    (``lora_nb.datasets.doctor.Finding``; a dataset that does not exist is left to :func:`preflight`)."""
    from ..errors import NotFound

    if isinstance(cfg.dataset, str):
        wanted: dict[str, set[str] | None] = {cfg.dataset: None} if cfg.dataset else {}
    else:
        wanted = {}
        for sub in cfg.dataset:
            wanted.setdefault(sub.dataset, set()).add(sub.folder)   # type: ignore[union-attr]
    found: list[Any] = []
    for name, folders in sorted(wanted.items()):
        try:
            ds = ws.datasets.get(name)
        except NotFound:
            continue
        found += ds.doctor(folders)
    return found


def check_doctor(ws: "TrainingHome", cfg: "TrainingConfig") -> None:
    """Raise :class:`~lora_nb.errors.DatasetBlocked` when the dataset doctor finds what would make the run fail."""
    from ..errors import DatasetBlocked

    found = doctor_findings(ws, cfg)
    if not found:
        return
    first = found[0]
    more = f" ({len(found) - 1} more: {', '.join(f.code for f in found[1:])})" if len(found) > 1 else ""
    fixable = [f for f in found if f.fix]
    fix = ("Apply the fixes (the buttons beside Start in the Training tab, or ds.fix(finding) for each finding in "
           "ds.doctor()), then start again." if fixable else "Fix the dataset as the sentence says, then start again.")
    raise DatasetBlocked(f"The run cannot start: dataset '{first.dataset}': {first.message}{more}", fix=fix, findings=found)


def _dataset_shape(ws: "TrainingHome", cfg: "TrainingConfig") -> list[str]:
    """What makes the real sd-scripts find no images (it then exits 0 without training) or crash on an image."""
    reasons: list[str] = []
    wanted = [] if isinstance(cfg.dataset, str) else list(cfg.dataset)
    images: dict[str, list] = {}
    for sub in wanted:
        try:
            images.setdefault(sub.dataset, ws.datasets.get(sub.dataset).images())
        except Exception:
            continue   # reported by the caller
        if not any(i.subset == sub.folder for i in images[sub.dataset]):
            where = f"folder '{sub.folder}'" if sub.folder else "top folder"
            reasons.append(f"The {where} of dataset '{sub.dataset}' holds no images, so sd-scripts would skip that subset. "
                           "Check the subset's folder name (ds.subsets() lists them).")
    if wanted and all(s.is_reg for s in wanted):
        reasons.append("Every subset is a regularisation subset; sd-scripts needs training images too. Add a subset with is_reg=False.")
    if cfg.engine == "kohya" and cfg.enable_bucket and cfg.bucket_no_upscale:
        from ..config.buckets import bucket_or_none

        names = [cfg.dataset] if isinstance(cfg.dataset, str) else sorted({s.dataset for s in wanted})
        step = cfg.bucket_reso_steps
        for name in names:
            try:
                items = images.get(name) or ws.datasets.get(name).images()
            except Exception:
                continue
            for i in items:
                if not (i.width and i.height):
                    continue
                # the engine's BucketManager.select_bucket (ours is a copy) divides by the rounded sides
                if bucket_or_none(i.width, i.height, cfg.resolution_wh, cfg.min_bucket_reso, cfg.max_bucket_reso, step, True) is None:
                    reasons.append(f"{i.path.name} in '{name}' ({i.width}x{i.height}) is too small or too narrow for 'never upscale' "
                                   f"buckets: a side would round down to 0 at a bucket step of {step} px. "
                                   "Remove or crop that image, or turn 'never upscale' off.")
                    break
    return reasons


def dataset_manifest(ws: "TrainingHome", cfg: "TrainingConfig") -> dict[str, Any]:
    """File names, sizes and caption hashes of every image the run will see."""
    names = [cfg.dataset] if isinstance(cfg.dataset, str) else sorted({s.dataset for s in cfg.dataset})
    out: dict[str, Any] = {}
    for name in names:
        ds = ws.datasets.get(name)
        files = []
        for item in ds.images():
            caption = item.caption or ""
            files.append({"file": str(item.path.relative_to(ds.path)), "size": item.size,
                          "caption_sha256": hashlib.sha256(caption.encode("utf-8")).hexdigest()})
        out[name] = files
    return out


def submit_training(ws: "TrainingHome", cfg: "TrainingConfig") -> "JobHandle":
    """Queue a training run of ``cfg``; refuses with one clear reason when it cannot succeed."""
    from ..config.model import TrainingConfig
    from . import get_engine

    if not isinstance(cfg, TrainingConfig):
        raise ConfigError("submit_training needs a lora_nb.TrainingConfig.", fix="Build one: lora_nb.TrainingConfig(dataset=..., ...).")
    engine = get_engine(cfg.engine, ws)
    status = engine.check()
    if not status.ok:
        raise EngineError(status.problems[0] if status.problems else f"{cfg.engine} is not installed.",
                          fix="" if status.problems else "Run `lora-nb engines install kohya`.")
    check_doctor(ws, cfg)
    reasons = preflight(ws, cfg)
    if reasons:
        raise ConfigError("The run cannot start: " + reasons[0], fix=" ".join(reasons[1:3]) or None)
    job_id, run_dir = ws.jobs.reserve(cfg.output_name, "training")
    try:
        plan: LaunchPlan = engine.prepare(cfg, run_dir)
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1), encoding="utf-8")
        (run_dir / "manifest.json").write_text(json.dumps({"engine": cfg.engine, "engine_commit": status.version,
                                                           "engine_path": str(status.path),
                                                           "datasets": dataset_manifest(ws, cfg)}, indent=1), encoding="utf-8")
        from ..config import steps

        est = steps(cfg, ws)
        meta = {"engine": cfg.engine, "model_family": cfg.model_family, "resolution": cfg.resolution,
                "train_batch_size": cfg.train_batch_size, "dataset": cfg.dataset if isinstance(cfg.dataset, str) else "subsets",
                "output_name": cfg.output_name, "expected_steps": est.total_steps, "engine_commit": status.version,
                "files": {k: str(v) for k, v in plan.files.items()}, "controls": plan.controls,
                # the folders a Ray job in 'ship' mode takes to its node (lora_nb.jobs.ray_ship)
                "inputs": [str(ws.datasets.get(n).path) for n in ([cfg.dataset] if isinstance(cfg.dataset, str)
                                                                 else sorted({s.dataset for s in cfg.dataset}))]}
        return ws.jobs.submit_command(plan.argv, name=cfg.output_name, cwd=plan.cwd, env=plan.env, parser=plan.parser,
                                      parser_options=plan.parser_options, kind="training", meta=meta, job_id=job_id,
                                      gpus=cfg.num_processes)
    except Exception:
        if ws.store.query("SELECT 1 FROM jobs WHERE id=?", (job_id,)) == []:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
