"""Failure summaries name the engine's own error and the fix, on RECORDED real sd-scripts output.

Uses recorded output of the real engine (no engine needed): ../shared/fixtures/kohya/captures (run4_*,
run5_*) and tests/fixtures/kohya/captures (recorded by tests/fixtures/kohya/make_captures.py; see its
README). Each recording is replayed byte for byte, stdout and stderr in their recorded order, with its
recorded exit code, as a REAL job (supervisor, kohya parser, failure summary): the job's error must
start with the engine's root exception (the first traceback's last line), never accelerate's
``CalledProcessError`` re-raise, and carry the hint for that failure.

CUDA out of memory cannot happen on this CPU-only machine, so that case replays a real recording whose
root exception line is replaced by PyTorch's own CUDA out-of-memory message (its wording from PyTorch's
CUDA caching allocator, as ENGINES.md A7 lists it); that is said again in the test.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lora_nb.engines.hints import HINTS
from lora_nb.progress.events import JobStatus

HERE = Path(__file__).resolve().parent
OURS = HERE.parents[1] / "fixtures" / "kohya" / "captures"
SHARED = HERE.parents[2].parent / "shared" / "fixtures" / "kohya" / "captures"
REPLAY = HERE / "replay_capture.py"
HINT_TEXT = {code: text for code, _, text in HINTS}

# (recording, where, the summary's first line must contain, hint code or None)
CASES = [
    ("workers0_persistent", OURS, "ValueError: persistent_workers option needs num_workers > 0", "persistent_workers"),
    ("wrong_family_sdxl_script", OURS, "AttributeError: 'NoneType' object has no attribute 'dtype'", "wrong_family"),
    ("wrong_family_flux_file", OURS, "KeyError: 'time_embed.0.weight'", "wrong_family"),
    ("missing_lycoris", OURS, "ModuleNotFoundError: No module named 'lycoris'", "lycoris"),
    ("disk_full", OURS, 'SafetensorError: Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })', "disk_full"),
    ("killed_sigkill", OURS, "the training process was killed by SIGKILL (9)", "ram_oom"),
    ("run5_no_model", SHARED, "is neither a valid local path nor a valid repo id", "missing_model"),
    ("run4_bad_type", SHARED, "TypeError: empty(): argument 'size' (position 1) must be tuple of ints, but found element of type str", "bad_option"),
    ("run4_int_resolution", SHARED, "AttributeError: 'int' object has no attribute 'split'", "bad_option"),
    ("run4_cli_unknown_flag", SHARED, "train_network.py: error: unrecognized arguments: --no_such_option 1", "bad_option"),
    ("run4_syntax_error", SHARED, "toml.decoder.TomlDecodeError: Unbalanced quotes (line 36 column 20 char 820)", "bad_option"),
    ("run4_dataset_unknown_key", SHARED, "voluptuous.error.MultipleInvalid: extra keys not allowed @ data['datasets'][0]['subsets'][0]['no_such_subset_key']", "dataset_toml"),
    ("run5_no_config", SHARED, "sd-scripts did not find its training config", None),
]


def replay_job(ws, prefix: Path, tmp: Path):
    final = tmp / "never-written.safetensors"
    return ws.jobs.submit_command([sys.executable, str(REPLAY), str(prefix)], name=prefix.name, parser="kohya",
                                  parser_options={"final_path": str(final)}, uses_gpu=False)


@pytest.mark.parametrize("name,where,root,hint", CASES, ids=[c[0] for c in CASES])
def test_failure_summary_names_the_engine_error(ws, tmp_path, name, where, root, hint):
    """Recorded real output, replayed through a real job: the summary's first line is the engine's own error."""
    prefix = where / name
    if not prefix.with_suffix(".chunks.jsonl").exists():
        pytest.skip(f"{prefix}.chunks.jsonl is not there (../shared missing beside this checkout)")
    job = replay_job(ws, prefix, tmp_path)
    assert job.wait(60) is JobStatus.FAILED
    first = job.error.splitlines()[0]
    assert root in first, job.error
    assert "CalledProcessError" not in first and "returned non-zero exit status" not in first
    if hint:
        assert HINT_TEXT[hint] in job.error, job.error
        assert job.error.splitlines()[1] == HINT_TEXT[hint]   # the fix comes right after the cause


def test_no_images_is_a_failure_with_its_hint(ws, tmp_path):
    """Recorded real output (run5: the image folder is empty): sd-scripts exits 0 without a model; lora-nb says why."""
    prefix = SHARED / "run5"
    if not prefix.with_suffix(".chunks.jsonl").exists():
        pytest.skip("../shared/fixtures is not beside this checkout")
    job = replay_job(ws, prefix, tmp_path)
    assert job.wait(60) is JobStatus.FAILED and job.exit_code == 0
    assert "never printed 'model saved.'" in job.error.splitlines()[0]
    assert HINT_TEXT["no_data"] in job.error


def test_cuda_out_of_memory_summary(tmp_path):
    """Not producible on this CPU-only machine: a REAL recording (workers0_persistent) with its root exception line
    replaced by PyTorch's CUDA out-of-memory message (the wording of PyTorch's CUDA caching allocator), fed to the
    kohya parser and the supervisor's summary function."""
    from lora_nb.engines.kohya_parser import KohyaParser
    from lora_nb.jobs.lines import LineSplitter
    from lora_nb.jobs.supervise import failure_summary

    oom = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of 23.57 GiB "
           "of which 17.06 MiB is free. Including non-PyTorch memory, this process has 23.54 GiB memory in use. Of the allocated "
           "memory 22.87 GiB is allocated by PyTorch, and 231.37 MiB is reserved by PyTorch but unallocated.")
    raw = b"".join(json.loads(line)["b"].encode("latin-1")
                   for line in (OURS / "workers0_persistent.chunks.jsonl").read_text().splitlines())
    raw = raw.replace(b"ValueError: persistent_workers option needs num_workers > 0", oom.encode())
    parser, splitter, lines = KohyaParser(options={}), LineSplitter(), []
    for text, redraw in [*splitter.feed(raw), *splitter.flush()]:
        parser.feed(text)
        if not redraw and text:
            lines.append(text)
    verdict = parser.verdict(1, stopped=False)
    summary = failure_summary(verdict.reason, 1, parser.hints, lines[-20:])
    assert summary.splitlines()[0].startswith("The job failed: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB")
    assert summary.splitlines()[1] == HINT_TEXT["cuda_oom"]


def test_the_fixed_workers_case_is_not_reached_by_lora_nb(ws):
    """The recorded failure (workers0_persistent) was lora-nb's own rendering; now the same config renders without the flag."""
    from lora_nb import TrainingConfig
    from lora_nb.engines.kohya import render_training

    cfg = TrainingConfig(dataset="alice", pretrained_model_name_or_path="/m.safetensors", max_data_loader_n_workers=0,
                         persistent_data_loader_workers=True)
    flat = {k: v for section in render_training(cfg, Path("/d.toml"), Path("/o"), Path("/l"), None).values() for k, v in section.items()}
    assert flat["max_data_loader_n_workers"] == 0 and "persistent_data_loader_workers" not in flat
