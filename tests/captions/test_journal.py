"""Bulk caption edits are all-or-nothing: journaled, written in place, recovered after a crash.

The crash tests kill a real child process (SIGKILL, so nothing of ours runs on the way
out) in the middle of a bulk edit of real caption files, then check what the next user
of the dataset finds on disk.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from lora_nb.errors import LoraNbError

N = 60


def _captions(ds) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(ds.path.glob("*.txt"))}


def _undo_entries(ds) -> list[str]:
    d = ds.meta_dir / "undo"
    return sorted(os.listdir(d)) if d.is_dir() else []


def _child(ds, body: str) -> subprocess.Popen:
    """A child process that opens the dataset and runs ``body`` (``ds`` and ``undo_mod`` are bound)."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        import lora_nb, lora_nb.captions.journal as undo_mod
        ds = lora_nb.Workspace({str(ds.path.parent.parent)!r}).datasets.get({ds.name!r})
    """) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_killed_bulk_edit_is_rolled_back_but_a_live_one_is_left_alone(make_ds):
    ds = make_ds({f"i{n:03d}": f"tag{n}, smile" for n in range(N)})
    before = _captions(ds)
    # the child rewrites 25 captions, says so, then waits (a live writer) until it is killed
    child = _child(ds, """
        real, count = undo_mod.overwrite_small, [0]
        def slow(path, data):
            if count[0] == 25:
                print("half", flush=True)
                sys.stdin.readline()
            count[0] += 1
            return real(path, data)
        undo_mod.overwrite_small = slow
        ds.captions.add_trigger("ohwx")
    """)
    try:
        assert child.stdout.readline().strip() == "half", child.stderr.read()
        on_disk = _captions(ds)
        assert sum(v.startswith(b"ohwx, ") for v in on_disk.values()) == 25
        # another user of the dataset while the writer lives: nothing is rolled back, the step is not listed
        assert ds.captions.history() == []
        assert _captions(ds) == on_disk
        assert len(_undo_entries(ds)) == 1
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    # the writer died: the next use puts every caption back, byte for byte, and drops the step
    assert ds.captions.history() == []
    assert _captions(ds) == before
    assert _undo_entries(ds) == []
    assert ds.captions.frequencies()["smile"] == N and "ohwx" not in ds.captions.frequencies()


def test_killed_tagger_keeps_what_it_wrote_and_can_be_undone(make_ds):
    ds = make_ds({f"i{n}": f"old{n}" for n in range(10)})
    before = _captions(ds)
    child = _child(ds, """
        files = ds.image_files()
        w = ds.captions.bulk_writer("tag", files)
        for f in files[:3]:
            w.write(f, "tagged, 1girl")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.read()
    now = _captions(ds)
    assert sum(v == b"tagged, 1girl\n" for v in now.values()) == 3
    assert [h["op"] for h in ds.captions.history()] == ["tag"]     # recovered as a finished step
    assert _captions(ds) == now                                     # kept, not rolled back
    r = ds.captions.undo()
    assert r.changed == 3
    assert _captions(ds) == before


def test_failed_write_and_failed_rollback_finish_on_next_use(make_ds, monkeypatch):
    import lora_nb.captions.journal as undo_mod

    ds = make_ds({f"i{n}": f"tag{n}" for n in range(8)})
    before = _captions(ds)
    real, calls = undo_mod.overwrite_small, []

    def full_disk(path, data):
        calls.append(path)
        if len(calls) > 3:
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(undo_mod, "overwrite_small", full_disk)
    with pytest.raises(LoraNbError, match="putting them back failed too") as e:
        ds.captions.add_trigger("t")
    assert "Free some disk space" in e.value.fix
    assert sum(v.startswith(b"t, ") for v in _captions(ds).values()) == 3
    monkeypatch.setattr(undo_mod, "overwrite_small", real)          # space is back
    assert ds.captions.history() == []
    assert _captions(ds) == before and _undo_entries(ds) == []


def test_a_step_committed_while_another_thread_recovers_is_kept(make_ds, monkeypatch):
    """The race seen in the Captions panel (a preview thread recovering while Apply commits): the
    recoverer opens the step's lock, the writer commits (unlinks the lock, lets go of it), then the
    recoverer's flock succeeds on the removed file. That must not read as a dead writer: the edit
    stays, undoable. Forced here by committing inside the recoverer's flock call."""
    import fcntl

    import lora_nb.captions.journal as undo_mod

    ds = make_ds({f"i{n}": f"tag{n}" for n in range(4)})
    store = ds.captions._store
    log = store.undo_log()
    before = {str(ds.path / f"i{n}.txt"): f"tag{n}".encode() for n in range(4)}
    step = log.begin("add_trigger", before)
    step.write([(p, b"t, " + old) for p, old in before.items()])
    real_flock, fired = fcntl.flock, []

    def flock_after_commit(fd, op):
        if not fired:
            fired.append(fd)
            step.commit()                 # the writer finishes between our open and our flock
        return real_flock(fd, op)

    monkeypatch.setattr(undo_mod.fcntl, "flock", flock_after_commit)
    assert log.recover() == [] and fired
    monkeypatch.setattr(undo_mod.fcntl, "flock", real_flock)
    assert [h["op"] for h in ds.captions.history()] == ["add_trigger"]
    assert _captions(ds) == {f"i{n}.txt": f"t, tag{n}".encode() for n in range(4)}


def test_edits_and_recovery_in_parallel_threads_lose_nothing(make_ds):
    """Many bulk edits in one thread while two others keep counting and listing (each recovers first):
    every edit stays, in order, and undo walks them back to the start."""
    import threading

    ds = make_ds({f"i{n}": f"tag{n}" for n in range(6)})
    start, done = _captions(ds), threading.Event()

    def reader():
        while not done.is_set():
            ds.captions.history()
            ds.captions.frequencies()

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for k in range(15):
            assert ds.captions.add_trigger(f"k{k}").changed == 6
    finally:
        done.set()
        for t in readers:
            t.join()
    assert len(ds.captions.history()) == 15
    assert ds.captions.get(ds.path / "i0.png").startswith("k14, k13")
    for _ in range(15):
        ds.captions.undo()
    assert _captions(ds) == start


def test_step_that_died_before_touching_captions_is_cleaned_up(make_ds):
    ds = make_ds({"a": "x"})
    prep = ds.meta_dir / "undo" / ".prep-00000000000000000001-999999"
    prep.mkdir(parents=True)
    (prep / "lock").write_bytes(b"")
    (prep / "before.bin").write_bytes(b"garbage")
    assert ds.captions.history() == []
    assert not prep.exists() and _captions(ds) == {"a.txt": b"x"}


def test_damaged_undo_step_is_reported_and_removed(make_ds):
    ds = make_ds({"a": "x", "b": "y"})
    ds.captions.add_trigger("t")
    (step,) = _undo_entries(ds)
    (ds.meta_dir / "undo" / step / "files.bin").write_bytes(b"\x00not marshal")
    with pytest.raises(LoraNbError, match="unreadable"):
        ds.captions.undo()
    assert _undo_entries(ds) == []
    assert _captions(ds) == {"a.txt": b"t, x", "b.txt": b"t, y"}   # nothing half-restored


def test_in_place_rewrite_keeps_the_file_and_leaves_no_stale_tail(make_ds):
    big = ", ".join(f"tag{n}" for n in range(800))                   # over one page: replaced by a rename
    ds = make_ds({"short": "a, b, c, d, e", "big": big})
    ino = {p.name: p.stat().st_ino for p in ds.path.glob("*.txt")}
    ds.captions.remove(["b", "c", "d", "tag5"])
    assert (ds.path / "short.txt").read_bytes() == b"a, e"
    assert (ds.path / "short.txt").stat().st_ino == ino["short.txt"]   # rewritten in place
    assert (ds.path / "big.txt").read_text() == big.replace("tag5, ", "", 1)
    ds.captions.undo()
    assert (ds.path / "short.txt").read_bytes() == b"a, b, c, d, e"
    assert (ds.path / "big.txt").read_text() == big


def test_linked_captions_are_never_written_through(make_ds, tmp_path):
    ds = make_ds({"a": "x", "b": "y"})
    outside_hard = tmp_path / "source_a.txt"
    os.link(ds.path / "a.txt", outside_hard)                          # e.g. a caption shared with its source folder
    outside_sym = tmp_path / "source_b.txt"
    outside_sym.write_bytes(b"y")
    (ds.path / "b.txt").unlink()
    (ds.path / "b.txt").symlink_to(outside_sym)
    r = ds.captions.add_trigger("t")
    assert r.changed == 2
    assert outside_hard.read_bytes() == b"x" and outside_sym.read_bytes() == b"y"
    assert (ds.path / "a.txt").read_bytes() == b"t, x" and (ds.path / "b.txt").read_bytes() == b"t, y"
    assert not (ds.path / "b.txt").is_symlink()
    ds.captions.undo()
    assert (ds.path / "a.txt").read_bytes() == b"x" and (ds.path / "b.txt").read_bytes() == b"y"
    assert outside_hard.read_bytes() == b"x" and outside_sym.read_bytes() == b"y"


def test_undo_steps_are_capped_and_listed_in_order(make_ds):
    from lora_nb.captions.journal import UNDO_KEEP

    ds = make_ds({"a": "x"})
    for n in range(UNDO_KEEP + 3):
        ds.captions.add_trigger(f"t{n}")
    hist = ds.captions.history()
    assert len(hist) == UNDO_KEEP and len(_undo_entries(ds)) == UNDO_KEEP
    assert hist[-1]["op"].startswith("add_trigger t22") and hist[0]["op"].startswith("add_trigger t3")
    assert all(h["count"] == 1 for h in hist)


def test_a_prepared_step_whose_writer_died_before_locking_is_cleaned_up(make_ds):
    """A writer killed between making its folder and locking it leaves a folder with no lock: removed
    once its pid is gone; the same folder of a live writer (this process) is left alone."""
    ds = make_ds({"a": "x"})
    undo = ds.meta_dir / "undo"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = undo / f".prep-00000000000000000001-{int(dead.stdout)}"
    live = undo / f".prep-00000000000000000002-{os.getpid()}"
    for d in (gone, live):
        d.mkdir(parents=True)
        (d / "before.bin").write_bytes(b"x")
    assert ds.captions.history() == []
    assert not gone.exists() and live.exists() and _captions(ds) == {"a.txt": b"x"}
