"""The supervisor: one small process per job that owns the engine process.

    python -m lora_nb.jobs.supervise <run-dir>

It runs in its own session, so a kernel can die at any moment without taking the
job with it. It starts the engine command in a new process group, appends
everything the engine prints to ``<run-dir>/log`` as it comes, runs the job's log
parser over every line (latest progress goes to the database about once a second),
forwards a stop request (SIGTERM) to the whole engine group and escalates to
SIGKILL after the grace period, and on exit records the final status, exit code,
end time and a failure summary on disk (``exit.json``) and in the database. Then
it asks the scheduler to start whatever is queued next.
"""
from __future__ import annotations

import collections
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..progress.events import EventKind, JobStatus, Progress
from .home import JobsHomeAt
from .lines import LineSplitter
from .models import JobSnapshot, JobSpec
from . import records, slots

PROGRESS_INTERVAL = 0.25    # seconds between progress writes to the database (followers read them)
POLL_INTERVAL = 0.25        # how often the loop looks at stop requests while the engine is quiet
MAX_STORED_MESSAGES = 200   # warnings/errors kept as events per job
LAST_LINES = 20



def gpu_env(rec: JobSnapshot, asked: dict[str, str]) -> dict[str, str]:
    """Pin the job to the devices of its GPU slots; a job that holds none sees no GPU (unless its own env says)."""
    if rec.gpus > 0 and rec.devices:
        return slots.cuda_env(rec.devices)
    if rec.gpus == 0 and "CUDA_VISIBLE_DEVICES" not in asked:
        return {"CUDA_VISIBLE_DEVICES": ""}
    return {}


class Supervisor:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.spec = JobSpec.read(run_dir)           # the very model the job was submitted with
        self.ws = JobsHomeAt(Path(self.spec.workspace))
        self.job_id: str = self.spec.id
        self.stop_at: float | None = None          # when the stop request arrived
        self.stop_signal: int = signal.SIGTERM      # the parser may ask for another (ai-toolkit: SIGINT)
        self.kill_at: float | None = None          # when to escalate to SIGKILL
        self.proc: subprocess.Popen | None = None
        self.progress = Progress()
        self.progress_dirty = False
        self.pending: list[tuple[str, dict[str, Any], float]] = []
        self.messages_stored = 0
        self.last_lines: collections.deque[str] = collections.deque(maxlen=LAST_LINES)
        self.current_line: str | None = None        # a \r-redrawn line not yet ended
        self.last_flush = 0.0
        self.gpu_watch: Any = None                  # the slowdown doctor's sampler (gpu_watch.py), once running

    # -- bookkeeping -------------------------------------------------------------
    def _tx(self, **fields: Any) -> None:
        with self.ws.store.transaction() as c:
            records.update(c, self.job_id, **fields)

    def _register(self) -> JobSnapshot:
        import psutil

        me = psutil.Process()
        ident = {"pid": me.pid, "started": me.create_time()}
        (self.run_dir / "supervisor.json").write_text(json.dumps(ident), encoding="utf-8")
        self._tx(supervisor_pid=me.pid, supervisor_started=me.create_time())
        rec = records.load(self.ws.store, self.job_id)
        assert rec is not None
        return rec

    def _grace(self) -> float:
        rec = records.load(self.ws.store, self.job_id)
        if rec and rec.stop_grace is not None:
            return float(rec.stop_grace)
        return float(self.ws.settings.get("stop_grace_seconds") or 10.0)

    # -- stopping ----------------------------------------------------------------
    def request_stop(self, *_: Any) -> None:
        if self.stop_at is not None:
            return
        self.stop_at = time.monotonic()
        self.kill_at = self.stop_at + self._grace()
        self._signal_group(self.stop_signal)

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _kill_tree(self) -> None:
        """SIGKILL the engine group and every descendant still alive (nothing is left orphaned)."""
        import psutil

        if self.proc is None:
            return
        victims = []
        try:
            victims = psutil.Process().children(recursive=True)
        except psutil.Error:
            pass
        self._signal_group(signal.SIGKILL)
        for p in victims:
            try:
                p.kill()
            except psutil.Error:
                pass

    def _check_stop_requested(self) -> None:
        if self.stop_at is None:
            row = self.ws.store.query("SELECT stop_requested FROM jobs WHERE id=?", (self.job_id,))
            if row and row[0][0] is not None:
                self.request_stop()

    # -- output ------------------------------------------------------------------
    def _handle_line(self, feeder: Any, text: str, redraw: bool) -> None:
        if redraw:
            self.current_line = text
        else:
            self.current_line = None
            if text:
                self.last_lines.append(text)
        self._handle_events(feeder.feed(text, redraw))

    def _handle_events(self, events: list) -> None:
        for event in events:
            if event.kind is EventKind.PROGRESS:
                self.progress = self.progress.merged(Progress.from_dict(event.data))
                self.progress_dirty = True
            elif event.kind in (EventKind.ARTIFACT, EventKind.HINT):
                self.pending.append((event.kind.value, event.data, event.time))
            elif event.kind is EventKind.MESSAGE and event.data.get("level") in ("warning", "error"):
                if self.messages_stored < MAX_STORED_MESSAGES:
                    self.messages_stored += 1
                    self.pending.append((event.kind.value, event.data, event.time))

    def _flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_flush < PROGRESS_INTERVAL:
            return
        if not (self.progress_dirty or self.pending):
            return
        self.last_flush = now
        with self.ws.store.transaction() as c:
            if self.progress_dirty:
                records.update(c, self.job_id, progress=self.progress.to_dict())
            for kind, data, when in self.pending:
                records.add_event(c, self.job_id, kind, data, when)
        self.progress_dirty = False
        self.pending.clear()

    # -- the run -----------------------------------------------------------------
    def run(self) -> int:
        from ..progress.parsers import get_parser

        rec = self._register()
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        if rec.executor != "local":    # the command runs as a Ray Job; this process follows it (ray_executor.py)
            from .ray_executor import RayRun

            return RayRun(self, rec).run()
        if rec.stop_requested is not None:
            return self._finish(None, parser=None, launch_error=None)

        spec = self.spec
        parser = get_parser(spec.parser, self.run_dir, spec.parser_options)
        self.stop_signal = parser.stop_signal
        env = dict(os.environ)
        env.update(spec.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env["PYTHONUNBUFFERED"] = "1"
        env["LORA_NB_JOB_ID"] = self.job_id
        env["LORA_NB_RUN_DIR"] = str(self.run_dir)
        env.update(gpu_env(rec, spec.env))
        try:
            self.proc = subprocess.Popen(spec.argv, cwd=spec.cwd or str(self.run_dir), env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                         close_fds=True)
        except OSError as e:
            return self._finish(None, parser, launch_error=f"The command could not be started: {e.strerror or e}.")
        import psutil

        try:
            engine_started = psutil.Process(self.proc.pid).create_time()
        except psutil.Error:
            engine_started = None
        now = time.time()
        with self.ws.store.transaction() as c:
            records.update(c, self.job_id, status=JobStatus.RUNNING, started_at=now, engine_pid=self.proc.pid,
                           engine_started=engine_started)
            records.add_event(c, self.job_id, "status", {"status": "running"}, now)
        from .gpu_watch import GpuWatch, nvml_sampler

        self.gpu_watch = GpuWatch(nvml_sampler(rec.devices) if rec.gpus > 0 and rec.devices else None, self.run_dir)
        self._check_stop_requested()
        self._pump(parser)
        return self._finish(self.proc.returncode, parser, launch_error=None)

    def _pump(self, parser: Any) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        from .lines import CoalescingFeeder
        from .redact import Redactor

        feeder = CoalescingFeeder(parser)
        splitter = LineSplitter()
        redactor = Redactor([os.environ.get(k, "") for k in self.spec.secret_env_keys])
        exited_at: float | None = None
        last_db_check = 0.0
        with open(self.run_dir / "log", "ab", buffering=0) as log:
            while True:
                try:
                    ready, _, _ = select.select([fd], [], [], POLL_INTERVAL)
                except InterruptedError:
                    ready = []
                if ready:
                    data = os.read(fd, 65536)
                    if not data:
                        break
                    data = redactor.feed(data)
                    log.write(data)
                    for text, redraw in splitter.feed(data):
                        self._handle_line(feeder, text, redraw)
                    if time.monotonic() - self.last_flush >= PROGRESS_INTERVAL:
                        self._handle_events(feeder.tick())
                        self._flush()
                now = time.monotonic()
                if self.gpu_watch is not None and (self.progress.rate or self.gpu_watch.sampler is not None):
                    self.pending.extend((e.kind.value, e.data, time.time()) for e in self.gpu_watch.tick(now, self.progress))
                if now - last_db_check > 1.0:
                    last_db_check = now
                    self._check_stop_requested()
                if self.kill_at is not None and now >= self.kill_at and self.proc.poll() is None:
                    self._kill_tree()
                    self.kill_at = now + 1.0
                if self.proc.poll() is not None:
                    # the engine is gone; a descendant may still hold the pipe open
                    exited_at = exited_at or now
                    if now - exited_at > 1.0:
                        self._kill_tree()
                        if now - exited_at > 3.0:
                            break
            tail = redactor.flush()
            log.write(tail)
            for text, redraw in [*splitter.feed(tail), *splitter.flush()]:
                self._handle_line(feeder, text, redraw)
            self._handle_events(feeder.tick())
        self.proc.wait()
        self._kill_tree()   # whatever the engine left behind in its group

    def _finish(self, exit_code: int | None, parser: Any, launch_error: str | None) -> int:
        stopped = self.stop_at is not None or self._stop_recorded()
        if self.current_line:
            self.last_lines.append(self.current_line)
        if launch_error:
            status, reason = JobStatus.FAILED, launch_error
        elif parser is None:
            status, reason = JobStatus.STOPPED, "stopped before it started"
        else:
            verdict = parser.verdict(exit_code, stopped)
            status, reason = verdict.status, verdict.reason
        hints = list(getattr(parser, "hints", []) or [])
        error = None
        if status is JobStatus.FAILED:
            error = failure_summary(reason, exit_code, hints, list(self.last_lines))
        now = time.time()
        exit_record = {"status": status.value, "exit_code": exit_code, "ended_at": now, "reason": reason,
                       "hint": hints[0] if hints else None, "last_lines": list(self.last_lines), "error": error}
        tmp = self.run_dir / "exit.json.tmp"
        tmp.write_text(json.dumps(exit_record, indent=1), encoding="utf-8")
        os.replace(tmp, self.run_dir / "exit.json")
        self._flush(force=True)
        with self.ws.store.transaction() as c:
            records.update(c, self.job_id, status=status, exit_code=exit_code, ended_at=now, error=error)
            records.add_event(c, self.job_id, "status", {"status": status.value, "reason": reason}, now)
        from .scheduler import kick

        kick(self.ws)
        self._arm_autostop()
        return 0

    def _arm_autostop(self) -> None:
        """If "stop this instance when the queue drains" is on and nothing is left, arm it (autostop.py)."""
        from ..errors import LoraNbError
        from .autostop import arm

        try:
            arm(self.ws)
        except (LoraNbError, OSError) as e:   # the job's own record is written; never fail it over this
            print(f"auto-stop: {e}", file=sys.stderr)

    def _stop_recorded(self) -> bool:
        row = self.ws.store.query("SELECT stop_requested FROM jobs WHERE id=?", (self.job_id,))
        return bool(row and row[0][0] is not None)


def failure_summary(reason: str | None, exit_code: int | None, hints: list[str], last_lines: list[str]) -> str:
    """One sentence (what happened), the fix when we know it, then the engine's last lines."""
    first = f"The job failed: {reason or 'unknown reason'}."
    if exit_code is not None and reason and str(exit_code) not in reason:
        first = f"The job failed with exit code {exit_code}: {reason}."
    parts = [first]
    if hints:
        parts.append(hints[0])
    if last_lines:
        parts.append("Last lines:\n" + "\n".join(last_lines[-10:]))
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m lora_nb.jobs.supervise <run-dir>", file=sys.stderr)
        return 2
    return Supervisor(Path(args[0]).resolve()).run()


if __name__ == "__main__":
    sys.exit(main())
