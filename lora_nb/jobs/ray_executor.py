"""Ray as the executor of a workspace: every job's command runs as a Ray Job on some node of a cluster.

The job model does not change: the same row, run folder, statuses, parsed progress, log, events and
panels. What changes is where the command runs. The job's local supervisor
(:mod:`lora_nb.jobs.supervise`) stays the owner of record; for a job whose ``executor`` is a Ray
address it does not start the command itself but (:class:`RayRun`):

- submits it with the Ray Jobs SDK (``JobSubmissionClient.submit_job``) under a fixed submission id
  (stored in the job's row as ``remote_id`` before it is sent), asking for the job's GPU slots as
  ``entrypoint_num_gpus``, so Ray places it on a node with free GPUs and queues it otherwise;
- streams the Ray log (``tail_job_logs``) into ``runs/<id>/log`` and through the job's parser, and
  keeps how much it has consumed in ``runs/<id>/remote.json``, so a supervisor started later (the
  first one died with its host's kernel, say) re-attaches by the submission id and continues the
  log exactly where the last one stopped;
- turns a stop request into ``stop_job`` (Ray sends SIGTERM to the entrypoint's whole process tree,
  then SIGKILL after ``RAY_JOB_STOP_WAIT_TIME_S``, 3 s by default, set on the cluster);
- maps Ray's final status to ours (``SUCCEEDED``/``FAILED``/``STOPPED``, the driver's exit code, or
  Ray's message when the node died), and fails the job with that reason when the cluster stops
  answering for ``ray_unreachable_seconds`` (30 s by default): no job is left "running" forever.

Files (the job's ``ray_files``, from the workspace's setting at submit): ``shared``, the default,
where nodes see the same paths as this machine (the workspace on a shared file system; every node
of a one-host cluster trivially): the command runs in the job's own folder and writes its outputs
straight into ``runs/<id>/``; nothing is copied. ``ship``, where they do not: the run folder and the
job's inputs go to the node in the Ray Job's ``working_dir`` and the outputs come back checked by
sha256 (:mod:`lora_nb.jobs.ray_ship`). See docs/scale.md.

Ray is imported only inside the functions that need it, so ``import lora_nb`` stays fast.

>>> normalize_executor("ray://10.0.0.5")
'http://10.0.0.5:8265'
>>> normalize_executor("http://head:8265/")
'http://head:8265'
>>> normalize_executor(" Local ")
'local'
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import queue
import shlex
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar
from urllib.parse import urlsplit

from ..errors import ClusterError, ConfigError
from ..progress.events import JobStatus
from . import records
from .ray_ship import to_local

if TYPE_CHECKING:  # pragma: no cover
    from .models import JobSnapshot, JobSpec
    from .supervise import Supervisor

__all__ = ["LOCAL", "normalize_executor", "is_remote", "check_reachable", "connect", "submission_id", "entrypoint",
           "RayRun", "ClusterError"]

LOCAL = "local"
DASHBOARD_PORT = 8265       # where a Ray head serves the dashboard and the Jobs API
RAY_CLIENT_PORT = 10001     # Ray Client's port: not the Jobs API
CALL_TIMEOUT = 15.0         # one Jobs API call (status, stop, logs)
SUBMIT_TIMEOUT = 60.0       # a submission (Ray sets up the job's runtime environment first)
POLL_INTERVAL = 0.5         # status polls while the job runs
PREAMBLE_LIMIT = 65536      # Ray's own lines before the command's output are dropped, up to this much

T = TypeVar("T")

_FIX_ADDRESS = "Use 'local', 'ray://HOST' (its dashboard on port 8265) or the dashboard's address 'http://HOST:PORT'."


def normalize_executor(value: str | None) -> str:
    """``'local'`` or the ``http(s)://host:port`` of a Ray dashboard (the Jobs API); ConfigError if neither.

    ``ray://HOST`` names a head node whose dashboard is on port 8265; ``ray://HOST:PORT`` a dashboard
    on PORT. Ray Client's port 10001 is refused: jobs go through the dashboard's Jobs API.
    """
    text = (value or "").strip()
    if text.lower() in ("", LOCAL):
        return LOCAL
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"'{value}' has no valid port.", fix=_FIX_ADDRESS) from None
    if parts.scheme not in ("ray", "http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username:
        raise ConfigError(f"'{value}' is not an executor.", fix=_FIX_ADDRESS)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if parts.scheme == "ray":
        if port == RAY_CLIENT_PORT:
            raise ConfigError(f"Port {RAY_CLIENT_PORT} in '{value}' is Ray Client's; jobs are sent to the dashboard's Jobs API.",
                              fix=f"Use ray://{parts.hostname} (dashboard port {DASHBOARD_PORT}) or http://{parts.hostname}:<dashboard port>.")
        return f"http://{host}:{port or DASHBOARD_PORT}"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def is_remote(executor: str | None) -> bool:
    """True for a Ray address, False for ``local`` (or nothing)."""
    return bool(executor) and executor != LOCAL


def check_reachable(address: str, timeout: float = 5.0) -> str:
    """The Ray version of the cluster whose Jobs API is at ``address``; ClusterError if it does not answer.

    A plain HTTP request with a timeout (no Ray import), so a submit to a dead cluster fails in
    seconds instead of hanging.
    """
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(address + "/api/version", timeout=timeout) as r:
            data = json.loads(r.read().decode("utf-8") or "{}")
    except (urllib.error.URLError, OSError, ValueError) as e:
        why = getattr(e, "reason", None) or e
        raise ClusterError(f"The Ray cluster at {address} cannot be reached ({why}).",
                           fix="Start it (`ray start --head --dashboard-host 0.0.0.0` on the head node), check the "
                               "address and that the dashboard port is open, or run jobs here with "
                               "ws.jobs.set_executor('local').") from None
    return str(data.get("ray_version") or "unknown")


def bounded(fn: Callable[[], T], timeout: float, what: str, address: str) -> T:
    """Run one blocking Ray call in a helper thread; ClusterError if it takes longer than ``timeout``."""
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:   # handed to the caller
            box["error"] = e

    t = threading.Thread(target=call, name=f"ray-{what}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise ClusterError(f"The Ray cluster at {address} did not answer ({what}) within {timeout:.0f} s.",
                           fix="Check that its head node is up and reachable.")
    if "error" in box:
        raise box["error"]
    return box["value"]


def connect(address: str, timeout: float = CALL_TIMEOUT) -> Any:
    """A ``JobSubmissionClient`` for ``address``; ClusterError if Ray is missing or the cluster does not answer."""
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise ClusterError("Ray is not installed, so jobs cannot be sent to a Ray cluster.",
                           fix="pip install 'lora-nb[ray]' (or 'ray[default]'), or run jobs here with "
                               "ws.jobs.set_executor('local').") from None
    try:
        return bounded(lambda: JobSubmissionClient(address), timeout, "connect", address)
    except ClusterError:
        raise
    except Exception as e:
        raise ClusterError(f"The Ray cluster at {address} cannot be reached ({_short(e)}).",
                           fix="Check that its head node is up (`ray status` there) and that the dashboard port is open.") from e


def submission_id(spec: "JobSpec") -> str:
    """The Ray submission id of a job: its id plus a hash of its workspace (two workspaces may share a cluster).

    >>> from lora_nb.jobs.models import JobSpec
    >>> submission_id(JobSpec(id="20261202-120000-ab12", workspace="/w", name="x", argv=["true"]))
    'lora-nb-20261202-120000-ab12-d1bb8c'
    """
    digest = hashlib.sha256(spec.workspace.encode("utf-8")).hexdigest()[:6]
    return f"lora-nb-{spec.id}-{digest}"


def entrypoint(argv: list[str], cwd: str) -> str:
    """The shell line Ray runs: ``cd`` into the job's folder, then ``exec`` the command (so its pid is Ray's child).

    >>> print(entrypoint(["python", "-c", "print(1)"], "/w/runs/a b"))
    cd '/w/runs/a b' && exec python -c 'print(1)'
    """
    return f"cd {shlex.quote(cwd)} && exec {shlex.join(argv)}"


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def _not_found(e: BaseException) -> bool:
    text = str(e)
    return "404" in text or "does not exist" in text


class LogTail:
    """``tail_job_logs`` in a thread of its own: chunks of text into a queue, ``None`` when the stream ends.

    The stream starts at the beginning of the Ray log; the first ``skip`` characters (already in our
    log) are dropped.
    """

    def __init__(self, client: Any, sid: str, skip: int) -> None:
        self.queue: "queue.Queue[str | None]" = queue.Queue()
        self.error: BaseException | None = None
        self.done = False       # its end mark was taken: everything it brought is handled
        self._client, self._sid, self._skip = client, sid, skip
        self.thread = threading.Thread(target=self._run, name=f"ray-tail-{sid}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        async def pump() -> None:
            skip = self._skip
            async for chunk in self._client.tail_job_logs(self._sid):
                if skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk[cut:], skip - cut
                if chunk:
                    self.queue.put(chunk)

        try:
            asyncio.run(pump())
        except BaseException as e:   # the connection dropped; the supervisor decides
            self.error = e
        finally:
            self.queue.put(None)


class RemoteState:
    """``runs/<id>/remote.json``: the submission, and how much of its Ray log is already in ``log``."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "remote.json"
        data: dict[str, Any] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
        self.submission_id: str | None = data.get("submission_id")
        self.address: str | None = data.get("address")
        self.submitted = bool(data.get("submitted"))
        self.consumed = int(data.get("consumed") or 0)      # characters of the Ray log handled
        self.log_bytes = int(data.get("log_bytes") or 0)    # bytes of runs/<id>/log written from them
        self.preamble_done = bool(data.get("preamble_done"))
        self.node_id: str | None = data.get("node_id")       # the node the command ran on (Ray's driver node)

    def save(self) -> None:
        data = {"submission_id": self.submission_id, "address": self.address, "submitted": self.submitted,
                "consumed": self.consumed, "log_bytes": self.log_bytes, "preamble_done": self.preamble_done,
                "node_id": self.node_id}
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path)


class RayRun:
    """The Ray half of a supervisor: submit (or re-attach), stream, stop, record the end. See the module doc."""

    def __init__(self, sup: "Supervisor", rec: "JobSnapshot") -> None:
        self.sup = sup
        self.rec = rec
        self.address = rec.executor
        self.state = RemoteState(sup.run_dir)
        self.sid = rec.remote_id or self.state.submission_id or submission_id(sup.spec)
        self.client: Any = None
        self.unreachable_after = float(sup.ws.settings.get("ray_unreachable_seconds") or 30.0)
        self.pending_text = ""      # Ray's preamble, held until the command's first line shows
        self.log: Any = None
        self.plan: dict[str, Any] | None = None    # a shipped job's path map (ray_ship), from runs/<id>/ship.json
        try:
            self.plan = json.loads((sup.run_dir / "ship.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass

    # -- Ray calls ---------------------------------------------------------------------------
    def _client(self) -> Any:
        if self.client is None:
            self.client = connect(self.address)
        return self.client

    def _call(self, what: str, fn: Callable[[Any], T], timeout: float = CALL_TIMEOUT) -> T:
        client = self._client()
        return bounded(lambda: fn(client), timeout, what, self.address)

    def _info(self) -> Any:
        """Ray's JobDetails of our submission, or None if the cluster does not know it."""
        try:
            return self._call("status", lambda c: c.get_job_info(self.sid))
        except RuntimeError as e:
            if _not_found(e):
                return None
            raise

    def _submit(self) -> None:
        spec = self.sup.spec
        env = {k: v for k, v in spec.env.items()}
        env.update({"PYTHONUNBUFFERED": "1", "LORA_NB_JOB_ID": spec.id, "LORA_NB_RUN_DIR": str(self.sup.run_dir)})
        if spec.gpus == 0 and "CUDA_VISIBLE_DEVICES" not in spec.env:
            env["CUDA_VISIBLE_DEVICES"] = ""      # like a local job that holds no slot: it sees no GPU
        kwargs: dict[str, Any] = {"entrypoint": entrypoint(spec.argv, spec.cwd or str(self.sup.run_dir)),
                                  "submission_id": self.sid, "runtime_env": {"env_vars": env},
                                  "metadata": {"lora_nb_job": spec.id, "name": spec.name[:200], "kind": spec.kind}}
        if spec.gpus:
            kwargs["entrypoint_num_gpus"] = spec.gpus
        staging = None
        if spec.ray_files == "ship":
            staging = self._stage(env)
            kwargs["entrypoint"] = f"exec {shlex.quote(sys.executable)} -m lora_nb.jobs.ray_node plan.json"
            kwargs["runtime_env"]["working_dir"] = str(staging)
        try:
            self._call("submit", lambda c: c.submit_job(**kwargs), timeout=SUBMIT_TIMEOUT)
        except RuntimeError as e:
            if "already exists" not in str(e):   # a submission of ours that raced a crash: attach to it
                raise
        finally:
            if staging is not None:    # Ray has uploaded it (or refused it)
                shutil.rmtree(staging, ignore_errors=True)

    def _stage(self, env: dict[str, str]) -> Path:
        """The staging folder of a shipped job; its plan saved as ``runs/<id>/ship.json``. ValueError if refused."""
        from .ray_ship import stage

        spec, ws = self.sup.spec, self.sup.ws
        job_root = str(ws.settings.get("ray_node_root") or "/tmp/lora-nb-node").rstrip("/") + "/" + self.sid
        try:
            staging, plan = stage(self.sup.run_dir, spec.meta, spec.argv, spec.cwd or str(self.sup.run_dir),
                                  sorted(env), job_root)
        except ClusterError as e:
            raise ValueError(str(e)) from None
        host = urlsplit(self.address).hostname or "127.0.0.1"
        plan["client"] = str(ws.settings.get("ray_client_address") or f"ray://{host}:{RAY_CLIENT_PORT}")
        tmp = self.sup.run_dir / "ship.json.tmp"
        tmp.write_text(json.dumps(plan), encoding="utf-8")
        os.replace(tmp, self.sup.run_dir / "ship.json")
        self.plan = plan
        return staging

    def _fetch(self) -> str | None:
        """A shipped job has ended: bring its outputs home (ray_ship.fetch_outputs); the failure reason or None."""
        from .ray_ship import fetch_outputs

        if self.plan is None or not self.state.node_id:
            return None
        _files, why = fetch_outputs(self.plan["client"], self.state.node_id, self.plan, self.sup.run_dir)
        return why

    # -- the log -------------------------------------------------------------------------------
    def _open_log(self) -> None:
        path = self.sup.run_dir / "log"
        if self.state.submitted and path.exists() and path.stat().st_size > self.state.log_bytes:
            with open(path, "r+b") as f:      # drop what a dead supervisor wrote after its last save
                f.truncate(self.state.log_bytes)
        self.log = open(path, "ab", buffering=0)

    def _take(self, text: str, feeder: Any, splitter: Any, final: bool = False) -> None:
        """Handle ``text``, the next characters of the Ray log."""
        if not self.state.preamble_done:
            self.pending_text += text
            marker = f"Running entrypoint for job {self.sid}: "
            at = self.pending_text.find(marker)
            end = self.pending_text.find("\n", at) if at >= 0 else -1
            if end >= 0:
                dropped = self.pending_text[:end + 1]
                self.state.consumed += len(dropped)
                text, self.pending_text = self.pending_text[end + 1:], ""
                self.state.preamble_done = True
            elif final or len(self.pending_text) > PREAMBLE_LIMIT:
                text, self.pending_text = self.pending_text, ""     # no marker (the runtime env failed): keep it all
                self.state.preamble_done = True
            else:
                return
        if not text:
            return
        data = text.encode("utf-8", errors="replace")
        self.log.write(data)
        self.state.consumed += len(text)
        self.state.log_bytes += len(data)
        for line, redraw in splitter.feed(data):
            if self.plan is not None:    # a shipped job names node paths: the local ones for parsers and artifacts
                line = to_local(line, self.plan)
            self.sup._handle_line(feeder, line, redraw)

    def _save(self) -> None:
        try:
            self.state.save()
        except OSError:
            pass

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> int:
        from ..progress.parsers import get_parser
        from .lines import CoalescingFeeder, LineSplitter

        sup = self.sup
        parser = get_parser(sup.spec.parser, sup.run_dir, sup.spec.parser_options)
        feeder, splitter = CoalescingFeeder(parser), LineSplitter()
        self.state.submission_id, self.state.address = self.sid, self.address
        if self.rec.remote_id != self.sid:
            sup._tx(remote_id=self.sid)
        self._open_log()
        self._save()
        try:
            exit_code, error = self._drive(feeder, splitter)
            if exit_code is _NOT_STARTED:
                return sup._finish(None, parser=None, launch_error=None)
            for line, redraw in splitter.flush():
                sup._handle_line(feeder, to_local(line, self.plan) if self.plan else line, redraw)
            sup._handle_events(feeder.tick())
            if sup.spec.ray_files == "ship":
                why = self._fetch()
                if why and error is None and exit_code == 0:
                    error = why[0].upper() + why[1:] + "."
        finally:
            self._save()
            self.log.close()
        return sup._finish(exit_code, parser, launch_error=error)

    def _drive(self, feeder: Any, splitter: Any) -> tuple[Any, str | None]:
        """Submit or re-attach, then follow the job to its end; (exit code, forced failure reason)."""
        sup = self.sup
        tail: LogTail | None = None
        first_failure: float | None = None
        last_error = ""
        announced_wait = running = stop_sent = False
        last_stop_check = 0.0
        while True:
            now = time.monotonic()
            if now - last_stop_check > 1.0:
                last_stop_check = now
                sup._check_stop_requested()
            try:
                if not self.state.submitted:
                    if sup.stop_at is not None:
                        return _NOT_STARTED, None
                    if self._info() is None:
                        try:
                            self._submit()
                        except (RuntimeError, ValueError) as e:    # Ray refused it (a bad runtime env, ...): final
                            return None, f"Ray refused the job: {_short(e)}"
                    self.state.submitted = True
                    self._save()
                info = self._info()
                if info is None:
                    return None, (f"the Ray cluster at {self.address} no longer knows its submission {self.sid} "
                                  "(was the cluster restarted?)")
                if sup.stop_at is not None and not stop_sent:
                    self._call("stop", lambda c: c.stop_job(self.sid))
                    stop_sent = True
                first_failure = None
            except (ClusterError, OSError, RuntimeError) as e:
                # OSError: requests' and Ray's connection errors; RuntimeError: the Jobs API answered with an
                # error (a head going down answers 5xx). Both may pass; give up only after the window.
                last_error = _short(e)
                self.client = None
                first_failure = first_failure or now
                if now - first_failure >= self.unreachable_after:
                    return None, (f"the Ray cluster at {self.address} stopped answering for {self.unreachable_after:.0f} s "
                                  f"({last_error}); the job was given up, check `ray job status {self.sid}` there")
                tail = self._drain(tail, feeder, splitter, 1.0)
                continue
            status = str(getattr(info.status, "value", info.status))
            if info.driver_node_id and info.driver_node_id != self.state.node_id:
                self.state.node_id = info.driver_node_id
            if status == "PENDING" and not announced_wait:
                announced_wait = True
                gpus = sup.spec.gpus
                with sup.ws.store.transaction() as c:
                    records.add_event(c, sup.job_id, "status", {"status": "starting", "reason": (
                        f"waiting on the Ray cluster for a node with {gpus} free GPU{'s' * (gpus != 1)}" if gpus
                        else "waiting on the Ray cluster")}, time.time())
            if status != "PENDING" and not running:
                running = True
                started = (info.start_time or 0) / 1000 or time.time()
                with sup.ws.store.transaction() as c:
                    records.update(c, sup.job_id, status=JobStatus.RUNNING, started_at=started)
                    records.add_event(c, sup.job_id, "status", {"status": "running", "ray_node": info.driver_node_id,
                                                                "submission_id": self.sid}, time.time())
            if status == "RUNNING" and (tail is None or tail.done):   # (re)start the stream where our log ends
                tail = LogTail(self._client(), self.sid, self.state.consumed + len(self.pending_text))
            if status in ("SUCCEEDED", "FAILED", "STOPPED"):
                self._finish_log(tail, feeder, splitter)
                if status == "STOPPED":
                    sup.stop_at = sup.stop_at or time.monotonic()   # stopped here or on the cluster: stopped
                    return info.driver_exit_code, None
                if status == "FAILED" and info.driver_exit_code is None:
                    return None, f"the Ray job failed: {_short(Exception(info.message or 'no reason given'))}"
                return (0 if status == "SUCCEEDED" and info.driver_exit_code is None else info.driver_exit_code), None
            tail = self._drain(tail, feeder, splitter, POLL_INTERVAL)

    def _drain(self, tail: "LogTail | None", feeder: Any, splitter: Any, wait: float) -> "LogTail | None":
        """Write what the tail has brought, waiting up to ``wait`` s for the first chunk; flush progress."""
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if tail is None:
                if left > 0:
                    time.sleep(left)
                break
            try:
                chunk = tail.queue.get(timeout=max(0.0, left)) if left > 0 else tail.queue.get_nowait()
            except queue.Empty:
                break
            if chunk is None:
                tail.done = True
                if left > 0:
                    time.sleep(left)
                break
            self._take(chunk, feeder, splitter)
        self.sup._handle_events(feeder.tick())
        self.sup._flush()
        self._save()
        return tail

    def _finish_log(self, tail: "LogTail | None", feeder: Any, splitter: Any) -> None:
        """The job has ended: take the rest of the tail, then whatever it missed from the full log."""
        if tail is not None:
            tail.thread.join(5.0)
            while True:
                try:
                    chunk = tail.queue.get_nowait()
                except queue.Empty:
                    break
                if chunk is not None:
                    self._take(chunk, feeder, splitter)
        try:
            full = self._call("logs", lambda c: c.get_job_logs(self.sid))
        except Exception:     # the node that held the log may be gone with the job
            full = None
        if full is not None:
            seen = self.state.consumed + len(self.pending_text)
            if len(full) > seen:
                self._take(full[seen:], feeder, splitter)
        if self.pending_text:
            self._take("", feeder, splitter, final=True)
        self._save()


_NOT_STARTED: Any = object()   # the job was stopped before it was ever submitted
