"""JobManager (``ws.jobs``) and the Job handle: submit, list, follow, stop and wait on jobs.

>>> import lora_nb, sys, tempfile
>>> ws = lora_nb.Workspace(tempfile.mkdtemp())
>>> job = ws.jobs.submit_command([sys.executable, "-c", "print('hello')"], name="hello")
>>> job.wait(30)
<JobStatus.SUCCEEDED: 'succeeded'>
>>> job.log_tail()
['hello']
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import JobError, NotFound
from ..settings import looks_secret
from ..progress.events import Event, JobStatus, Progress
from . import records, scheduler, slots
from .models import JobSnapshot, JobSpec, SubmitRequest

if TYPE_CHECKING:  # pragma: no cover
    from ..config.model import TrainingConfig
    from ..ports import JobsHome
    from .follower import Follower

__all__ = ["JobManager", "Job"]


class Job:
    """A handle on one job. Cheap to create; its state is read as one :class:`JobSnapshot`.

    ``job.snapshot()`` is one database read of everything (row, artifacts, hints); draw a frame or a
    line from one snapshot. The properties below are conveniences for scripts: each one is a
    snapshot of its own.
    """

    def __init__(self, manager: "JobManager", job_id: str) -> None:
        self._manager = manager
        self.id = job_id

    # -- state ---------------------------------------------------------------
    def snapshot(self, check: bool = True) -> JobSnapshot:
        """The job now, in one read. With ``check``, an active job whose supervisor is gone is marked
        failed first (a process check, no extra read unless it has died), so no snapshot shows a dead
        job as running."""
        snap = records.load(self._manager.home.store, self.id)
        if snap is None:
            raise NotFound(f"There is no job '{self.id}'.", fix="List jobs with ws.jobs.list() or `lora-nb jobs list`.")
        if check and snap.is_active:
            reason = scheduler.vanished_reason(snap)
            if reason and scheduler.mark_vanished(self._manager.home, snap, reason):
                return self.snapshot(check=False)
        return snap

    def _refresh_status(self) -> JobStatus:
        """Current status, after the liveness check; a queued job gets a chance to start."""
        snap = self.snapshot()
        if snap.status is JobStatus.QUEUED:
            scheduler.kick(self._manager.home)
            return self.snapshot().status
        return snap.status

    @property
    def status(self) -> JobStatus:
        return self._refresh_status()

    @property
    def name(self) -> str:
        return self.snapshot(check=False).name

    @property
    def kind(self) -> str:
        return self.snapshot(check=False).kind

    @property
    def progress(self) -> Progress:
        """Newest progress as the supervisor saved it (at most a quarter of a second old)."""
        return self.snapshot(check=False).progress

    @property
    def exit_code(self) -> int | None:
        return self.snapshot(check=False).exit_code

    @property
    def error(self) -> str | None:
        """Failure summary: what happened, the fix for known failures, and the last lines."""
        return self.snapshot(check=False).error

    @property
    def run_dir(self) -> Path:
        return self._manager.home.runs_dir / self.id

    @property
    def log_path(self) -> Path:
        return self.run_dir / "log"

    @property
    def meta(self) -> dict[str, Any]:
        return self.snapshot(check=False).meta

    @property
    def created_at(self) -> float:
        return self.snapshot(check=False).created_at

    @property
    def started_at(self) -> float | None:
        return self.snapshot(check=False).started_at

    @property
    def ended_at(self) -> float | None:
        return self.snapshot(check=False).ended_at

    @property
    def argv(self) -> list[str]:
        return self.snapshot(check=False).argv

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        """Saved checkpoints, LoRAs, samples ... as ``{"path", "kind"}``, in the order they appeared."""
        return list(self.snapshot(check=False).artifacts)

    @property
    def hints(self) -> list[str]:
        return list(self.snapshot(check=False).hints)

    def describe(self) -> dict[str, Any]:
        """A JSON-able description: :meth:`JobSnapshot.describe` of a fresh snapshot."""
        return self.snapshot().describe()

    # -- actions -------------------------------------------------------------
    def wait(self, timeout: float | None = None, poll: float = 0.2) -> JobStatus:
        """Block until the job ends (or ``timeout`` seconds pass); return the status. Works from any process."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self._refresh_status()
            if status.is_final or (deadline is not None and time.monotonic() >= deadline):
                return status
            time.sleep(poll)

    def stop(self, grace: float = 10.0, wait: bool = True) -> JobStatus:
        """Ask the job to stop: SIGTERM to its whole process tree, SIGKILL after ``grace`` seconds.

        A queued job is simply taken off the queue. With ``wait``, returns once the
        job has ended (at most ``grace`` + 5 s).
        """
        home = self._manager.home
        now = time.time()
        with home.store.transaction() as c:
            rec = records.load(home.store, self.id)
            if rec is None:
                raise NotFound(f"There is no job '{self.id}'.", fix="List jobs with ws.jobs.list().")
            if rec.status.is_final:
                return rec.status
            records.update(c, self.id, stop_requested=now, stop_grace=float(grace))
            if rec.status is JobStatus.QUEUED:
                records.update(c, self.id, status=JobStatus.STOPPED, ended_at=now)
                records.add_event(c, self.id, "status", {"status": "stopped", "reason": "removed from the queue"}, now)
                return JobStatus.STOPPED
        if rec.supervisor_pid and records.same_process(rec.supervisor_pid, rec.supervisor_started):
            try:
                os.kill(rec.supervisor_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if not wait:
            return self.status
        return self.wait(timeout=grace + 5.0)

    def control_reasons(self) -> dict[str, str | None]:
        """``{"save": why not | None, "sample": why not | None}``: which mid-run requests this job takes now."""
        from . import control

        return control.reasons(self.snapshot(check=False))

    def _request(self, action: str) -> None:
        from . import control

        snap = self.snapshot()
        if snap.status is not JobStatus.RUNNING:
            raise JobError(f"Job '{snap.name}' is {snap.status.value}, so it cannot {control.ACTIONS[action]}.",
                           fix="Mid-run requests go to a running job.")
        control.request(snap.meta, action)

    def request_save(self) -> None:
        """Ask the running trainer to save a checkpoint after its current step (ai-toolkit runs; sd-scripts has no
        way to: raises JobError saying so). The checkpoint appears in ``job.artifacts`` like any other."""
        self._request("save")

    def request_sample(self) -> None:
        """Ask the running trainer to make its sample images after its current step (ai-toolkit runs with sample
        prompts; raises JobError with the reason otherwise)."""
        self._request("sample")

    def log_tail(self, n: int = 100) -> list[str]:
        """The last ``n`` lines of the log as a terminal would show them (``\\r`` redraws collapsed)."""
        follower = self._manager._followers.get(self.id)
        if follower is not None and follower.alive and follower.lines_seen:
            return follower.snapshot_tail(n)
        return read_tail(self.log_path, n)

    def subscribe(self, callback: Callable[[list[Event]], None], rate: float = 10.0) -> Callable[[], None]:
        """Call ``callback(events)`` from a background thread, at most ``rate`` times a second. Returns unsubscribe."""
        return self._manager._follower(self, rate).subscribe(callback)

    def follow(self, rate: float = 10.0) -> "Follower":
        """The follower of this job in this process (started if needed)."""
        return self._manager._follower(self, rate)

    def __repr__(self) -> str:
        try:
            snap = self.snapshot(check=False)
            return f"<Job {self.id} {snap.name!r} {snap.status.value}>"
        except NotFound:
            return f"<Job {self.id} (deleted)>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


def read_tail(path: Path, n: int) -> list[str]:
    """Last ``n`` collapsed lines of a log file, reading only its end."""
    from .lines import collapse

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return []
    chunk = max(65536, n * 512)
    with open(path, "rb") as f:
        while True:
            start = max(0, size - chunk)
            f.seek(start)
            data = f.read()
            lines = collapse(data.decode("utf-8", errors="replace"))
            if start == 0 or len(lines) > n:
                if start > 0:
                    lines = lines[1:]  # the first one may be cut
                return lines[-n:] if n else []
            chunk *= 4


class JobManager:
    """``ws.jobs``: submit, list, stop and follow jobs of one workspace.

    Creating one re-attaches to the workspace's jobs: running jobs whose supervisor is
    gone are marked failed with the reason, and queued jobs are started if slots are free.
    """

    def __init__(self, home: "JobsHome", launch_training: Callable[["TrainingConfig"], "Job"] | None = None) -> None:
        self.home = home
        self._launch_training = launch_training
        home.store.ensure_schema("jobs", records.MIGRATIONS)
        self._followers: dict[str, "Follower"] = {}
        self._lock = threading.Lock()
        scheduler.kick(home)

    # -- settings ------------------------------------------------------------
    @property
    def gpu_slots(self) -> list[int]:
        """The device index of every GPU slot, in slot order (see :mod:`lora_nb.jobs.slots`).

        >>> ws.jobs.gpu_slots                     # doctest: +SKIP
        [0, 1]
        """
        return list(slots.slot_devices(self.home.settings))

    def set_gpu_slots(self, devices: Sequence[int] | str | None) -> list[int]:
        """Pin jobs to these device indices (``[0, 1]``, ``"0,1"``; repeat one to share a card), or ``None``
        to go back to the GPUs NVML finds. Queued jobs that now fit start at once. Returns the slots."""
        if devices is None:
            self.home.settings.set("gpu_devices", None)
        else:
            self.home.settings.set("gpu_devices", slots.check_devices(devices))
        scheduler.kick(self.home)
        return self.gpu_slots

    def slot_usage(self) -> list[dict[str, Any]]:
        """Every GPU slot: ``{"slot", "device", "job", "name"}``, ``job``/``name`` None when the slot is free."""
        holders = {s: j for j in self.snapshots(status=list(records.ACTIVE)) for s in j.slots}
        return [{"slot": i, "device": d, "job": holders[i].id if i in holders else None,
                 "name": holders[i].name if i in holders else None} for i, d in enumerate(self.gpu_slots)]

    @property
    def max_concurrent(self) -> int:
        """How many GPU jobs may run at once: the number of GPU slots (persisted; default: one per GPU, else 1)."""
        return len(self.gpu_slots)

    @max_concurrent.setter
    def max_concurrent(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value > slots.MAX_SLOTS:
            raise JobError(f"max_concurrent must be a whole number from 1 to {slots.MAX_SLOTS}, not {value!r}.",
                           fix="Set it to the number of GPU jobs to run at once.")
        from ..nvml import device_indices

        known = self.home.settings.get("gpu_devices") or device_indices()
        if known:   # real devices: that many slots laid round-robin over them
            self.home.settings.set("gpu_devices", slots.spread(known, value))
        else:
            self.home.settings.set("gpu_slots", value)
        scheduler.kick(self.home)

    @property
    def executor(self) -> str:
        """Where new jobs run: ``'local'`` (this machine's supervisor) or a Ray dashboard address (see
        :mod:`lora_nb.jobs.ray_executor` and docs/scale.md).

        >>> ws.jobs.executor                     # doctest: +SKIP
        'local'
        """
        return str(self.home.settings.get("executor") or "local")

    def set_executor(self, address: str | None, files: str | None = None) -> str:
        """Run new jobs on a Ray cluster (``'ray://HOST'``, ``'http://HOST:8265'``) or here (``'local'``/None).

        The cluster must answer now (ClusterError otherwise, nothing changed). Jobs already submitted
        keep the executor they were submitted with. Returns the normalised executor.

        ``files``: how Ray jobs get their files: ``'shared'`` (every node sees the workspace at the
        same paths; the default) or ``'ship'`` (inputs go in the Ray Job's working_dir, outputs come
        back checked by sha256; see :mod:`lora_nb.jobs.ray_ship`). None keeps the current setting.

        >>> ws.jobs.set_executor("ray://10.0.0.5", files="ship")     # doctest: +SKIP
        'http://10.0.0.5:8265'
        """
        from ..errors import ConfigError
        from .ray_executor import check_reachable, is_remote, normalize_executor
        from .ray_ship import SHARED, SHIP

        if files is not None and files not in (SHARED, SHIP):
            raise ConfigError(f"files must be '{SHARED}' or '{SHIP}', not {files!r}.",
                              fix="Use 'shared' where every node sees the workspace, 'ship' where none does.")
        executor = normalize_executor(address)
        if is_remote(executor):
            import importlib.util

            if importlib.util.find_spec("ray") is None:
                from ..errors import ClusterError

                raise ClusterError("Ray is not installed, so jobs cannot be sent to a Ray cluster.",
                                   fix="pip install 'lora-nb[ray]' (or 'ray[default]'), then set the executor again.")
            check_reachable(executor)
        self.home.settings.set("executor", executor)
        if files is not None:
            self.home.settings.set("ray_files", files)
        return executor

    @property
    def ray_files(self) -> str:
        """How new Ray jobs get their files: ``'shared'`` or ``'ship'`` (see :meth:`set_executor`)."""
        return str(self.home.settings.get("ray_files") or "shared")

    # -- submitting ----------------------------------------------------------
    def reserve(self, name: str | None = None, kind: str = "command") -> tuple[str, Path]:
        """Create a run folder for a job about to be submitted (engines write their configs there first)."""
        for _ in range(20):
            job_id = records.new_job_id()
            run_dir = self.home.runs_dir / job_id
            try:
                run_dir.mkdir()
                return job_id, run_dir
            except FileExistsError:
                continue
        raise JobError("Could not create a run folder.", fix="Check that the workspace's runs/ folder is writable.")

    def submit_command(self, argv: Sequence[str], name: str | None = None, cwd: str | os.PathLike[str] | None = None,
                       env: dict[str, str] | None = None, parser: str = "plain", parser_options: dict[str, Any] | None = None,
                       kind: str = "command", meta: dict[str, Any] | None = None, job_id: str | None = None,
                       uses_gpu: bool = True, gpus: int | None = None) -> Job:
        """Queue any command as a job; it starts when a GPU slot is free (``uses_gpu=False``: at once).

        ``gpus``: how many GPU slots it holds (a multi-GPU run: its process count); default 1, or 0
        with ``uses_gpu=False``. It runs with ``CUDA_VISIBLE_DEVICES`` set to the devices it was given
        (a job that holds none sees no GPU).

        Secret-looking environment values (tokens) are never stored: a job that has
        any starts at once, taking them from this process, with its ``gpus`` free now
        (a :class:`JobError` if they are not: it cannot wait in the queue).
        """
        from ..progress.parsers import _REGISTRY

        run_dir = self.home.runs_dir / job_id if job_id else None
        try:
            gpus = (1 if uses_gpu else 0) if gpus is None else gpus
            if not isinstance(gpus, int) or isinstance(gpus, bool) or not 0 <= gpus <= slots.MAX_SLOTS:
                raise JobError(f"gpus must be a whole number from 0 to {slots.MAX_SLOTS}, not {gpus!r}.",
                               fix="Pass how many GPUs the job uses (0 for none).")
            executor = self.executor
            have = slots.distinct_count(self.gpu_slots)
            if executor != "local" and not looks_secret_env(env):
                from .ray_executor import check_reachable

                check_reachable(executor)   # a dead cluster is an error now, not a job that never starts
                if self.ray_files == "ship":   # inputs over Ray's working_dir limit: refused now, nothing submitted
                    from .ray_ship import check_inputs, input_paths

                    check_inputs(input_paths(run_dir or self.home.runs_dir / "(not reserved)", meta or {}))
            elif gpus > have:
                raise JobError(f"The job needs {gpus} GPUs but this workspace's slots are on {have} device{'s' * (have != 1)}.",
                               fix="Ask for fewer GPUs (num_processes), or list more devices with ws.jobs.set_gpu_slots([...]).")
            req = SubmitRequest(argv=list(map(str, argv)), name=name, cwd=str(cwd) if cwd is not None else os.getcwd(),
                                env=dict(env or {}), parser=parser, parser_options=parser_options or {}, kind=kind,
                                meta=meta or {}, gpus=gpus)
            if not req.argv:
                raise JobError("The command is empty.", fix="Pass the program and its arguments as a list, e.g. ['python', 'train.py'].")
            if req.cwd is not None and not Path(req.cwd).is_dir():
                raise JobError(f"The working folder {req.cwd} does not exist.", fix="Pass an existing folder as cwd, or leave it out.")
            resolve_executable(req.argv[0], req.cwd, req.env)
            if req.parser not in _REGISTRY:
                raise JobError(f"There is no log parser called '{req.parser}'.", fix=f"Use one of: {', '.join(sorted(_REGISTRY))}.")
            if "stop_signal" in req.parser_options:  # checked here so a typo fails now, not when Stop is pressed
                from ..progress.parsers import LogParser

                LogParser(options={"stop_signal": req.parser_options["stop_signal"]}).stop_signal
            for key in ("meta", "parser_options"):
                try:
                    json.dumps(getattr(req, key))
                except TypeError as e:
                    raise JobError(f"The job's {key} cannot be saved as JSON ({e}).", fix="Pass only strings, numbers, lists and dicts.") from e
        except Exception:
            if run_dir is not None and run_dir.is_dir() and not any(run_dir.iterdir()):
                run_dir.rmdir()
            raise
        public_env = {k: v for k, v in req.env.items() if not looks_secret(k, v)}
        secret_env = {k: v for k, v in req.env.items() if k not in public_env}
        if job_id is None:
            job_id, run_dir = self.reserve(req.name, req.kind)
        assert run_dir is not None
        if not run_dir.is_dir():
            raise JobError(f"The run folder of job {job_id} does not exist.", fix="Get a job id and folder from ws.jobs.reserve() first.")
        spec = JobSpec(**req.model_dump(exclude={"name", "env", "gpus"}), id=job_id, workspace=str(self.home.root),
                       name=req.name or Path(req.argv[0]).name, env=public_env, secret_env_keys=sorted(secret_env),
                       gpus=req.gpus,
                       # a job with secrets runs here: they would be stored with a Ray Job's runtime env
                       executor="local" if secret_env else executor,
                       ray_files="shared" if secret_env or executor == "local" else self.ray_files)
        spec.write(run_dir)
        now = time.time()
        try:
            with self.home.store.transaction() as c:
                # a job with secrets is claimed by us right away, with the GPUs free now: no other process may
                # start it without the secrets, so it cannot wait in the queue
                taken = scheduler.take_free_now(c, self.home, spec.gpus) if secret_env and spec.gpus else ([], [])
                records.insert(c, spec, JobStatus.STARTING if secret_env else JobStatus.QUEUED, run_dir, now)
                records.add_event(c, job_id, "status", {"status": "queued"}, now)
                if secret_env:
                    records.update(c, job_id, claimed_at=now, slots=taken[0], devices=taken[1])
        except JobError:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        if secret_env:
            scheduler.start_supervisor(self.home, job_id, secret_env)
        scheduler.kick(self.home)
        return Job(self, job_id)

    def submit_task(self, task: str, params: dict[str, Any], name: str | None = None, uses_gpu: bool = False,
                    env: dict[str, str] | None = None, meta: dict[str, Any] | None = None, gpus: int | None = None) -> Job:
        """Run one of our own tasks: ``python -m lora_nb.tasks.<task> <run_dir>/task.json``."""
        import importlib.util

        from ..paths import safe_name

        safe_name(task, "task name")
        for key, value in _walk(params):
            if looks_secret(key, value):
                raise JobError(f"The task parameter '{key}' looks like a secret; secrets are never saved with a job.",
                               fix="Pass tokens through env=..., not params.")
        if importlib.util.find_spec(f"lora_nb.tasks.{task}") is None:
            raise JobError(f"There is no task called '{task}'.", fix="Check the name (lora_nb/tasks/ lists them).")
        job_id, run_dir = self.reserve(name, "task")
        payload = dict(params, workspace=str(self.home.root))
        try:
            (run_dir / "task.json").write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
        except (TypeError, ValueError) as e:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise JobError(f"The task parameters cannot be saved as JSON ({e}).", fix="Pass only strings, numbers, lists and dicts.") from e
        try:
            return self.submit_command([sys.executable, "-m", f"lora_nb.tasks.{task}", str(run_dir / "task.json")],
                                       name=name or task, parser="task", kind=task, meta=dict(meta or {}, task=task),
                                       job_id=job_id, uses_gpu=uses_gpu, gpus=gpus, env=env, cwd=str(run_dir))
        except Exception:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise

    def submit_training(self, config: "TrainingConfig") -> Job:
        """Validate a TrainingConfig, check its dataset, render the engine's files and queue the run.

        The launcher (``lora_nb.engines.launch.submit_training``) is wired in by the Workspace, the
        composition root: the job system itself knows nothing of engines or datasets.
        """
        if self._launch_training is None:
            raise JobError("This job manager was made without a training launcher.",
                           fix="Use ws.jobs of a lora_nb.Workspace to submit training runs.")
        return self._launch_training(config)

    # -- reading -------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        job = Job(self, job_id)
        job.snapshot(check=False)
        return job

    def list(self, status: JobStatus | str | Sequence[JobStatus | str] | None = None, kind: str | None = None) -> list[Job]:
        """Jobs, oldest first; filter by status (one or several) and kind."""
        return [Job(self, s.id) for s in self.snapshots(status, kind)]

    def snapshots(self, status: JobStatus | str | Sequence[JobStatus | str] | None = None,
                  kind: str | None = None) -> list[JobSnapshot]:
        """A :class:`JobSnapshot` of every job (oldest first, filtered like :meth:`list`), in one read,
        after marking jobs whose supervisor has died as failed."""
        scheduler.sweep(self.home)
        where, params = [], []
        if status is not None:
            wanted = [status] if isinstance(status, (str, JobStatus)) else list(status)
            where.append("status IN (%s)" % ",".join("?" * len(wanted)))
            params += [JobStatus(s).value for s in wanted]
        if kind is not None:
            where.append("kind=?")
            params.append(kind)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        return records.load_all(self.home.store, clause, tuple(params))

    def delete(self, job_id: str) -> None:
        """Forget a finished job and delete its run folder (outputs included)."""
        job = self.get(job_id)
        if not job.status.is_final:
            raise JobError(f"Job {job_id} is still {job.status.value}.", fix="Stop it first.")
        with self.home.store.transaction() as c:
            c.execute("DELETE FROM job_events WHERE job_id=?", (job_id,))
            c.execute("DELETE FROM jobs WHERE id=?", (job_id,))
        shutil.rmtree(self.home.runs_dir / job_id, ignore_errors=True)

    def _follower(self, job: Job, rate: float) -> "Follower":
        from .follower import Follower

        with self._lock:
            f = self._followers.get(job.id)
            if f is None or not f.alive:
                f = Follower(job, rate=rate)
                self._followers[job.id] = f
            return f

    def __repr__(self) -> str:
        return f"<JobManager {self.home.root} ({len(self.list())} jobs)>"


def looks_secret_env(env: dict[str, str] | None) -> bool:
    """True if any variable of ``env`` looks like a credential (such a job always runs locally)."""
    return any(looks_secret(k, v) for k, v in (env or {}).items())


def resolve_executable(program: str, cwd: str | None, env: dict[str, str]) -> str:
    """The full path of ``program``; JobError if it cannot be found or run."""
    if os.sep in program:
        path = Path(program)
        if not path.is_absolute() and cwd:
            path = Path(cwd) / path
        if not path.is_file():
            raise JobError(f"The program {program} does not exist.", fix="Check the path, or give the full path to the executable.")
        if not os.access(path, os.X_OK):
            raise JobError(f"The program {program} is not executable.", fix=f"Run `chmod +x {program}` or call it through its interpreter.")
        return str(path)
    found = shutil.which(program, path=env.get("PATH") or os.environ.get("PATH"))
    if not found:
        raise JobError(f"The program '{program}' was not found on PATH.", fix="Install it, or pass its full path.")
    return found


def _walk(data: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        return [kv for k, v in data.items() for kv in _walk(v, str(k))]
    if isinstance(data, (list, tuple)):
        return [kv for v in data for kv in _walk(v, key)]
    return [(key, data)]
