"""One job model from submission to widget: JobSpec (job.json, the row, what the supervisor reads) and
JobSnapshot (one read of the row with its artifacts and hints). Real subprocess jobs, real SQLite."""
from __future__ import annotations

import json
import sys

import pydantic
import pytest

from lora_nb.jobs import records
from lora_nb.jobs.models import JobSnapshot, JobSpec
from lora_nb.progress.events import JobStatus


def test_the_spec_is_written_once_and_is_the_source_of_the_row(ws):
    job = ws.jobs.submit_command([sys.executable, "-c", "print('hi')"], name="hi", env={"VISIBLE": "1", "HF_TOKEN": "hf_secret123"},
                                 meta={"a": [1, 2]}, parser_options={"x": 1})
    assert job.wait(60) is JobStatus.SUCCEEDED
    spec = JobSpec.read(job.run_dir)                      # what the supervisor read
    assert spec.id == job.id and spec.env == {"VISIBLE": "1"} and spec.secret_env_keys == ["HF_TOKEN"]
    assert "hf_secret123" not in (job.run_dir / "job.json").read_text()
    snap = job.snapshot()
    for column, value in spec.row().items():
        got = getattr(snap, column)
        assert (json.dumps(got) if column in ("argv", "env", "parser_options", "meta") else got) == value, column


def test_describe_is_the_snapshot_serialised_without_a_copied_field_list(ws):
    job = ws.jobs.submit_command([sys.executable, "-c", "print('hi')"], name="hi")
    job.wait(60)
    d = job.describe()
    assert set(d) == set(JobSnapshot.model_fields)
    assert d["status"] == "succeeded" and d["exit_code"] == 0 and isinstance(d["progress"], dict)
    json.dumps(d)


def test_a_snapshot_is_immutable_and_carries_artifacts_and_hints_in_order(ws):
    job = ws.jobs.submit_command([sys.executable, "-c", "print('hi')"], name="hi")
    job.wait(60)
    with ws.store.transaction() as c:
        records.add_event(c, job.id, "artifact", {"path": "/a.safetensors", "kind": "checkpoint"})
        records.add_event(c, job.id, "hint", {"text": "Lower the batch size."})
        records.add_event(c, job.id, "artifact", {"path": "/b.safetensors", "kind": "lora"})
        records.add_event(c, job.id, "artifact", {"path": "/a.safetensors", "kind": "lora"})   # the same path again
    snap = job.snapshot()
    assert [a["path"] for a in snap.artifacts] == ["/a.safetensors", "/b.safetensors"]
    assert snap.artifacts[0]["kind"] == "lora" and snap.hints == ("Lower the batch size.",)
    with pytest.raises(pydantic.ValidationError):
        snap.status = JobStatus.FAILED


def test_snapshots_lists_every_job_in_one_read_and_a_deleted_job_is_not_found(ws):
    a = ws.jobs.submit_command([sys.executable, "-c", "pass"], name="a")
    b = ws.jobs.submit_command([sys.executable, "-c", "pass"], name="b")
    a.wait(60), b.wait(60)
    assert [s.name for s in ws.jobs.snapshots()] == ["a", "b"]
    assert [s.name for s in ws.jobs.snapshots(status="succeeded")] == ["a", "b"]
    ws.jobs.delete(a.id)
    from lora_nb.errors import NotFound

    with pytest.raises(NotFound, match="There is no job"):
        a.snapshot()


def test_a_job_spec_refuses_unknown_fields():
    with pytest.raises(pydantic.ValidationError):
        JobSpec(id="x", workspace="/w", name="n", argv=["a"], surprise=1)
