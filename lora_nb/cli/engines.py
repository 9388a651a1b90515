"""``lora-nb engines`` and ``lora-nb train``: check and install trainers, start a run from a config file.

    $ lora-nb engines check
    $ lora-nb engines install kohya --torch system
    $ lora-nb train my_lora.toml --follow          # a lora-nb config (TOML/JSON) or a kohya training TOML
    $ lora-nb train my_lora.toml --dry-run         # validate, show the step count and the files it would write
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import open_workspace as _ws

__all__ = ["register", "load_config_file"]




def load_config_file(path: str | Path, overrides: dict[str, Any] | None = None) -> Any:
    """A TrainingConfig from a lora-nb config (``.json`` or ``.toml`` with our field names) or a kohya training TOML."""
    from ..config.model import TrainingConfig

    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"The config file {p} does not exist.", fix="Check the path.")
    text = p.read_text(encoding="utf-8", errors="replace")
    overrides = dict(overrides or {})
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"{p.name} is not valid JSON ({e}).", fix="Fix the file, or save the config again from Python: cfg.to_dict().") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p.name} does not hold a config object.", fix="Write the fields as a JSON object.")
        return TrainingConfig(**{**data, **overrides})
    from .._compat import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p.name} is not valid TOML ({e}).", fix="Fix the file.") from None
    flat: dict[str, Any] = {}
    for key, value in data.items():  # sections are optional (kohya flattens them; so do we)
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    if "engine" in flat or "model_family" in flat or "dataset" in flat and "dataset_config" not in flat:
        return TrainingConfig(**{**flat, **overrides})
    return TrainingConfig.from_kohya_toml(p, **overrides)


def cmd_check(args: argparse.Namespace) -> int:
    from ..engines import ENGINES, get_engine

    ws = _ws(args)
    names = [args.name] if args.name else sorted(ENGINES)
    worst = 0
    for name in names:
        st = get_engine(name, ws).check()
        if args.json:
            print(json.dumps({"name": name, "ok": st.ok, "path": str(st.path), "python": str(st.python), "version": st.version,
                              "problems": list(st.problems)}))
        else:
            print(f"{name:<11} {'ok' if st.ok else 'NOT READY':<10} {st.summary()}")
        worst = worst if st.ok else 1
    return worst


def cmd_install(args: argparse.Namespace) -> int:
    from .jobs import follow_log
    from ..engines.install import install_engine

    ws = _ws(args)
    job = install_engine(ws, args.name, url=args.url, commit=args.commit, dest=args.dir, torch=args.torch, force=args.force)
    print(f"install job {job.id} (lora-nb jobs logs -f {job.id})")
    if args.no_follow:
        return 0
    return follow_log(job)


def cmd_train(args: argparse.Namespace) -> int:
    from ..config import steps
    from .jobs import follow_log

    ws = _ws(args)
    overrides: dict[str, Any] = {}
    for item in args.set or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"'{item}' is not KEY=VALUE.", fix="Write --set learning_rate=1e-4.")
        try:
            overrides[key.strip()] = json.loads(raw)
        except ValueError:
            overrides[key.strip()] = raw
    cfg = load_config_file(args.config, overrides)
    est = steps(cfg, ws)
    print(f"{cfg.engine} / {cfg.model_family}: {est.summary()}")
    if args.dry_run:
        from ..engines.launch import preflight

        for reason in preflight(ws, cfg):
            print(f"would refuse: {reason}")
        return 0
    job = ws.jobs.submit_training(cfg)
    print(f"training job {job.id} ({job.status.value}); run folder {job.run_dir}")
    if not args.follow:
        return 0
    try:
        return follow_log(job)
    except KeyboardInterrupt:
        print(f"\nstopped following; the run goes on (lora-nb jobs stop {job.id} stops it)", file=sys.stderr)
        return 130


def register(sub: Any) -> None:
    p = sub.add_parser("engines", help="check and install training engines (kohya sd-scripts, ai-toolkit)")
    esub = p.add_subparsers(dest="engines_command", metavar="ACTION", required=True)
    c = esub.add_parser("check", help="say whether each engine can run, and what to do if not")
    c.add_argument("name", nargs="?", choices=["kohya", "ai-toolkit"])
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_check)
    i = esub.add_parser("install", help="clone a pinned commit into the workspace with its own venv (needs internet)")
    i.add_argument("name", choices=["kohya", "ai-toolkit"])
    i.add_argument("--torch", default="cuda",
                   help="cuda (PyTorch CUDA wheels, default), system (use the host's torch, e.g. a Vast.ai template's), skip, or a pip requirement")
    i.add_argument("--commit", default=None, help="another commit than the tested one")
    i.add_argument("--url", default=None, help="another repository (a fork or a local mirror)")
    i.add_argument("--dir", default=None, help="where to put it (default: <workspace>/engines/<name>)")
    i.add_argument("--force", action="store_true", help="replace an existing folder (kept until the new install works)")
    i.add_argument("--no-follow", action="store_true", help="queue the install and return")
    i.set_defaults(func=cmd_install)
    t = sub.add_parser("train", help="start a training run from a config file (lora-nb TOML/JSON or a kohya training TOML)")
    t.add_argument("config")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a field (JSON values), e.g. --set max_train_epochs=4")
    t.add_argument("--dry-run", action="store_true", help="validate and show the step count; start nothing")
    t.add_argument("-f", "--follow", action="store_true", help="print the run's output until it ends")
    t.set_defaults(func=cmd_train)
