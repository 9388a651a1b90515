"""The ``hf-trainer`` log parser on a REAL recorded transformers.Trainer run (tests/fixtures/hf: raw bytes with the
``\\r`` redraws), on diffusers/Accelerate-style bars, through the real job system, and with property tests."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lora_nb.progress.events import EventKind, JobStatus, Progress
from lora_nb.progress.hf_trainer import HFTrainerParser, parse_log_dict
from lora_nb.progress.parsers import get_parser, parser_names

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "hf" / "trainer_run.log"
# the loss dicts of the recorded run (logging_steps=5, 40 steps) and the steps they were logged at
LOSSES = [(5, 3.903), (10, 3.898), (15, 3.91), (20, 3.909), (25, 3.863), (30, 3.87), (35, 3.874), (40, 3.87)]


def _pieces(data: bytes) -> list[str]:
    """What the job follower hands a parser: the raw output split on both \\r and \\n."""
    return [p for p in re.split(r"[\r\n]", data.decode("utf-8", errors="replace")) if p]


def _run(parser, pieces):
    events = [e for piece in pieces for e in parser.feed(piece)]
    state = Progress()
    for e in events:
        if e.kind is EventKind.PROGRESS:
            state = state.merged(Progress.from_dict(e.data))
    return events, state


def test_the_recorded_trainer_run_gives_loss_by_step_lr_epochs_and_the_summary():
    events, final = _run(get_parser("hf-trainer"), _pieces(RECORDED.read_bytes()))
    prog = [e.data for e in events if e.kind is EventKind.PROGRESS]
    assert [(d["step"], d["loss"]) for d in prog if "loss" in d] == LOSSES
    assert [d["lr"] for d in prog if "lr" in d][:2] == [0.00045, 0.0003875]
    assert [d["epoch"] for d in prog if "loss" in d] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert (final.step, final.total_steps, final.total_epochs, final.loss, final.epoch) == (40, 40, 2, 3.87, 2)
    assert final.rate is not None and final.rate_unit == "it/s"
    # the evaluation bar (2/2) never moves the step: steps only grow
    steps = [d["step"] for d in prog if "step" in d]
    assert steps == sorted(steps) and max(steps) == 40
    msgs = [e.data["text"] for e in events if e.kind is EventKind.MESSAGE]
    assert msgs == ["Evaluation at epoch 1: eval_loss=3.914.", "Evaluation at epoch 2: eval_loss=3.914.",
                    "Training finished: train_loss=3.887, train_runtime=31.09, train_samples_per_second=5.146, "
                    "train_steps_per_second=1.287, epoch=2."]


def test_an_evaluation_before_training_with_no_banner_is_not_taken_for_the_step_bar():
    """REAL recording (tiny_trainer.py --eval-first): trainer.evaluate() draws a 2/2 bar first, at the default
    verbosity (no "Total optimization steps" banner), then the 40-step training bar."""
    events, final = _run(get_parser("hf-trainer"), _pieces((RECORDED.parent / "trainer_eval_first.log").read_bytes()))
    prog = [e.data for e in events if e.kind is EventKind.PROGRESS]
    assert [(d["step"], d["loss"]) for d in prog if "loss" in d] == [(5, 3.902), (10, 3.901), (15, 3.906), (20, 3.909),
                                                                     (25, 3.862), (30, 3.872), (35, 3.875), (40, 3.87)]
    assert {d["total_steps"] for d in prog if "loss" in d} == {40}
    assert (final.step, final.total_steps) == (40, 40)
    # the end of a run with no loss logged at all: a finished step bar, then a shorter evaluation bar, stays put
    p = HFTrainerParser()
    p.feed("100%|##########| 40/40 [00:01<00:00, 37.91it/s]")
    assert p.feed("  0%|          | 0/2 [00:00<?, ?it/s]")[0].data == {"phase": "evaluating"}
    assert p.train_total == 40


def test_diffusers_accelerate_bars_banners_and_other_bars():
    p = HFTrainerParser()
    assert p.feed("Map: 100%|##########| 1000/1000 [00:01<00:00, 912.40 examples/s]")[0].data == {"phase": "Map"}
    assert p.feed("Loading checkpoint shards: 100%|##########| 2/2 [00:03<00:00,  1.52s/it]")[0].data == {"phase": "Loading checkpoint shards"}
    assert p.feed("  Num Epochs = 3")[0].data == {"total_epochs": 3}
    assert p.feed("  Total optimization steps = 1,500")[0].data == {"total_steps": 1500}
    (e,) = p.feed("Steps:  10%|#         | 150/1500 [00:30<04:30,  5.00it/s, loss=0.123, lr=0.0001]")
    assert (e.data["step"], e.data["total_steps"], e.data["loss"], e.data["lr"], e.data["total_epochs"]) == (150, 1500, 0.123, 0.0001, 3)
    # a custom Accelerate loop that prints its own dicts with the step, JSON style, behind a logger prefix
    (e,) = p.feed('INFO:__main__:{"step": 200, "loss": 0.1, "lr": 2e-05, "epoch": 1.4}')
    assert e.data == {"step": 200, "loss": 0.1, "lr": 2e-05, "epoch": 2, "total_epochs": 3, "total_steps": 1500}
    assert p.feed("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")[0].kind is EventKind.HINT
    assert p.hints and "batch size" in p.hints[0]


def test_without_a_step_bar_the_loss_still_arrives():
    p = HFTrainerParser()                        # disable_tqdm=True: PrinterCallback prints the dicts only
    (e,) = p.feed("{'loss': 0.5, 'learning_rate': 1e-05, 'epoch': 0.1}")
    assert e.data == {"loss": 0.5, "lr": 1e-05, "epoch": 1}
    assert p.feed("{'grad_norm': 2.0}") == [] and p.feed("{not a dict}") == [] and p.feed("{'a': nan}") == []
    assert parse_log_dict("x" * 10 + "{" + "'k': 1, " * 800 + "}") is None      # over the size limit


def test_registered_by_name_and_the_job_chart_moves(ws, tmp_path):
    assert "hf-trainer" in parser_names()
    script = tmp_path / "replay.py"
    script.write_text(
        "import sys, time\n"
        f"data = open({str(RECORDED)!r}, 'rb').read()\n"
        "for i in range(0, len(data), 512):\n"
        "    sys.stderr.buffer.write(data[i:i + 512]); sys.stderr.flush(); time.sleep(0.01)\n")
    job = ws.jobs.submit_command([sys.executable, str(script)], name="hf replay", parser="hf-trainer", gpus=0)
    assert job.wait(60) is JobStatus.SUCCEEDED
    p = job.progress
    assert (p.step, p.total_steps, p.loss, p.epoch) == (40, 40, 3.87, 2)
    from lora_nb.jobs.history import loss_series

    assert loss_series(job.snapshot()) == LOSSES


@st.composite
def trainer_logs(draw):
    """A Trainer's output: a step bar redrawn at a random cadence, a loss dict every ``every`` steps, each printed
    the Trainer's way (bar cleared, dict, bar redrawn at the new step), chopped into random chunks."""
    total = draw(st.integers(1, 60))
    every = draw(st.integers(1, 10))
    losses = draw(st.lists(st.floats(0.001, 20, allow_nan=False), min_size=total, max_size=total))
    out, want = [f"  0%|          | 0/{total} [00:00<?, ?it/s]"], []
    shown = 0
    for step in range(1, total + 1):
        if draw(st.booleans()):                     # tqdm's mininterval: not every step is drawn
            shown = step
            out.append(f"\r {100 * step // total:3d}%|#         | {step}/{total} [00:01<00:02,  3.00it/s]")
        if step % every == 0:
            loss = round(losses[step - 1], 4)
            val = draw(st.sampled_from([repr(loss), repr(str(loss))]))
            out.append(f"\r{' ' * 40}\r{{'loss': {val}, 'grad_norm': 1.0, 'learning_rate': 5e-05, 'epoch': {step / total:.2f}}}\n")
            out.append(f"\r {100 * step // total:3d}%|#         | {step}/{total} [00:01<00:02,  3.00it/s]")
            shown = step
            want.append((step, loss))
    if shown != total:                              # tqdm's close() always draws the last frame
        out.append(f"\r100%|##########| {total}/{total} [00:02<00:00,  3.00it/s]\n")
    return "".join(out), want


@settings(max_examples=60, deadline=None)
@given(trainer_logs())
def test_property_every_logged_loss_lands_on_its_step(log_and_want):
    log, want = log_and_want
    events, final = _run(HFTrainerParser(), [p for p in re.split(r"[\r\n]", log) if p])
    got = [(e.data["step"], e.data["loss"]) for e in events if e.kind is EventKind.PROGRESS and "loss" in e.data]
    assert got == want
    assert final.step == final.total_steps


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_property_never_fails_on_any_text(text):
    p = HFTrainerParser()
    for piece in re.split(r"[\r\n]", text):
        for e in p.feed(piece):
            assert e.kind in (EventKind.PROGRESS, EventKind.MESSAGE, EventKind.HINT)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=40), st.floats(0, 1))
def test_property_the_supervisors_coalescing_keeps_each_loss_on_its_step(cuts, tick_chance):
    """The supervisor splits the raw stream at arbitrary read boundaries and skips bar frames a newer one replaced
    (CoalescingFeeder); the loss dicts still land on the steps the Trainer logged them at."""
    import random

    from lora_nb.jobs.lines import CoalescingFeeder, LineSplitter

    data, rng = RECORDED.read_bytes(), random.Random(len(cuts))
    feeder, splitter, events, at, reads = CoalescingFeeder(HFTrainerParser()), LineSplitter(), [], 0, 0
    while at < len(data):
        n, reads = cuts[reads % len(cuts)], reads + 1
        for text, redraw in splitter.feed(data[at:at + n]):
            events += feeder.feed(text, redraw)
        if rng.random() < tick_chance:
            events += feeder.tick()
        at += n
    for text, redraw in splitter.flush():
        events += feeder.feed(text, redraw)
    events += feeder.tick()
    assert [(e.data["step"], e.data["loss"]) for e in events if e.kind is EventKind.PROGRESS and "loss" in e.data] == LOSSES
