"""ai-toolkit: the rendered job YAML (golden file, ENGINES.md B2 keys, Part C checklist), the log parser,
and whole runs through the real job system.

Three kinds of test, each saying which in its docstring or section:
- rendering (no engine);
- RECORDED output of the real ai-toolkit (tests/fixtures/aitoolkit/captures, made on CPU with tiny random models by
  tests/engines/aitoolkit_real/record.py) fed to the parser the way the job system splits it;
- whole runs through the real job system on the STAND-IN (tests/engines/fake_aitoolkit/run.py), which was rebuilt
  from those recordings, plus a check that the stand-in prints what the real engine printed.
The real engine itself runs in tests/engines/test_engines_real_aitoolkit.py.
"""
from __future__ import annotations

import signal
from pathlib import Path

import pytest
import yaml

from golden_configs import AITK_CONFIGS
from lora_nb.config import TrainingConfig
from lora_nb.engines.aitoolkit import render_job
from lora_nb.engines.aitoolkit_parser import AIToolkitParser
from lora_nb.errors import ConfigError, EngineError
from lora_nb.progress.events import EventKind, JobStatus
from support import wait_for

GOLDEN = Path(__file__).resolve().parent / "golden"
FOLDERS = [{"image_dir": "/WS/datasets/alice/5_alice", "num_repeats": 5}]


def aitk_cfg(**kw):
    base = dict(engine="ai-toolkit", model_family="flux", dataset="alice", pretrained_model_name_or_path="black-forest-labs/FLUX.1-dev",
                output_name="demo", resolution="512", max_bucket_reso=1024, trigger_words=["alice"], max_train_epochs=None,
                max_train_steps=12, save_every_n_steps=5, optimizer_type="AdamW", mixed_precision="bf16")
    base.update(kw)
    return TrainingConfig(**base)


# -- rendering ---------------------------------------------------------------------------------------
def test_golden_job_yaml():
    """Rendering: the job YAML equals the reviewed golden file."""
    cfg = AITK_CONFIGS["flux_aitk"]
    job = render_job(cfg, FOLDERS, cfg.max_train_steps, None, Path("/RUN/output"), Path("/RUN/logs"))
    assert yaml.safe_dump(job, sort_keys=False, allow_unicode=True) == (GOLDEN / "flux_aitk.job.yaml").read_text()


def test_job_yaml_follows_the_checklist():
    """Rendering: ENGINES.md Part C checklist on the golden file."""
    job = yaml.safe_load((GOLDEN / "flux_aitk.job.yaml").read_text())
    assert job["job"] == "extension" and job["config"]["name"] == "alice"             # Part C ai-toolkit 1
    proc = job["config"]["process"][0]
    assert proc["type"] == "sd_trainer" and proc["training_folder"].startswith("/")
    assert proc["train"]["noise_scheduler"] == "flowmatch" == proc["sample"]["sampler"]   # B2: must match for FLUX
    assert proc["model"]["arch"] == "flux" and proc["model"]["name_or_path"] == "black-forest-labs/FLUX.1-dev"
    assert isinstance(proc["train"]["lr"], float) and proc["train"]["steps"] == 2000
    assert "${" not in (GOLDEN / "flux_aitk.job.yaml").read_text()
    assert proc["datasets"][0]["caption_ext"] == "txt" and proc["datasets"][0]["num_repeats"] == 5


def test_epochs_become_steps_with_the_shared_calculator(ws, dataset):
    """Rendering: epochs become steps with lora-nb's calculator (no engine runs)."""
    from lora_nb.config import steps
    from lora_nb.engines import get_engine

    ws.settings.set("aitoolkit_dir", str(ws.root))   # prepare() needs no checkout
    cfg = aitk_cfg(max_train_steps=None, max_train_epochs=3, save_every_n_steps=None, save_every_n_epochs=1)
    run_dir = ws.runs_dir / "manual"
    run_dir.mkdir()
    plan = get_engine("ai-toolkit", ws).prepare(cfg, run_dir)
    proc = yaml.safe_load(plan.files["job"].read_text())["config"]["process"][0]
    est = steps(cfg, ws)
    assert proc["train"]["steps"] == est.total_steps == 3 * 20        # 4 images x 5 repeats, batch 1
    assert proc["save"]["save_every"] == est.steps_per_epoch == 20
    assert plan.argv[1].endswith("run.py") and plan.argv[2] == str(plan.files["job"]) and Path(plan.argv[2]).is_absolute()
    assert plan.cwd == Path(ws.root) and plan.env["PYTHONUNBUFFERED"] == "1"
    assert plan.parser_options["stop_signal"] == "SIGINT"


@pytest.mark.parametrize("change, message", [
    (dict(sample_prompts=["price ${HOME}"], sample_every_n_steps=5), "read as an environment variable"),
    (dict(optimizer_type="AdamWScheduleFree"), "ai-toolkit has no optimizer"),
    (dict(lr_scheduler="polynomial"), "no learning-rate schedule"),
])
def test_bad_configs_are_refused_and_leave_no_run(ws, dataset, standin_aitoolkit, change, message):
    """Rendering + job system (stand-in configured, never started): refused before anything is queued."""
    with pytest.raises(ConfigError, match=message):
        ws.jobs.submit_training(aitk_cfg(**change))
    assert ws.jobs.list() == [] and list(ws.runs_dir.iterdir()) == []


def test_ai_toolkit_families():
    """Validation: lora-nb renders ai-toolkit jobs for FLUX, SD 1.5 and SDXL; SD 2.x and SD3 are refused with the fix."""
    for fam in ("sd15", "sdxl", "flux"):
        TrainingConfig(engine="ai-toolkit", model_family=fam, dataset="x", max_train_steps=10)
    enc = dict(clip_l="/m/l.safetensors", clip_g="/m/g.safetensors", t5xxl="/m/t.safetensors")
    for fam, extra in (("sd2", {}), ("sd3", enc)):
        with pytest.raises(ConfigError, match="flux, sd15 and sdxl families"):
            TrainingConfig(engine="ai-toolkit", model_family=fam, dataset="x", max_train_steps=10, **extra)


@pytest.mark.parametrize("name", ["sd15_aitk", "sdxl_aitk"])
def test_golden_sd_job_yaml(name):
    """Rendering: the SD 1.5 / SDXL job YAMLs equal the reviewed golden files."""
    cfg = AITK_CONFIGS[name]
    job = render_job(cfg, FOLDERS, cfg.max_train_steps, None, Path("/RUN/output"), Path("/RUN/logs"))
    assert yaml.safe_dump(job, sort_keys=False, allow_unicode=True) == (GOLDEN / f"{name}.job.yaml").read_text()


def test_sd_jobs_match_the_hand_edited_recordings():
    """Rendering vs RECORDINGS: arch and noise scheduler as in the hand-edited jobs that trained in the real engine
    (tests/fixtures/aitoolkit/configs/run6_sd15 and run6_sdxl); DDPM sampler for samples."""
    rec = Path(__file__).resolve().parents[1] / "fixtures" / "aitoolkit" / "configs"
    for name, recording in (("sd15_aitk", "run6_sd15"), ("sdxl_aitk", "run6_sdxl")):
        proc = yaml.safe_load((GOLDEN / f"{name}.job.yaml").read_text())["config"]["process"][0]
        want = yaml.safe_load((rec / f"{recording}.job.yaml").read_text())["config"]["process"][0]
        assert proc["model"]["arch"] == want["model"]["arch"]
        assert proc["train"]["noise_scheduler"] == want["train"]["noise_scheduler"] == "ddpm"
        assert proc.get("sample", {"sampler": "ddpm"})["sampler"] == "ddpm"


def test_sd_single_file_is_allowed_flux_file_is_not(tmp_path):
    """Rendering: a single .safetensors is refused for FLUX (ai-toolkit looks for transformer/ in it) but passed for
    SD 1.5/SDXL, which ai-toolkit loads with from_single_file."""
    from lora_nb.engines.aitoolkit import check_model_folder

    f = tmp_path / "m.safetensors"
    f.write_bytes(b"x")
    check_model_folder(str(f), "sd15")
    check_model_folder(str(f), "sdxl")
    with pytest.raises(ConfigError, match="single file"):
        check_model_folder(str(f), "flux")


def test_missing_engine_is_refused_with_the_fix(ws, dataset):
    """Job system, no engine: the missing checkout is refused with the fix."""
    with pytest.raises(EngineError, match="ai-toolkit was not found .*lora-nb engines install ai-toolkit"):
        ws.jobs.submit_training(aitk_cfg())


# -- parser ------------------------------------------------------------------------------------------
def test_parser_reads_the_bar_and_milestones(tmp_path):
    """Parser on hand-written lines in the shape of the recordings."""
    final = tmp_path / "demo" / "demo.safetensors"
    p = AIToolkitParser(options={"name": "demo", "final_path": str(final)})
    assert p.feed("Caching latents to disk: 100%|██████████| 4/4 [00:01<00:00,  3.1it/s]")[0].data == {"phase": "caching latents"}
    ev = p.feed("demo:   5%|▌         | 250/5000 [05:12<1:38:10,  1.25s/it, lr: 1.0e-04 loss: 4.123e-01]")[0].data
    assert (ev["step"], ev["total_steps"], ev["loss"], ev["lr"], round(ev["rate"], 2), ev["eta"]) == (250, 5000, 0.4123, 1e-4, 0.8, 5890.0)
    assert p.feed("Saving at step 250")[0].data["phase"] == "saving"
    e = p.feed(f"Saved checkpoint to {tmp_path}/demo/demo_000000250.safetensors")[0]
    assert e.kind is EventKind.ARTIFACT and e.data["kind"] == "checkpoint"
    assert p.feed(f"Saved checkpoint to {final}")[0].data["kind"] == "lora"
    assert p.feed("demo:  50%|█████     | 2/4 [00:01<00:01, 1.9it/s, lr: 1.0e-04 loss: nan]")[0].kind is EventKind.HINT
    assert p.hints and "NaN" in p.hints[0]


def test_parser_resume_is_absolute():
    """Parser on hand-written lines: after a resume the count is absolute."""
    p = AIToolkitParser(options={"name": "demo", "total_steps": 2000})
    assert p.feed("Found step 750 in metadata, starting from there")[0].data == {"step": 750, "total_steps": 2000}
    assert p.feed("demo:  38%|███▊      | 751/2000 [00:02<1:02:00,  3.0s/it, lr: 1.0e-04 loss: 3.1e-01]")[0].data["step"] == 751


def test_parser_ignores_other_bars_and_names():
    """Parser on hand-written lines: other bars are not training progress."""
    p = AIToolkitParser(options={"name": "demo"})
    assert p.feed("Generating Images:  50%|█████     | 1/2 [00:03<00:03,  3.0s/it]") == [] or \
        all(e.data.get("step") is None for e in p.feed("Generating Images:  50%|█████     | 1/2 [00:03<00:03,  3.0s/it]"))
    assert p.feed("demo2:  50%|█████     | 1/2 [00:03<00:03,  3.0s/it, lr: 1.0e-04 loss: 3.1e-01]") == []


def test_verdicts(tmp_path):
    """Parser verdicts (no engine)."""
    final = tmp_path / "demo.safetensors"
    p = AIToolkitParser(options={"name": "demo", "final_path": str(final)})
    v = p.verdict(0, stopped=False)
    assert v.status is JobStatus.FAILED and "final LoRA" in v.reason                 # exit 0 without the file
    final.write_bytes(b"x")
    assert p.verdict(0, stopped=False).status is JobStatus.SUCCEEDED
    p.feed("Job stopped")
    assert p.verdict(0, stopped=False).status is JobStatus.STOPPED                  # exit 0 after an interrupt
    q = AIToolkitParser(options={"name": "demo"})
    q.feed("Error running job: CUDA out of memory. Tried to allocate 2.00 GiB")
    v = q.verdict(1, stopped=False)
    assert v.status is JobStatus.FAILED and "CUDA out of memory" in v.reason and "GPU ran out of memory" in q.hints[0]
    assert AIToolkitParser().stop_signal == signal.SIGINT


# -- whole runs on the stand-in ------------------------------------------------------------------------
def test_full_run(ws, dataset, standin_aitoolkit):
    """STAND-IN through the real job system: a whole run, its artifacts and the LoRA metadata."""
    job = ws.jobs.submit_training(aitk_cfg(sample_prompts=["[trigger] portrait"], sample_every_n_steps=6))
    assert job.wait(120) is JobStatus.SUCCEEDED, (job.error, "\n".join(job.log_tail(20)))
    prog = job.progress
    assert (prog.step, prog.total_steps) == (12, 12) and prog.loss is not None and prog.lr == 1e-4
    kinds = [(Path(a["path"]).name, a["kind"]) for a in job.artifacts]
    assert ("demo_000000005.safetensors", "checkpoint") in kinds and ("demo_000000010.safetensors", "checkpoint") in kinds
    # baseline (step 0), step 6 and the final samples, as the real run1 recording has them
    assert ("demo.safetensors", "lora") in kinds and sum(k == "sample" for _, k in kinds) == 3
    out = job.run_dir / "output" / "demo"
    from safetensors import safe_open

    with safe_open(str(out / "demo.safetensors"), "np") as f:
        assert f.metadata()["ss_base_model_version"] == "flux.1"
    from lora_nb.engines import get_engine

    found = {a.kind for a in get_engine("ai-toolkit", ws).artifacts(job.run_dir)}
    assert {"lora", "checkpoint", "sample", "config"} <= found


def test_stop_sends_sigint_and_exit_zero_counts_as_stopped(ws, dataset, standin_aitoolkit, monkeypatch):
    """STAND-IN through the real job system: Stop is SIGINT, exit 0, 'Job stopped'."""
    monkeypatch.setenv("FAKE_AITK_STEP_SECONDS", "0.5")
    job = ws.jobs.submit_training(aitk_cfg(max_train_steps=200, save_every_n_steps=2))
    wait_for(lambda: (job.progress.step or 0) >= 3, timeout=60)
    job.stop()
    assert job.wait(30) is JobStatus.STOPPED
    assert job.exit_code == 0                                 # ai-toolkit's clean stop...
    assert "Job stopped" in "\n".join(job.log_tail(50))                 # ...reached via SIGINT (SIGTERM would leave no banner)
    assert not (job.run_dir / "output" / "demo" / "demo.safetensors").exists()


def test_resume_continues_from_the_newest_checkpoint(ws, dataset, standin_aitoolkit, monkeypatch):
    """STAND-IN through the real job system: resume continues from the newest checkpoint."""
    monkeypatch.setenv("FAKE_AITK_STEP_SECONDS", "0.3")
    first = ws.jobs.submit_training(aitk_cfg(max_train_steps=40, save_every_n_steps=4))
    wait_for(lambda: any(a["kind"] == "checkpoint" and "000000008" in a["path"] for a in first.artifacts), timeout=60)
    first.stop()
    assert first.wait(30) is JobStatus.STOPPED
    monkeypatch.setenv("FAKE_AITK_STEP_SECONDS", "0.01")
    second = ws.jobs.submit_training(aitk_cfg(max_train_steps=40, save_every_n_steps=4, resume=str(first.run_dir)))
    assert second.wait(60) is JobStatus.SUCCEEDED, second.error
    log = "\n".join(second.log_tail(200))
    resumed_at = int(log.split("Found step ")[1].split()[0])
    assert resumed_at >= 8 and second.progress.step == 40
    assert (first.run_dir / "output" / "demo" / "demo.safetensors").is_file()


def test_resume_from_a_folder_without_checkpoints_is_refused(ws, dataset, standin_aitoolkit, tmp_path):
    """Job system: a resume folder without checkpoints is refused before launch."""
    with pytest.raises(ConfigError, match="holds no ai-toolkit checkpoint of 'demo'"):
        ws.jobs.submit_training(aitk_cfg(resume=str(tmp_path)))
    assert ws.jobs.list() == []


def test_engine_failure_becomes_a_hint(ws, dataset, standin_aitoolkit, monkeypatch):
    """STAND-IN through the real job system: ai-toolkit's OOM abort becomes the GPU-memory hint."""
    monkeypatch.setenv("FAKE_AITK_FAIL", "oom")
    job = ws.jobs.submit_training(aitk_cfg())
    assert job.wait(60) is JobStatus.FAILED
    assert "GPU ran out of memory" in (job.error or "") or any("GPU ran out of memory" in h for h in job.hints)


def test_exit_zero_without_final_lora_is_a_failure(ws, dataset, standin_aitoolkit, monkeypatch):
    """STAND-IN through the real job system: exit 0 without the final LoRA is a failure."""
    monkeypatch.setenv("FAKE_AITK_NO_FINAL", "1")
    job = ws.jobs.submit_training(aitk_cfg())
    assert job.wait(60) is JobStatus.FAILED and job.exit_code == 0
    assert "final LoRA" in (job.error or "")


def test_engine_options_are_section_paths():
    """Rendering: engine_options are section.key paths."""
    cfg = AITK_CONFIGS["flux_aitk"].model_copy(update={"engine_options": {"model.low_vram": True, "train.ema_config.use_ema": True}})
    proc = render_job(cfg, FOLDERS, 100, None, Path("/RUN/output"), None)["config"]["process"][0]
    assert proc["model"]["low_vram"] is True and proc["train"]["ema_config"] == {"use_ema": True}
    with pytest.raises(ConfigError, match="not a section.key path"):
        render_job(cfg.model_copy(update={"engine_options": {"training_folder": "/x"}}), FOLDERS, 100, None, Path("/o"), None)


# -- rendering fixes found by running the real engine (each names the recording that showed it) --------------------
def test_sample_section_sets_neg():
    """Rendering. Without `neg`, ai-toolkit's SampleConfig uses False and the tokenizer fails at the baseline sample
    (recorded: run4_sample_no_neg)."""
    proc = render_job(aitk_cfg(sample_prompts=["p"], sample_every_n_steps=4), FOLDERS, 12, None, Path("/o"), None)["config"]["process"][0]
    assert proc["sample"]["neg"] == ""


@pytest.mark.parametrize("schedule", ["cosine", "cosine_with_restarts", "linear"])
def test_warmup_on_a_schedule_without_one_is_refused(schedule):
    """Rendering. ai-toolkit passes lr_scheduler_params to torch's schedulers, which reject num_warmup_steps
    (recorded: run4_cosine_warmup, TypeError, exit 1)."""
    with pytest.raises(ConfigError, match=f"ai-toolkit's {schedule} schedule has no warm-up"):
        render_job(aitk_cfg(lr_scheduler=schedule, lr_warmup_steps=10), FOLDERS, 100, None, Path("/o"), None)
    train = render_job(aitk_cfg(lr_scheduler="constant_with_warmup", lr_warmup_steps=0.1), FOLDERS, 100, None, Path("/o"), None)[
        "config"]["process"][0]["train"]
    assert train["lr_scheduler_params"] == {"num_warmup_steps": 10}
    train = render_job(aitk_cfg(lr_scheduler="constant_with_warmup", lr_warmup_steps=30), FOLDERS, 100, None, Path("/o"), None)[
        "config"]["process"][0]["train"]
    assert train["lr_scheduler_params"] == {"num_warmup_steps": 30}


def test_linear_schedule_decays_like_kohyas():
    """Rendering. ai-toolkit's linear is torch's LinearLR (default: ramp UP from lr/3); the real engine, given these
    factors, printed lr 1.0e-04 falling to 0.0e+00 at the last step."""
    train = render_job(aitk_cfg(lr_scheduler="linear"), FOLDERS, 12, None, Path("/o"), None)["config"]["process"][0]["train"]
    assert train["lr_scheduler"] == "linear" and train["lr_scheduler_params"] == {"start_factor": 1.0, "end_factor": 0.0}


@pytest.mark.parametrize("resolution, side", [("512", 512), ("64", 64), ("512,768", 640), ("1024,768", 896)])
def test_one_training_size(resolution, side):
    """Rendering. A list of resolutions is expanded by ai-toolkit into one copy of the dataset per size (the real engine
    printed 'Found 20 images' twice for [64, 96]), so "w,h" becomes one side of the same area."""
    d = render_job(aitk_cfg(resolution=resolution, min_bucket_reso=64), FOLDERS, 12, None, Path("/o"), None)["config"]["process"][0]["datasets"][0]
    assert d["resolution"] == [side]


def test_optimizers_without_their_package_are_refused():
    """Rendering (found by the real-engine acceptance suite, tests/engines/aitoolkit_real): ai-toolkit's Lion and
    DAdapt* import lion_pytorch / dadaptation, which its requirements.txt does not install: refused with the fix."""
    for o in ("Lion", "DAdaptAdam", "DAdaptLion", "DAdaptation"):
        with pytest.raises(ConfigError, match="does not include the .* package") as info:
            render_job(aitk_cfg(optimizer_type=o, learning_rate=1.0), FOLDERS, 12, None, Path("/o"), None)
        assert "AdamW" in info.value.fix


def test_optimizer_args_are_typed_and_checked():
    """Rendering (found by the real-engine acceptance suite): betas=0.9,0.99 becomes a list (it was the text
    '0.9,0.99'); eps (ai-toolkit passes its own) and args another optimizer rejects are refused with the fix."""
    job = render_job(aitk_cfg(optimizer_args=["betas=0.9,0.99", "weight_decay=0.01", "decouple=True"], optimizer_type="Prodigy",
                              learning_rate=1.0), FOLDERS, 12, None, Path("/o"), None)
    assert job["config"]["process"][0]["train"]["optimizer_params"] == {"betas": [0.9, 0.99], "weight_decay": 0.01, "decouple": True}
    for opt, args, match in (("AdamW", ["eps=1e-8"], "eps"), ("AdamW", ["relative_step=False"], "relative_step"),
                             ("Adafactor", ["betas=0.9,0.99"], "betas")):
        with pytest.raises(ConfigError, match=match) as info:
            render_job(aitk_cfg(optimizer_type=opt, optimizer_args=args), FOLDERS, 12, None, Path("/o"), None)
        assert info.value.fix.startswith("Remove")


def test_missing_local_model_folder_is_refused_before_launch(ws, dataset, standin_aitoolkit, tmp_path):
    """Rendering + job system. ai-toolkit takes a missing folder for a Hub id and fails at model loading (recorded:
    run4_missing_model); lora-nb refuses it with one sentence and queues nothing. A single file is refused too."""
    with pytest.raises(ConfigError, match="no-such-flux does not exist"):
        ws.jobs.submit_training(aitk_cfg(pretrained_model_name_or_path=str(tmp_path / "no-such-flux")))
    single = tmp_path / "flux1-dev.safetensors"
    single.write_bytes(b"x")
    with pytest.raises(ConfigError, match="diffusers folder, and .* is a single file"):
        ws.jobs.submit_training(aitk_cfg(pretrained_model_name_or_path=str(single)))
    assert ws.jobs.list() == []


# -- the parser on RECORDED real output --------------------------------------------------------------------------
AITK_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "aitoolkit"
CAPTURES = AITK_FIXTURES / "captures"


def replay(name, options=None):
    """Feed a capture of the real engine through the job system's own splitting (stdout and stderr in arrival order)."""
    import json

    from lora_nb.jobs.lines import LineSplitter

    parser = AIToolkitParser(options={"name": "demo", **(options or {})})
    splitter = {"out": LineSplitter(), "err": LineSplitter()}
    events = []
    for raw in (CAPTURES / f"{name}.chunks.jsonl").read_text().splitlines():
        chunk = json.loads(raw)
        if chunk.get("s") in splitter:
            for text, _ in splitter[chunk["s"]].feed(chunk["b"].encode("latin-1")):
                events += parser.feed(text)
    for sp in splitter.values():
        for text, _ in sp.flush():
            events += parser.feed(text)
    return parser, events


def exit_code(name):
    return int((CAPTURES / f"{name}.exit").read_text().split()[1])


def progress(events):
    return [e.data for e in events if e.kind is EventKind.PROGRESS]


def test_recorded_full_run(tmp_path):
    """Recorded real output (run1: 12 steps, saves at 5 and 10 keeping 1, samples at 0, 6 and 12)."""
    final = tmp_path / "demo.safetensors"
    parser, events = replay("run1", {"final_path": str(final), "total_steps": 12})
    steps = [p for p in progress(events) if "step" in p and p.get("phase") == "training"]
    assert steps[-1]["step"] == steps[-1]["total_steps"] == 12 and steps[-1]["loss"] == 1.666 and steps[-1]["lr"] == 1e-4
    assert [p["step"] for p in steps] == sorted(p["step"] for p in steps) and steps[0]["step"] == 0
    phases = [p["phase"] for p in progress(events) if "phase" in p]
    for phase in ("loading", "caching latents", "sampling", "training", "saving"):
        assert phase in phases
    arts = [(Path(e.data["path"]).name, e.data["kind"]) for e in events if e.kind is EventKind.ARTIFACT]
    assert arts == [("demo_000000005.safetensors", "checkpoint"), ("demo_000000010.safetensors", "checkpoint"),
                    ("demo.safetensors", "lora")]
    assert any("removed old save" in e.data.get("text", "") and "000000005" in e.data["text"] for e in events if e.kind is EventKind.MESSAGE)
    assert not parser.hints and exit_code("run1") == 0
    assert parser.verdict(0, stopped=False).status is JobStatus.FAILED          # the LoRA is not in tmp_path
    final.write_bytes(b"x")
    assert parser.verdict(0, stopped=False).status is JobStatus.SUCCEEDED


def test_recorded_stop_is_stopped_with_exit_zero():
    """Recorded real output (run2_stop: SIGINT to the group after the step-8 checkpoint -> 'Job stopped', exit 0)."""
    parser, events = replay("run2_stop", {"total_steps": 40})
    assert exit_code("run2_stop") == 0 and parser.saw_stop_banner and parser.step == 8
    assert parser.verdict(0, stopped=True).status is JobStatus.STOPPED
    assert parser.verdict(0, stopped=False).status is JobStatus.STOPPED         # an interrupt we did not send


def test_recorded_resume_progress_is_absolute():
    """Recorded real output (run2_resume: the same job again continues from the step-8 checkpoint)."""
    parser, events = replay("run2_resume", {"total_steps": 40})
    msgs = [e.data["text"] for e in events if e.kind is EventKind.MESSAGE]
    assert any(m.startswith("resuming from ") and m.endswith("demo_000000008.safetensors") for m in msgs)
    steps = [p["step"] for p in progress(events) if p.get("step") is not None]
    assert steps[0] == 8 and min(steps) == 8 and steps[-1] == 40


def test_recorded_sigterm_is_a_kill():
    """Recorded real output (run3_sigterm: ai-toolkit has no SIGTERM handler; exit -15, no banner)."""
    parser, _ = replay("run3_sigterm")
    assert exit_code("run3_sigterm") == -15 and not parser.saw_stop_banner
    assert parser.verdict(-15, stopped=False).status is JobStatus.FAILED
    assert parser.verdict(-15, stopped=True).status is JobStatus.STOPPED


@pytest.mark.parametrize("capture, code, cause", [
    ("run4_missing_model", "missing_model", "is not the path to a directory containing a config.json file"),
    ("run4_bad_optimizer", "bad_option", "Unknown optimizer type adamw16bit"),
    ("run4_cosine_warmup", "bad_option", "unexpected keyword argument 'num_warmup_steps'"),
    ("run4_sample_no_neg", "bad_option", "text input must be of type `str`"),
])
def test_recorded_errors_name_the_cause_and_fix(capture, code, cause):
    """Recorded real output: each failure (exit 1) gives the engine's own error and one hint."""
    parser, events = replay(capture)
    assert exit_code(capture) == 1
    v = parser.verdict(1, stopped=False)
    assert v.status is JobStatus.FAILED and cause in v.reason
    assert [e.data["code"] for e in events if e.kind is EventKind.HINT] == [code]


def test_oom_abort_gets_the_gpu_memory_hint():
    """ai-toolkit's own OOM ending (from its source; a CPU run cannot record it) gets the GPU-memory hint."""
    p = AIToolkitParser(options={"name": "demo"})
    assert p.feed("# OOM during training step, skipping batch 1/3 #")[0].data["level"] == "warning"
    p.feed("Error running job: OOM during training step 3 times in a row, aborting training")
    assert "GPU ran out of memory" in p.hints[0]


def test_recorded_lora_file_and_metadata():
    """The real run1's final LoRA (tests/fixtures/aitoolkit/loras/run1.safetensors): PEFT keys, no alpha, ai-toolkit's
    metadata, readable by lora-nb."""
    import json

    import lora_nb
    from safetensors import safe_open

    path = AITK_FIXTURES / "loras" / "run1.safetensors"
    with safe_open(str(path), "np") as f:
        keys = list(f.keys())
    assert keys and all(k.startswith("transformer.") and (".lora_A." in k or ".lora_B." in k) for k in keys)
    assert not any(k.endswith(".alpha") for k in keys)
    meta = lora_nb.lora.read_metadata(path)
    assert meta["ss_base_model_version"] == "flux.1" and meta["ss_output_name"] == "demo" and meta["name"] == "demo"
    assert json.loads(meta["training_info"]) == {"step": 12, "epoch": 0}
    assert json.loads(meta["software"])["name"] == "ai-toolkit"
    assert meta == json.loads((AITK_FIXTURES / "run1.lora_metadata.json").read_text())


# -- the STAND-IN against the recordings ----------------------------------------------------------------------------
def _shape(text: str) -> list[str]:
    """Console text reduced to what does not vary between runs: bar frames lose times, rates and values; consecutive
    frames of one bar collapse to its last one; timestamps in sample names go."""
    import re

    out: list[str] = []
    for seg in re.split(r"\r|\n", re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)):
        if not seg.strip():
            continue
        m = re.match(r"^(.*?)\s*\d+%\|.*?\| (\d+)/(\d+) \[", seg)
        if m:
            frame = f"BAR {m.group(1)} /{m.group(3)}"
            if out and out[-1].startswith(frame):
                out.pop()
            out.append(f"{frame} {m.group(2)}")
        else:
            out.append(re.sub(r"\d{13}__", "<ms>__", seg))
    return out


def test_standin_prints_what_the_real_engine_printed(tmp_path, dataset, ws):
    """STAND-IN vs recorded real output: run1's own job file (paths moved to this workspace) through the stand-in gives
    the recorded stdout line for line and the same bars on stderr, with the same exit code and files."""
    import subprocess
    import sys

    job = tmp_path / "run1.job.yaml"
    (tmp_path / "models" / "flux-tiny").mkdir(parents=True)
    job.write_text((AITK_FIXTURES / "configs" / "run1.job.yaml").read_text().replace("/WS", str(ws.root))
                   .replace("/opt/models", str(tmp_path / "models")))
    standin = Path(__file__).resolve().parent / "fake_aitoolkit"
    r = subprocess.run([sys.executable, str(standin / "run.py"), str(job)], cwd=standin, capture_output=True, text=True,
                       env={**__import__("os").environ, "PYTHONUNBUFFERED": "1"}, timeout=120)
    assert r.returncode == exit_code("run1"), r.stderr
    real_out = (CAPTURES / "run1.stdout").read_text().replace("/WS", str(ws.root)).replace("/opt/models", str(tmp_path / "models"))
    assert _shape(r.stdout) == _shape(real_out)
    real_err = [line for line in _shape((CAPTURES / "run1.stderr").read_text()) if line.startswith("BAR") or "WARNING" in line]
    assert [line for line in _shape(r.stderr) if line.startswith("BAR") or "WARNING" in line] == real_err
    recorded = {Path(line.split()[1]).name for line in (CAPTURES / "run1.files.txt").read_text().splitlines()
                if "/output/demo/" in line and "/samples/" not in line}
    made = {p.name for p in (ws.runs_dir / "rec-run1" / "output" / "demo").iterdir() if p.is_file()}
    assert made == recorded
