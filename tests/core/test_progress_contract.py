"""The event contract shared by jobs, engines and tasks: Progress snapshots, tqdm frames, parsers, task markers."""
import io

import pytest

from lora_nb.errors import JobError
from lora_nb.progress.events import EventKind, JobStatus, Progress
from lora_nb.progress.parsers import PlainParser, TaskParser, get_parser, register_parser
from lora_nb.progress.tqdm_line import parse_clock, parse_tqdm
from lora_nb.tasks.progress_reporter import Reporter


def test_status_is_a_str_enum():
    assert JobStatus.RUNNING == "running" and str(JobStatus.STOPPED) == "stopped"
    assert [s.is_final for s in JobStatus] == [False, False, False, True, True, True]


def test_progress_merge_keeps_known_fields_and_is_immutable():
    p = Progress(step=1, total_steps=10, loss=0.5)
    q = p.merged(Progress(step=2, lr=1e-4))
    assert (q.step, q.total_steps, q.loss, q.lr) == (2, 10, 0.5, 1e-4)
    assert p.step == 1
    with pytest.raises(AttributeError):
        p.step = 3  # type: ignore[misc]
    assert Progress.from_dict(q.to_dict() | {"unknown": 1}) == q
    assert Progress(step=50, total_steps=40).fraction == 1.0
    assert Progress(step=5).fraction is None


@pytest.mark.parametrize("line, n, total, rate, eta", [
    ("steps:  50%|█████     | 20/40 [00:10<00:10,  1.95it/s, avr_loss=0.127]", 20, 40, 1.95, 10.0),
    ("epoch 1: 3/7 [01:02:03<?, ?it/s]", 3, 7, None, None),
    ("x:   0%|          | 0/1 [00:00<?, ?it/s]", 0, 1, None, None),
    ("caching: 12/12 [00:24<00:00,  2.00s/it]", 12, 12, 0.5, 0.0),
])
def test_tqdm_frames(line, n, total, rate, eta):
    f = parse_tqdm(line)
    assert (f.n, f.total, f.eta) == (n, total, eta)
    assert (f.rate is None and rate is None) or abs(f.rate - rate) < 1e-9


def test_not_a_bar():
    assert parse_tqdm("loading 1/2 models") is None
    assert parse_tqdm("") is None
    assert parse_clock("?") is None and parse_clock("1:00:00") == 3600


def test_plain_parser_reads_any_tqdm_bar_and_judges_exit_codes():
    p = PlainParser()
    (ev,) = p.feed("100%|##########| 4/4 [00:02<00:00,  2.00it/s]")
    assert ev.kind is EventKind.PROGRESS and ev.data["step"] == 4
    assert p.verdict(0, stopped=False).status is JobStatus.SUCCEEDED
    assert p.verdict(0, stopped=True).status is JobStatus.STOPPED
    v = p.verdict(-9, stopped=False)
    assert v.status is JobStatus.FAILED and "signal 9" in v.reason
    assert "exit code 3" in p.verdict(3, stopped=False).reason


def test_task_markers_round_trip_through_the_parser():
    out = io.StringIO()
    r = Reporter(total=8, unit="img", stream=out)
    r.progress(4)
    r.artifact("/x/y.safetensors", "lora")
    r.hint("Install onnxruntime.", "no_ort")
    r.hint("Install onnxruntime.", "no_ort")
    print("an ordinary line", file=out)
    print("@@lora-nb {not json", file=out)
    p = TaskParser()
    events = [e for line in out.getvalue().splitlines() for e in p.feed(line)]
    assert [e.kind for e in events] == [EventKind.PROGRESS, EventKind.ARTIFACT, EventKind.HINT]
    assert events[0].data["step"] == 4 and events[0].data["rate_unit"] == "img/s"
    assert p.hints == ["Install onnxruntime."]


def test_parser_registry():
    with pytest.raises(JobError, match="no log parser called 'nope'"):
        get_parser("nope")
    register_parser("mine", PlainParser)
    assert isinstance(get_parser("mine"), PlainParser)
