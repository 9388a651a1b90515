"""The kohya parser on recorded output of real sd-scripts runs (../shared/fixtures/kohya/captures)."""
from __future__ import annotations

import json

import pytest

from lora_nb.engines.kohya_parser import KohyaParser
from lora_nb.progress.events import EventKind, JobStatus, Progress
from lora_nb.jobs.lines import LineSplitter


def replay(captures, name, options=None, merged=True):
    """Feed a capture through the same splitting the job system does (stdout+stderr in arrival order)."""
    parser = KohyaParser(options=options or {})
    splitter = {"out": LineSplitter(), "err": LineSplitter()}
    events = []
    for raw in (captures / f"{name}.chunks.jsonl").read_text().splitlines():
        chunk = json.loads(raw)
        if chunk.get("s") not in splitter:  # marker records (e.g. when the signal was sent)
            continue
        data = chunk["b"].encode("latin-1")
        for text, _ in splitter[chunk["s"]].feed(data):
            events += parser.feed(text)
    for s in splitter.values():
        for text, _ in s.flush():
            events += parser.feed(text)
    return parser, events


@pytest.fixture
def captures(fixtures_dir):
    return fixtures_dir / "kohya" / "captures"


def fold(events):
    p = Progress()
    seq = []
    for e in events:
        if e.kind is EventKind.PROGRESS:
            p = p.merged(Progress.from_dict(e.data))
            seq.append(p)
    return p, seq


def test_run1_steps_epochs_loss_and_artifacts(captures):
    parser, events = replay(captures, "run1", {"final_path": "/opt/lora-trial/out/demo.safetensors"})
    final, seq = fold(events)
    assert (final.step, final.total_steps, final.epoch, final.total_epochs) == (40, 40, 2, 2)
    steps = [p.step for p in seq if p.step is not None]
    assert steps == sorted(steps) and set(range(1, 41)) <= set(steps)
    assert final.loss == pytest.approx(1.07)
    assert final.rate == pytest.approx(1 / 1.42, rel=0.02)  # "1.42s/it" shown as steps per second
    epochs_at = {p.epoch: p.step for p in seq if p.epoch}
    assert min(k for k in epochs_at) == 1
    arts = [(e.data["kind"], e.data["path"]) for e in events if e.kind is EventKind.ARTIFACT]
    assert arts == [("checkpoint", "/opt/lora-trial/out/demo-000001.safetensors"), ("lora", "/opt/lora-trial/out/demo.safetensors")]
    assert parser.model_saved
    assert parser.verdict(0, stopped=False).status is JobStatus.FAILED  # the file is not on this machine
    assert "does not exist" in parser.verdict(0, stopped=False).reason


def test_run1_success_when_the_file_exists(captures, tmp_path):
    final = tmp_path / "demo.safetensors"
    final.write_bytes(b"x")
    parser, _ = replay(captures, "run1", {"final_path": str(final)})
    assert parser.verdict(0, stopped=False).status is JobStatus.SUCCEEDED


def test_resume_progress_is_absolute(captures):
    parser, events = replay(captures, "run2_resume")
    final, seq = fold(events)
    steps = [p.step for p in seq if p.step is not None and p.step > 0]
    assert steps[0] >= 20 and final.step == 40 and final.total_steps == 40  # the bar itself went 0..20 of 40
    assert (final.epoch, final.total_epochs) == (2, 2)


def test_exit_zero_without_model_is_a_failure_with_the_fix(captures):
    parser, events = replay(captures, "run5")
    v = parser.verdict(0, stopped=False)
    assert v.status is JobStatus.FAILED and "model saved." in v.reason
    assert any("found no images" in h for h in parser.hints)


@pytest.mark.parametrize("capture, hint", [
    ("run4_dataset_unknown_key", "dataset config was rejected"),
    ("run5_no_model", "base model file was not found"),
])
def test_error_captures_give_hints(captures, capture, hint):
    parser, _ = replay(captures, capture)
    assert parser.verdict(1, stopped=False).status is JobStatus.FAILED
    assert any(hint in h for h in parser.hints), parser.hints


def test_stopped_run_is_stopped_whatever_the_exit_code(captures):
    parser, _ = replay(captures, "run3_pgrp")
    assert parser.verdict(-15, stopped=True).status is JobStatus.STOPPED
    assert parser.verdict(0, stopped=True).status is JobStatus.STOPPED


def test_edge_cases_partial_lines_glued_records_and_interleaving():
    p = KohyaParser()
    sp = LineSplitter()
    events = []
    stream = (b"  total optimization steps / x: 10\n\nepoch 1/2\n"
              b"steps:  10%|#  | 1/10 [00:01<00:09,  1.00it/s, avr_lo", b"ss=0.5]\rsteps:  20%|## | 2/10 [00:02<00:08,  1.00it/s, avr_loss=0.4]"
              b"2026-01-01 INFO     saving state at epoch 1\n", b"\nsaving checkpoint: /o/x-000001.safetensors\n"
              b"torch.OutOfMemoryError: CUDA out of memory. Tried\n")
    for chunk in stream:
        for text, _ in sp.feed(chunk):
            events += p.feed(text)
    final, _ = fold(events)
    assert (final.step, final.total_steps, final.loss, final.epoch) == (2, 10, 0.4, 1)
    assert any(e.kind is EventKind.ARTIFACT for e in events)
    assert p.hints and "ran out of memory" in p.hints[0]
