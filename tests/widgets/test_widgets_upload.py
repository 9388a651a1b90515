"""ChunkedUpload's kernel side, driven by the messages the browser sends (no browser here; the browser
suite uploads a real multi-megabyte ZIP through it)."""
from __future__ import annotations

import threading

import pytest

from lora_nb.widgets.upload import ChunkedUpload


def upload(up: ChunkedUpload, name: str, data: bytes, chunk: int = 1000, declared: int | None = None, finish: bool = True):
    r = up._handle({"type": "start", "name": name, "size": len(data) if declared is None else declared}, [])
    if r["type"] != "ready":
        return r
    uid = r["id"]
    for off in range(0, len(data), chunk):
        r = up._handle({"type": "chunk", "id": uid, "offset": off}, [memoryview(data[off:off + chunk])])
        if r["type"] != "ack":
            return r
    return up._handle({"type": "finish", "id": uid}, []) if finish else {"type": "open", "id": uid}


def test_upload_in_chunks_lands_whole_and_calls_back(tmp_path):
    up = ChunkedUpload(dest_dir=tmp_path)
    got, done = [], threading.Event()
    up.on_done(lambda p: (got.append(p), done.set()))
    data = bytes(range(256)) * 4000                               # ~1 MB
    r = upload(up, "data.zip", data, chunk=65536)
    assert r == {"type": "done", "path": "data.zip"}
    assert (tmp_path / "data.zip").read_bytes() == data and up.progress == 1.0
    assert done.wait(5) and got == [tmp_path / "data.zip"]
    assert not list(tmp_path.glob(".upload-*"))
    assert upload(up, "data.zip", b"second")["path"] == "data_2.zip"      # never overwrites


def test_size_limit_is_checked_before_writing(tmp_path):
    up = ChunkedUpload(dest_dir=tmp_path, max_bytes=100)
    r = upload(up, "big.zip", b"x" * 101)
    assert r["type"] == "error" and "more than the 100 allowed" in up.status
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["..", ".hidden", "a\x00b.zip", "con"])
def test_hostile_names_are_refused(tmp_path, name):
    up = ChunkedUpload(dest_dir=tmp_path)
    assert upload(up, name, b"data")["type"] == "error"
    assert list(tmp_path.iterdir()) == []


def test_path_parts_are_dropped(tmp_path):
    up = ChunkedUpload(dest_dir=tmp_path / "in")
    assert upload(up, "../../etc/passwd.zip", b"data")["path"] == "passwd.zip"
    assert (tmp_path / "in" / "passwd.zip").exists() and not (tmp_path / "etc").exists()


def test_cancel_removes_the_part_file(tmp_path):
    up = ChunkedUpload(dest_dir=tmp_path)
    r = upload(up, "x.zip", b"y" * 5000, finish=False)
    assert len(list(tmp_path.glob(".upload-*.part"))) == 1
    assert up._handle({"type": "cancel", "id": r["id"]}, [])["type"] == "cancelled"
    assert list(tmp_path.iterdir()) == [] and "nothing was kept" in up.status


def test_wrong_offsets_and_short_or_long_files_are_refused(tmp_path):
    up = ChunkedUpload(dest_dir=tmp_path)
    uid = up._handle({"type": "start", "name": "a.bin", "size": 10}, [])["id"]
    assert up._handle({"type": "chunk", "id": uid, "offset": 5}, [b"12345"])["type"] == "error"     # a gap
    assert up._handle({"type": "chunk", "id": uid, "offset": 0}, [b"12345"])["type"] == "ack"
    r = up._handle({"type": "finish", "id": uid}, [])                                                # 5 of 10
    assert r["type"] == "error" and "5 of 10 bytes" in up.status and list(tmp_path.iterdir()) == []
    r = upload(up, "b.bin", b"x" * 20, declared=10)
    assert r["type"] == "error" and "more data arrived" in up.status and list(tmp_path.iterdir()) == []
    assert up._handle({"type": "chunk", "id": "nope", "offset": 0}, [b"x"])["type"] == "error"


def test_abort_after_an_error_removes_the_part_file_and_keeps_the_message(tmp_path):
    up = ChunkedUpload(dest_dir=tmp_path)
    uid = up._handle({"type": "start", "name": "a.bin", "size": 10}, [])["id"]
    assert up._handle({"type": "chunk", "id": uid, "offset": 3}, [b"123"])["type"] == "error"       # a gap: the browser gives up
    status = up.status
    assert up._handle({"type": "abort", "id": uid}, [])["type"] == "aborted"
    assert list(tmp_path.iterdir()) == [] and up.status == status
    assert up._handle({"type": "chunk", "id": uid, "offset": 0}, [b"123"])["type"] == "error"       # gone for good


def test_replies_carry_the_request_number(tmp_path):
    up = ChunkedUpload(dest_dir=tmp_path)
    sent: list[dict] = []
    up.send = lambda content, buffers=None: sent.append(content)        # what would go to the browser
    up._on_msg(up, {"type": "start", "name": "a.bin", "size": 2, "seq": 7}, [])
    up._on_msg(up, {"type": "chunk", "id": sent[0]["id"], "offset": 0, "seq": 8}, [b"ab"])
    up._on_msg(up, {"type": "finish", "id": sent[0]["id"], "seq": 9}, [])
    assert [(m["type"], m["seq"]) for m in sent] == [("ready", 7), ("ack", 8), ("done", 9)]
    assert (tmp_path / "a.bin").read_bytes() == b"ab"


def test_part_files_left_by_a_dead_kernel_are_swept_but_live_ones_kept(tmp_path):
    import os
    import time

    stale, live = tmp_path / ".upload-old.part", tmp_path / ".upload-live.part"
    stale.write_bytes(b"x" * 100)
    live.write_bytes(b"y" * 100)
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    ChunkedUpload(dest_dir=tmp_path)
    assert not stale.exists() and live.exists()
