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


# -- resuming after a dropped connection -------------------------------------------------------------------
# A client that follows the browser's protocol (widgets/upload.py's JS: a reply or a timeout per request, then
# `status` until the kernel answers, then on from the offset it reports) over a transport that loses messages.
import zlib  # noqa: E402


class Lossy:
    """Delivers requests to the widget unless told to lose the request (it never arrives) or its reply."""

    def __init__(self, up: ChunkedUpload) -> None:
        self.up, self.lose_request, self.lose_reply = up, set(), set()
        self.sent: list[tuple[str, int | None]] = []        # what the kernel received: (type, offset)
        self.n = 0

    def ask(self, content, buffers=()):
        self.n += 1
        if self.n in self.lose_request:
            return None                                    # the timeout answers
        self.sent.append((content["type"], content.get("offset")))
        reply = self.up._handle(content, list(buffers))
        return None if self.n in self.lose_reply else reply


def client_upload(t: Lossy, name: str, data: bytes, chunk: int, key: str = "k1", stop_after: int | None = None):
    """The browser's loop; returns the final reply, or ('stopped', id) after ``stop_after`` requests (a closed tab)."""
    start = t.ask({"type": "start", "name": name, "size": len(data), "key": key})
    assert start["type"] == "ready"
    uid, offset = start["id"], start["received"]
    crc_at = {0: 0}
    if offset not in crc_at:
        crc_at[offset] = zlib.crc32(data[:offset])
        assert crc_at[offset] == start["crc"]
    while offset < len(data):
        if stop_after is not None and t.n >= stop_after:
            return ("stopped", uid)
        end = min(offset + chunk, len(data))
        crc_at.setdefault(end, zlib.crc32(data[offset:end], crc_at[offset]))
        ack = t.ask({"type": "chunk", "id": uid, "offset": offset}, [memoryview(data[offset:end])])
        while ack is None:                                 # resync until the kernel answers
            ack = t.ask({"type": "status", "id": uid})
        assert ack["type"] in ("ack", "status") and crc_at[ack["received"]] == ack["crc"]
        offset = ack["received"]
    done = t.ask({"type": "finish", "id": uid, "crc": crc_at[len(data)]})
    while done is None:
        done = t.ask({"type": "status", "id": uid})
    return done


def test_a_dropped_connection_resumes_from_the_last_acknowledged_slice(tmp_path):
    up = ChunkedUpload(dest_dir=tmp_path)
    data = bytes((i * 7919) % 251 for i in range(10_500))
    t = Lossy(up)
    # requests: 1 start, 2-5 chunks at 0-3000. The chunk at 3000 arrives but its ack is lost (5); the first status
    # is lost too (6); the second (7) says 4000; the chunk at 4000 never arrives (8); a status (9) says 4000 again.
    t.lose_reply = {5}
    t.lose_request = {6, 8}
    r = client_upload(t, "a.bin", data, chunk=1000)
    assert r == {"type": "done", "path": "a.bin"}
    assert (tmp_path / "a.bin").read_bytes() == data
    offsets = [o for kind, o in t.sent if kind == "chunk"]
    assert offsets == sorted(set(offsets)) == list(range(0, len(data), 1000))   # each slice reached the kernel once
    assert ("status", None) in t.sent and up.duplicates == 0
    assert not list(tmp_path.glob(".upload-*"))


def test_a_slice_sent_twice_is_acknowledged_not_written_twice(tmp_path):
    up = ChunkedUpload(dest_dir=tmp_path)
    uid = up._handle({"type": "start", "name": "a.bin", "size": 6, "key": "k"}, [])["id"]
    assert up._handle({"type": "chunk", "id": uid, "offset": 0}, [b"abc"])["received"] == 3
    again = up._handle({"type": "chunk", "id": uid, "offset": 0}, [b"abc"])     # queued while offline, delivered late
    assert again == {"type": "ack", "received": 3, "crc": zlib.crc32(b"abc")} and up.duplicates == 1
    assert up._handle({"type": "chunk", "id": uid, "offset": 3}, [b"def"])["received"] == 6
    assert up._handle({"type": "finish", "id": uid, "crc": zlib.crc32(b"abcdef")}, [])["type"] == "done"
    assert (tmp_path / "a.bin").read_bytes() == b"abcdef"
    assert up._handle({"type": "status", "id": uid}, []) == {"type": "done", "path": "a.bin"}   # a lost 'done' asked again


def test_a_reloaded_page_or_new_kernel_takes_the_kept_part_up_again(tmp_path):
    data = bytes(range(256)) * 40
    first = Lossy(ChunkedUpload(dest_dir=tmp_path))
    assert client_upload(first, "b.bin", data, chunk=1024, key="b|10240|1", stop_after=5)[0] == "stopped"
    assert len(list(tmp_path.glob(".upload-*.part"))) == 1
    part = next(tmp_path.glob(".upload-*.part"))
    with open(part, "ab") as f:
        f.write(b"half a slice written when the kernel died")     # never acknowledged: cut off on resume
    second = Lossy(ChunkedUpload(dest_dir=tmp_path))              # a new widget (a new kernel)
    assert client_upload(second, "b.bin", data, chunk=1024, key="b|10240|1")["type"] == "done"
    assert (tmp_path / "b.bin").read_bytes() == data
    sent = [o for kind, o in second.sent if kind == "chunk"]
    assert sent and sent[0] == 4 * 1024 and second.up.resumed == 1   # the 4 acknowledged slices were not sent again
    assert not list(tmp_path.glob(".upload-*"))


def test_another_file_with_the_same_name_starts_afresh(tmp_path):
    up = ChunkedUpload(dest_dir=tmp_path)
    assert client_upload(Lossy(up), "c.bin", b"x" * 3000, chunk=1000, key="c|3000|1", stop_after=3)[0] == "stopped"
    r = up._handle({"type": "start", "name": "c.bin", "size": 3000, "key": "c|3000|2"}, [])   # modified since
    assert r["received"] == 0 and up.resumed == 0


def test_a_damaged_file_is_removed_not_kept(tmp_path):
    up = ChunkedUpload(dest_dir=tmp_path)
    uid = up._handle({"type": "start", "name": "d.bin", "size": 4, "key": "d"}, [])["id"]
    up._handle({"type": "chunk", "id": uid, "offset": 0}, [b"abcd"])
    r = up._handle({"type": "finish", "id": uid, "crc": zlib.crc32(b"abce")}, [])
    assert r["type"] == "error" and "damaged" in up.status and list(tmp_path.iterdir()) == []
