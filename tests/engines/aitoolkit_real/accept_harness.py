"""Feed lora-nb-rendered job YAMLs to the REAL ai-toolkit's own config parsing, without loading any model.

Runs in ai-toolkit's venv with the checkout as working folder (``<venv>/bin/python accept_harness.py <checkout>
job1.yaml job2.yaml ...``); prints one JSON object per job, ``{"path", "ok", "stage", "error"}``, one a line.

Per job, what ai-toolkit itself does before it loads models (toolkit/job.py, jobs/process/BaseSDTrainProcess.py at
27a03a9), in the same order:
1. ``toolkit.config.get_config(path)`` (env substitution, its YAML loader, ``[name]`` replacement), ``job == extension``
   and one ``sd_trainer`` (or ``diffusion_trainer``: the same with flag polling) process;
2. the config classes BaseSDTrainProcess.__init__ builds: NetworkConfig, TrainConfig, ModelConfig (dtype from train),
   SaveConfig, SampleConfig, LoggingConfig, ``preprocess_dataset_raw_config`` + DatasetConfig per dataset, then
   ``validate_configs``;
3. the sample prompts as ``GenerateImageConfig`` (the baseline sample builds these before training);
4. ``toolkit.optimizer.get_optimizer`` on one dummy parameter with ``train.optimizer``/``lr``/``optimizer_params``;
5. ``toolkit.scheduler.get_lr_scheduler`` with ``lr_scheduler_params`` + ``total_iters = steps`` as the trainer passes
   them, and one optimizer + scheduler step.
"""
import json
import os
import sys
import traceback


def check(path):
    stage = "get_config"
    try:
        import torch
        from toolkit.config import get_config
        from toolkit.config_modules import (DatasetConfig, GenerateImageConfig, LoggingConfig, ModelConfig, NetworkConfig,
                                            SampleConfig, SaveConfig, TrainConfig, preprocess_dataset_raw_config,
                                            validate_configs)
        from toolkit.optimizer import get_optimizer
        from toolkit.scheduler import get_lr_scheduler

        config = get_config(path, None)
        assert config["job"] == "extension", f"job is {config['job']!r}"
        procs = config["config"]["process"]
        assert len(procs) == 1 and procs[0]["type"] in ("sd_trainer", "diffusion_trainer"), "expected one sd_trainer process"
        proc = procs[0]

        stage = "config_classes"
        net = proc.get("network")
        if net is not None:
            NetworkConfig(**net)
        train = TrainConfig(**proc.get("train", {}))
        model_raw = dict(proc.get("model", {}))
        model_raw["dtype"] = train.dtype
        model = ModelConfig(**model_raw)
        save = SaveConfig(**proc.get("save", {}))
        sample = SampleConfig(**proc.get("sample", {}))
        LoggingConfig(**proc.get("logging", {}))
        datasets = []
        raw = proc.get("datasets")
        if raw:
            for d in preprocess_dataset_raw_config(raw):
                datasets.append(DatasetConfig(**d))
        validate_configs(train, model, save, datasets)

        stage = "sample_prompts"
        if not train.disable_sampling:
            for item in sample.samples:
                g = GenerateImageConfig(prompt=item.prompt, width=item.width, height=item.height, negative_prompt=item.neg,
                                        seed=item.seed if item.seed is not None else sample.seed, guidance_scale=item.guidance_scale,
                                        num_inference_steps=item.sample_steps, network_multiplier=item.network_multiplier,
                                        output_path="/tmp/x.jpg", output_ext=sample.ext)
                if not isinstance(g.negative_prompt, str):
                    raise ValueError(f"negative prompt is {g.negative_prompt!r}, not text (the tokenizer rejects it)")

        stage = "optimizer"
        param = torch.nn.Parameter(torch.zeros(4, 4))
        opt = get_optimizer([param], train.optimizer.lower(), learning_rate=train.lr, optimizer_params=train.optimizer_params)

        stage = "scheduler"
        params = dict(train.lr_scheduler_params)
        if "max_iterations" not in params:
            params["total_iters"] = train.steps
        sched = get_lr_scheduler(train.lr_scheduler, opt, **params)
        param.grad = torch.ones_like(param)
        opt.step()
        sched.step()
        return {"path": path, "ok": True, "stage": "done", "error": None, "arch": model.arch}
    except BaseException as e:   # noqa: BLE001 - report every failure, keep going
        tb = traceback.format_exc().strip().splitlines()
        return {"path": path, "ok": False, "stage": stage, "error": f"{type(e).__name__}: {e}", "where": tb[-3:]}


def main():
    checkout, paths = sys.argv[1], sys.argv[2:]
    os.chdir(checkout)
    sys.path.insert(0, checkout)
    os.environ.setdefault("DISABLE_TELEMETRY", "YES")
    import io
    import contextlib
    for p in paths:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            result = check(p)
        result["printed"] = buf.getvalue()[-500:]
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
