"""Acceptance harness for the REAL kohya sd-scripts: runs INSIDE the engine's own venv (never lora-nb's).

Given the exact command line lora-nb would launch (``LaunchPlan.argv``: ``python -m
accelerate.commands.launch ... <script> --config_file train.toml`` or ``python <script> ...``), it
drives the real code of the sd-scripts checkout and of accelerate, in the order the real script
runs, and stops where the model weights would be loaded (none are needed):

1. launch line: accelerate's own ``launch_command_parser()`` and ``_validate_launch_command``, then
   the environment/command its launcher would use (``prepare_multi_gpu_env`` and torchrun's
   arguments for ``--multi_gpu``, ``prepare_simple_launcher_cmd_env`` otherwise);
2. the script's own ``setup_parser()``, ``parse_args``, ``verify_command_line_training_args`` and
   ``train_util.read_config_from_file``; every key of the TOML is also checked against the real
   parser's declarations (sd-scripts applies no ``type=``/``choices=`` to TOML values, so a wrong
   type would only break after the model is loaded);
3. the real ``Trainer().train(args)``: ``verify_training_args``, ``prepare_dataset_args``, the
   dataset blueprint and ``config_util`` dataset group (voluptuous schema, image scan, bucket
   manager), the no-data check, ``assert_extra_args`` of the script, ``prepare_accelerator`` and
   ``prepare_dtype`` -- until ``load_target_model``, which raises a sentinel here. Only two methods of
   the trainer *instance* are replaced: ``get_tokenize_strategy`` (it would download tokenizers from
   the Hugging Face hub) and ``load_target_model`` (the stop). The engine's files are not changed;
4. the model-free part after model loading, with the same calls the script makes:
   ``train_util.get_optimizer`` (on stand-in parameter groups shaped like the network's: U-Net and,
   unless U-Net only, text encoder), ``get_optimizer_train_eval_fn``, the ``DataLoader`` exactly as
   the script builds it (``num_workers``, ``persistent_workers``), the step count
   (``max_train_epochs * ceil(len(loader) / processes / accumulation)``), the script's
   ``full_fp16``/``full_bf16``/``fp8_base`` asserts, and ``train_util.get_scheduler_fix``.

Usage (from lora-nb's tests, run with the engine venv's python):
  python kohya_harness.py --sd-scripts DIR CASES.json   # JSON list of cases -> JSON list of results on stdout
  python kohya_harness.py --sd-scripts DIR --serve      # one JSON case per stdin line -> one result line
  python kohya_harness.py --sd-scripts DIR --options    # the real parsers' options, per script
A case is ``{"id": ..., "argv": [...]}``. Everything the engine prints goes to stderr; only results
go to stdout.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import os
import sys
import traceback

SCRIPTS = {  # script -> (module, trainer class)
    "train_network.py": ("train_network", "NetworkTrainer"),
    "sdxl_train_network.py": ("sdxl_train_network", "SdxlNetworkTrainer"),
    "flux_train_network.py": ("flux_train_network", "FluxNetworkTrainer"),
    "sd3_train_network.py": ("sd3_train_network", "Sd3NetworkTrainer"),
}


class ReachedModelLoading(Exception):
    """Raised by the stand-in ``load_target_model``: everything before it has run."""


class Harness:
    def __init__(self, sd_scripts: str) -> None:
        self.root = os.path.abspath(sd_scripts)
        os.chdir(self.root)  # lora-nb launches the scripts with the checkout as cwd
        sys.path.insert(0, self.root)
        self.modules: dict[str, object] = {}
        self.records: list[logging.LogRecord] = []
        old_factory = logging.getLogRecordFactory()

        def factory(*a, **kw):  # sees every record, whatever handlers setup_logging(reset=True) installs
            rec = old_factory(*a, **kw)
            if rec.levelno >= logging.WARNING:
                self.records.append(rec)
            return rec

        logging.setLogRecordFactory(factory)

    def module(self, script: str):
        name = SCRIPTS[script][0]
        if name not in self.modules:
            self.modules[name] = importlib.import_module(name)
        return self.modules[name]

    # -- one case ------------------------------------------------------------------
    def run(self, case: dict) -> dict:
        out: dict = {"id": case.get("id"), "ok": False, "stage": "launch", "warnings": [], "toml_problems": [],
                     "missing_packages": []}
        self.records.clear()
        self._reset()
        try:
            self._run(case, out)
            out["ok"] = not out["toml_problems"]
        except BaseException as e:  # SystemExit (argparse, exit(1)) and assertions included
            if isinstance(e, KeyboardInterrupt):
                raise
            out["error"] = f"{type(e).__module__}.{type(e).__name__}: {e}" if type(e).__module__ not in ("builtins",) else f"{type(e).__name__}: {e}"
            out["traceback"] = traceback.format_exc()[-6000:]
            out["where"] = _engine_frame(e.__traceback__, self.root)
        out["warnings"] = [_message(r) for r in self.records]
        return out

    def _reset(self) -> None:
        try:
            from library import strategy_base

            for cls in (strategy_base.TokenizeStrategy, strategy_base.TextEncodingStrategy,
                        strategy_base.TextEncoderOutputsCachingStrategy, strategy_base.LatentsCachingStrategy):
                cls._strategy = None
        except ImportError:
            pass
        try:
            from accelerate.state import AcceleratorState, GradientState, PartialState

            AcceleratorState._reset_state(True)
            GradientState._reset_state()
            PartialState._reset_state()
        except Exception:
            pass

    def _run(self, case: dict, out: dict) -> None:
        argv = list(case["argv"])
        num_processes = 1
        # 1. the launch line
        if argv[1:3] == ["-m", "accelerate.commands.launch"]:
            from accelerate.commands.launch import _validate_launch_command, launch_command_parser

            largs = launch_command_parser().parse_args(argv[3:])
            largs, _defaults, _mp = _validate_launch_command(largs)
            num_processes = int(largs.num_processes)
            script_path, script_args = largs.training_script, list(largs.training_script_args)
            out["launch"] = {"num_processes": num_processes, "multi_gpu": bool(largs.multi_gpu),
                             "mixed_precision": largs.mixed_precision,
                             "num_cpu_threads_per_process": largs.num_cpu_threads_per_process}
            if largs.multi_gpu:
                import torch.distributed.run as distrib_run
                from accelerate.commands.launch import _filter_args
                from accelerate.utils.launch import prepare_multi_gpu_env

                env = prepare_multi_gpu_env(largs)
                targs = _filter_args(largs, distrib_run.get_args_parser(),
                                     ["--training_script", largs.training_script, "--training_script_args", largs.training_script_args])
                out["launch"].update(launcher="multi_gpu", nproc_per_node=str(targs.nproc_per_node),
                                     env_mixed_precision=env.get("ACCELERATE_MIXED_PRECISION"),
                                     torchrun_script=targs.training_script, torchrun_args=list(targs.training_script_args))
                # the devices: gpu_ids None/'all' leaves the job's CUDA_VISIBLE_DEVICES as lora-nb set it; the port: no
                # master_port and one node make torch.distributed.run.run() rendezvous on c10d localhost:0 (a free port)
                out["launch"].update(gpu_ids=largs.gpu_ids, num_machines=largs.num_machines, master_port=targs.master_port,
                                     rdzv_backend=targs.rdzv_backend, rdzv_endpoint=targs.rdzv_endpoint, nnodes=str(targs.nnodes),
                                     cuda_visible_devices_kept=env.get("CUDA_VISIBLE_DEVICES") == os.environ.get("CUDA_VISIBLE_DEVICES"))
            else:
                from accelerate.utils.launch import prepare_simple_launcher_cmd_env

                cmd, env = prepare_simple_launcher_cmd_env(largs)
                out["launch"].update(launcher="simple", cmd=cmd, env_mixed_precision=env.get("ACCELERATE_MIXED_PRECISION"))
        else:
            script_path, script_args = argv[1], argv[2:]
            out["launch"] = {"launcher": "python", "num_processes": 1}
        script = os.path.basename(script_path)
        if script not in SCRIPTS or os.path.dirname(os.path.abspath(script_path)) != self.root:
            raise ValueError(f"{script_path} is not one of the LoRA scripts of {self.root}")
        out["script"] = script

        # 2. the script's own parser and TOML reader
        out["stage"] = "parse"
        mod = self.module(script)
        from library import train_util

        parser = mod.setup_parser()
        sys.argv = [script_path, *script_args]   # read_config_from_file parses sys.argv again
        args = parser.parse_args(script_args)
        train_util.verify_command_line_training_args(args)
        args = train_util.read_config_from_file(args, parser)
        out["stage"] = "toml types"
        if args.config_file:
            out["toml_problems"] = toml_problems(args.config_file + ".toml", parser)

        # 3. the real train() up to model loading
        out["stage"] = "train (up to model loading)"
        trainer = getattr(mod, SCRIPTS[script][1])()
        seen: dict = {}
        real_assert = trainer.assert_extra_args

        def assert_extra_args(a, train_group, val_group):
            seen["train"], seen["val"] = train_group, val_group
            return real_assert(a, train_group, val_group)

        def load_target_model(a, weight_dtype, accelerator):
            seen["accelerator"], seen["weight_dtype"] = accelerator, weight_dtype
            raise ReachedModelLoading

        trainer.assert_extra_args = assert_extra_args
        trainer.get_tokenize_strategy = lambda a: None   # would download tokenizers from the hub
        trainer.get_tokenizers = lambda strategy: []
        trainer.load_target_model = load_target_model
        try:
            trainer.train(args)
        except ReachedModelLoading:
            pass
        else:
            out["returned_early"] = True   # e.g. "No data found": train() returns without training
            out["stage"] = "returned before model loading"
            raise RuntimeError("train() returned before loading the model (see warnings)")
        group = seen["train"]

        # 4. model-free part of train() after model loading, as the script does it
        import torch

        out["stage"] = "network module"
        try:  # what the script imports right after the model (lycoris.kohya is not in sd-scripts' requirements)
            importlib.import_module(args.network_module)
        except ImportError as e:
            out["missing_packages"].append(f"{type(e).__name__}: {e}")
        if args.xformers:  # train_util.replace_unet_modules, right after the model is loaded
            try:
                import xformers.ops  # noqa: F401
            except ImportError:
                out["missing_packages"].append("ImportError: No xformers / xformersがインストールされていないようです")
        out["stage"] = "optimizer"
        trainable = _param_groups(args)
        try:
            _name, _oargs, optimizer = train_util.get_optimizer(args, trainable)
        except ImportError as e:  # e.g. "No bitsandbytes / ...", "No dadaptation / ...": the engine's environment
            out["missing_packages"].append(f"{type(e).__name__}: {e}")
            optimizer = torch.optim.AdamW(_param_groups(args), lr=args.learning_rate or 1e-4)
        train_util.get_optimizer_train_eval_fn(optimizer, args)

        out["stage"] = "data loader"
        from multiprocessing import Value

        group.set_current_strategies()
        current_epoch, current_step = Value("i", 0), Value("i", 0)
        collator = train_util.collator_class(current_epoch, current_step, group if args.max_data_loader_n_workers == 0 else None)
        n_workers = min(args.max_data_loader_n_workers, os.cpu_count())
        loader = torch.utils.data.DataLoader(group, batch_size=1, shuffle=True, collate_fn=collator, num_workers=n_workers,
                                             persistent_workers=args.persistent_data_loader_workers)
        torch.utils.data.DataLoader(seen["val"] if seen["val"] is not None else [], shuffle=False, batch_size=1,
                                    collate_fn=collator, num_workers=n_workers, persistent_workers=args.persistent_data_loader_workers)
        out["stage"] = "step count"
        if args.max_train_epochs is not None:
            args.max_train_steps = args.max_train_epochs * math.ceil(len(loader) / num_processes / args.gradient_accumulation_steps)
        group.set_max_train_steps(args.max_train_steps)
        out["stage"] = "precision asserts"
        if args.full_fp16:
            assert args.mixed_precision == "fp16", "full_fp16 requires mixed precision='fp16'"
        elif args.full_bf16:
            assert args.mixed_precision == "bf16", "full_bf16 requires mixed precision='bf16'"
        if args.fp8_base or getattr(args, "fp8_base_unet", False):
            assert args.mixed_precision != "no", "fp8_base requires mixed precision='fp16' or 'bf16'"
        out["stage"] = "lr scheduler"
        train_util.get_scheduler_fix(args, optimizer, num_processes)

        per_process = math.ceil(len(loader) / num_processes)
        steps_per_epoch = math.ceil(per_process / args.gradient_accumulation_steps)
        buckets: dict[str, int] = {}
        for ds in group.datasets:
            bm = ds.bucket_manager
            for reso, bucket in zip(bm.resos, bm.buckets):
                if bucket:
                    key = f"{reso[0]}x{reso[1]}"
                    buckets[key] = buckets.get(key, 0) + len(bucket)
        out.update(stage="done", num_processes=num_processes, batches=len(loader), total_steps=int(args.max_train_steps),
                   steps_per_epoch=steps_per_epoch, epochs=math.ceil(args.max_train_steps / steps_per_epoch) if steps_per_epoch else 0,
                   buckets=buckets, num_train_images=int(sum(d.num_train_images for d in group.datasets)),
                   num_reg_images=int(sum(d.num_reg_images for d in group.datasets)),
                   lr_scheduler=str(args.lr_scheduler), weight_dtype=str(seen["weight_dtype"]),
                   device=str(seen["accelerator"].device))


def _param_groups(args) -> list[dict]:
    """Stand-ins for the network's parameter groups (networks.lora: U-Net, then text encoder unless U-Net only)."""
    import torch

    groups = [{"params": [torch.nn.Parameter(torch.zeros(4, 4))], "lr": args.unet_lr if args.unet_lr is not None else args.learning_rate}]
    if not args.network_train_unet_only:
        te = args.text_encoder_lr
        if isinstance(te, (list, tuple)):
            te = te[0] if te else None
        groups.append({"params": [torch.nn.Parameter(torch.zeros(4, 4))], "lr": te if te is not None else args.learning_rate})
    return groups


def _message(rec: logging.LogRecord) -> str:
    try:
        return rec.getMessage()
    except Exception:
        return str(rec.msg)


def _engine_frame(tb, root: str) -> str | None:
    """``file:function:line`` of the innermost frame inside the sd-scripts checkout."""
    where = None
    while tb is not None:
        f = tb.tb_frame.f_code.co_filename
        if f.startswith(root):
            where = f"{os.path.relpath(f, root)}:{tb.tb_frame.f_code.co_name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _kind(action: argparse.Action) -> dict:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        d = {"kind": "flag"}
    else:
        t = action.type
        name = "str" if t is None else getattr(t, "__name__", str(t))
        d = {"kind": {"PosixPath": "Path", "Path": "Path"}.get(name, name)}
        if action.nargs in ("*", "+") or isinstance(action.nargs, int):
            d["nargs"] = True
        if action.choices is not None:
            d["choices"] = list(action.choices)
    return d


def parser_options(parser: argparse.ArgumentParser) -> dict[str, dict]:
    return {a.dest: _kind(a) for a in parser._actions if a.dest != "help"}


def toml_problems(path: str, parser: argparse.ArgumentParser) -> list[str]:
    """Keys of the training TOML the script does not declare, or whose value has the wrong Python type."""
    import toml

    with open(path, encoding="utf-8") as f:
        raw = toml.load(f)
    flat: dict = {}
    for k, v in raw.items():
        if isinstance(v, dict):
            flat.update(v)
        else:
            flat[k] = v
    actions = {a.dest: a for a in parser._actions}
    problems = []
    for key, value in flat.items():
        a = actions.get(key)
        if a is None:
            problems.append(f"{key}: not an option of the script")
            continue
        k = _kind(a)
        values = value if isinstance(value, list) else [value]
        if k.get("nargs") is None and isinstance(value, list) and key != "text_encoder_lr":
            problems.append(f"{key}: a list given to a single-value option")
            continue
        if k.get("nargs") and not isinstance(value, list) and key != "text_encoder_lr":
            problems.append(f"{key}: a single value given to a list option (write an array)")
        for v in values:
            bad = {"flag": lambda x: not isinstance(x, bool),
                   "int": lambda x: isinstance(x, bool) or not isinstance(x, int),
                   "float": lambda x: isinstance(x, bool) or not isinstance(x, (int, float)),
                   "int_or_float": lambda x: isinstance(x, bool) or not isinstance(x, (int, float)),
                   "str": lambda x: not isinstance(x, str),
                   "Path": lambda x: not isinstance(x, str)}.get(k["kind"], lambda x: False)(v)
            if bad:
                problems.append(f"{key}: {v!r} is not of kind {k['kind']}")
            elif "choices" in k and v not in k["choices"]:
                problems.append(f"{key}: {v!r} is not one of {k['choices']}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sd-scripts", required=True)
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--options", action="store_true")
    ap.add_argument("cases", nargs="?")
    a = ap.parse_args()
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)            # whatever the engine prints goes to stderr; stdout carries only results
    sys.stdout = sys.stderr
    h = Harness(a.sd_scripts)
    if a.options:
        result = {}
        for script in SCRIPTS:
            result[script] = parser_options(h.module(script).setup_parser())
        proto.write(json.dumps(result) + "\n")
        return 0
    if a.serve:
        proto.write(json.dumps({"ready": True}) + "\n")
        for line in sys.stdin:
            if not line.strip():
                continue
            proto.write(json.dumps(h.run(json.loads(line)), default=str) + "\n")
        return 0
    with open(a.cases, encoding="utf-8") as f:
        cases = json.load(f)
    proto.write(json.dumps([h.run(c) for c in cases], default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
