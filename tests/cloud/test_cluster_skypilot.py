"""``lora-nb cluster``: the SkyPilot task we build, checked by SkyPilot's OWN parser and optimizer, and the
commands it puts on the nodes EXECUTED here in a scratch root.

What is real and what stands in:
- SkyPilot 0.14.1 itself (its own venv, scripts/skypilot-venv.sh: its pins clash with the Jupyter stack), run
  offline: ``sky.Task.from_yaml_config`` and the in-process optimizer. Its Vast.ai credential check is the key
  file's presence, so a dummy key file enables Vast; the Vast and common catalogs are small LOCAL STAND-IN CSVs
  in SkyPilot's own catalog folder (SkyPilot would download them from GitHub). Nothing is launched.
- The node ``setup``: our real provisioning script, real bash, a real venv, real pip installing a locally built
  lora-nb wheel with --no-index (the network steps stand in: no PyPI, no engine download: LORA_NB_ENGINE empty).
- The node ``run``: real ``ray start`` of a head and a worker that joins it through SKYPILOT_NODE_IPS, on this
  machine, on free ports (the Ray in this venv; on the nodes setup installs it).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import yaml

from support import build_lora_wheel, free_port, wait_for

from lora_nb.cloud.ray_idle import wait_idle
from lora_nb.cloud.skypilot import REMOTE_PROVISION, ClusterOptions, call_driver, run_script, task_config
from lora_nb.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
PROVISION = REPO / "scripts" / "vast-provision.sh"


# -- the task, as data -----------------------------------------------------------------------------------
def test_the_task_has_the_resources_nodes_files_and_commands_asked_for():
    cfg = task_config(ClusterOptions(gpus="A100-80GB:2", nodes=3, cloud="runpod", engine="ai-toolkit", name="sweep"))
    assert cfg["name"] == "sweep" and cfg["num_nodes"] == 3
    assert cfg["resources"] == {"accelerators": "A100-80GB:2", "infra": "runpod"}
    assert cfg["file_mounts"] == {REMOTE_PROVISION: str(PROVISION)}
    assert cfg["envs"]["LORA_NB_WITH"].startswith("ray[default]==") and cfg["envs"]["LORA_NB_SPEC"] == "lora-nb[gpu]"
    assert "LORA_NB_DASHBOARD=0 LORA_NB_ENGINE=ai-toolkit" in cfg["setup"] and f"bash {REMOTE_PROVISION}" in cfg["setup"]
    assert "SKYPILOT_NODE_RANK" in cfg["run"] and "SKYPILOT_NODE_IPS" in cfg["run"] and "SKYPILOT_NUM_GPUS_PER_NODE" in cfg["run"]
    assert "resources" not in task_config(ClusterOptions(cloud=None))["resources"] and \
        "infra" not in task_config(ClusterOptions(cloud=None))["resources"]


@pytest.mark.parametrize("opts, sentence", [
    (dict(gpus="RTX4090"), "--gpus 'RTX4090' is not NAME:COUNT."),
    (dict(nodes=0), "--nodes must be 1 to 64 (got 0)."),
    (dict(nodes=2, cloud="vast"), "2 nodes on vast cannot be one cluster"),
    (dict(cloud="moon"), "--cloud 'moon' is not one lora-nb knows."),
    (dict(engine="comfy"), "--engine 'comfy' is not kohya or ai-toolkit."),
    (dict(autostop_minutes=-1), "--autostop must be 0 to 10080 minutes"),
    (dict(name="Bad_Name"), "The cluster name 'Bad_Name' is not valid for SkyPilot."),
])
def test_bad_options_are_one_sentence_with_the_fix(opts, sentence):
    with pytest.raises(ConfigError) as e:
        task_config(ClusterOptions(**opts))
    assert str(e.value).startswith(sentence) and e.value.fix


# -- SkyPilot's own parser and optimizer -----------------------------------------------------------------
@pytest.fixture(scope="module")
def sky_python():
    """The SkyPilot venv made by scripts/skypilot-venv.sh (test.sh makes it); skipped here if absent, failed on CI."""
    try:
        from lora_nb.cloud.skypilot import skypilot_python

        return skypilot_python()
    except ConfigError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def sky_home(tmp_path_factory, sky_python):
    """A scratch HOME for SkyPilot: a dummy Vast key file and LOCAL STAND-IN catalogs (Vast offers). SkyPilot's API
    server, which ``sky.launch`` / ``status`` / ``down`` start on their first call, runs under it and is stopped after."""
    home = tmp_path_factory.mktemp("sky") / "skyhome"
    (home / ".config" / "vastai").mkdir(parents=True)
    (home / ".config" / "vastai" / "vast_api_key").write_text("dummy-key-for-the-credential-check\n")
    cat = home / ".sky" / "catalogs" / "v8"
    (cat / "vast").mkdir(parents=True)
    (cat / "common").mkdir(parents=True)
    (cat / "vast" / "vms.csv").write_text(
        "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,HostingType\n"
        "1x-RTX4090-16-64,RTX4090,1,16,64,RTX4090,0.40,0.30,US,0\n"
        "1x-RTX4090-8-32,RTX4090,1,8,32,RTX4090,0.35,0.25,US,0\n"
        "2x-RTX4090-32-128,RTX4090,2,32,128,RTX4090,0.80,0.60,US,0\n")
    (cat / "common" / "accelerators.csv").write_text("AcceleratorName,Clouds\nRTX4090,\"['Vast']\"\n")
    env = {**os.environ, "HOME": str(home), "SKYPILOT_DISABLE_USAGE_COLLECTION": "1"}
    yield env
    subprocess.run([str(Path(sky_python).parent / "sky"), "api", "stop"], env=env, capture_output=True, timeout=120)


def test_skypilot_parses_round_trips_and_optimizes_our_task(sky_python, sky_home):
    cfg = task_config(ClusterOptions(gpus="RTX4090:1", nodes=1, cloud="vast", engine="kohya", autostop_minutes=20))
    answer = call_driver({"action": "validate", "task": cfg}, python=sky_python, env=sky_home, timeout=300)
    assert answer["parsed"] and answer["roundtrip"] and answer["sky_version"] == "0.14.1"
    assert answer["resources"] == ["Vast({'RTX4090': 1})"] and answer["num_nodes"] == 1
    assert answer["yaml"]["setup"] == cfg["setup"] and answer["yaml"]["run"] == cfg["run"]
    assert answer["yaml"]["file_mounts"] == cfg["file_mounts"] and answer["yaml"]["envs"] == cfg["envs"]
    assert answer["optimized"], answer.get("error")
    assert (answer["cloud"], answer["instance_type"], answer["price_per_hour"]) == ("Vast", "1x-RTX4090-8-32", pytest.approx(0.35))


def test_skypilot_itself_refuses_several_vast_nodes_as_we_say(sky_python, sky_home):
    cfg = task_config(ClusterOptions(gpus="RTX4090:1", nodes=1, cloud="vast"))
    cfg["num_nodes"] = 2                                      # what our validate() refuses, sent to SkyPilot anyway
    answer = call_driver({"action": "validate", "task": cfg}, python=sky_python, env=sky_home, timeout=300)
    assert answer["parsed"] and not answer["optimized"] and "2x Vast" in answer["error"]
    # a multi-node task for a cloud that has them is valid for SkyPilot's parser (no credentials here to optimize it)
    cfg = task_config(ClusterOptions(gpus="A100:1", nodes=4, cloud="runpod"))
    answer = call_driver({"action": "validate", "task": cfg}, python=sky_python, env=sky_home, timeout=300)
    assert answer["parsed"] and answer["roundtrip"] and answer["num_nodes"] == 4 and not answer["optimized"]


def test_the_yaml_we_print_is_what_skypilot_reads(sky_python, sky_home, tmp_path):
    out = subprocess.run([sys.executable, "-m", "lora_nb.cli", "cluster", "up", "--gpus", "RTX4090:1", "--print-yaml"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    (tmp_path / "task.yaml").write_text(out.stdout)
    check = subprocess.run([sky_python, "-c", "import sky, sys; t = sky.Task.from_yaml(sys.argv[1]); print(t.num_nodes, t.resources)",
                            str(tmp_path / "task.yaml")], capture_output=True, text=True, env=sky_home, timeout=120)
    assert check.returncode == 0 and check.stdout.split()[0] == "1" and "RTX4090" in check.stdout, check.stderr
    assert yaml.safe_load(out.stdout) == task_config(ClusterOptions())


def test_cli_dryrun_runs_skypilots_optimizer(sky_python, sky_home):
    env = {**sky_home, "LORA_NB_SKYPILOT_PYTHON": sky_python}
    out = subprocess.run([sys.executable, "-m", "lora_nb.cli", "cluster", "up", "--gpus", "RTX4090:1", "--dryrun"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SkyPilot 0.14.1 parsed the task: 1 x Vast({'RTX4090': 1}) (YAML round trip identical)" in out.stdout
    assert "optimizer: Vast 1x-RTX4090-8-32 at $0.350/h for the cluster" in out.stdout
    assert "sky.launch(dryrun=True): SkyPilot planned cluster lora-nb (autostop 30 min); nothing was rented" in out.stdout
    assert "Dryrun finished." in out.stderr                      # SkyPilot's own words, passed through


def test_cli_status_and_down_go_through_skypilots_api_server(sky_python, sky_home):
    env = {**sky_home, "LORA_NB_SKYPILOT_PYTHON": sky_python}
    out = subprocess.run([sys.executable, "-m", "lora_nb.cli", "cluster", "status"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "no clusters", out.stdout + out.stderr
    out = subprocess.run([sys.executable, "-m", "lora_nb.cli", "cluster", "down", "--name", "nope"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "lora-nb: SkyPilot could not tear down the cluster: ClusterDoesNotExist: Cluster 'nope' does not exist." in out.stderr


def test_cli_errors_are_one_line(tmp_path):
    env = {**os.environ, "LORA_NB_SKYPILOT_PYTHON": str(tmp_path / "no-python")}
    for args in (["cluster", "status"], ["cluster", "down"], ["cluster", "up", "--dryrun"]):
        out = subprocess.run([sys.executable, "-m", "lora_nb.cli", *args], capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 1 and out.stderr.startswith(f"lora-nb: The SkyPilot Python '{tmp_path}/no-python' does not exist.")
        assert "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "lora_nb.cli", "cluster", "up", "--nodes", "3"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "3 nodes on vast cannot be one cluster" in out.stderr and "Traceback" not in out.stderr


# -- the node commands, executed here ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def lora_wheel(tmp_path_factory):
    return build_lora_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_node_setup_installs_lora_nb_non_interactively_and_again(tmp_path, lora_wheel):
    home = tmp_path / "home"
    # what SkyPilot's file_mounts does before setup: our provisioning script at its remote path
    remote = home / REMOTE_PROVISION.removeprefix("~/")
    remote.parent.mkdir(parents=True)
    shutil.copy(PROVISION, remote)
    cfg = task_config(ClusterOptions(gpus="RTX4090:1", engine=None))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LORA_NB_ROOT": str(tmp_path / "root"), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           **cfg["envs"], "LORA_NB_SPEC": str(lora_wheel), "LORA_NB_WITH": "", "LORA_NB_PIP_ARGS": "--no-deps --no-index"}
    for _ in range(2):                                                                    # SkyPilot re-runs setup
        proc = subprocess.run(["bash", "-c", cfg["setup"]], capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "LORA_NB_DASHBOARD=0: no dashboard service and no portal entry" in proc.stdout
    assert f"done: lora-nb is in {home}/lora-nb-venv/bin" in proc.stdout
    assert (home / "lora-nb-venv" / "bin" / "lora-nb").exists() and (home / "workspace" / "lora-nb").is_dir()
    assert not (tmp_path / "root" / "etc" / "supervisor").exists() and not (tmp_path / "root" / "opt").exists()
    assert (tmp_path / "root" / "etc" / "environment").read_text().count("LORA_NB_HOME=") == 1


def _ray_procs(marker: str) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in (p.info["cmdline"] or [])):
                out.append(p)
        except psutil.Error:
            pass
    return out


@pytest.fixture
def ray_bin():
    ray = Path(sys.executable).parent / "ray"
    if not ray.exists():
        pytest.skip("ray is not installed in this venv (the Ray executor's tests install it)")
    return ray.parent


def test_the_node_run_starts_a_head_and_a_worker_joins_it(tmp_path, ray_bin):
    """rank 0 and rank 1 of a 2-node cluster, both on this machine (SKYPILOT_NODE_IPS lists 127.0.0.1 twice).

    Extra ``ray start`` flags (free ports, a temp dir) go through LORA_NB_RAY_ARGS / LORA_NB_WORKER_RAY_ARGS so this
    cluster can share the machine with the Ray executor's test cluster; ``ray stop`` at the end of the head's run is
    not reached here (it stops every Ray on the machine): the test kills only this cluster's processes."""
    port, dash = free_port(), free_port()
    temp = Path(f"/tmp/lnb-ray-{port}")                     # short: Ray's socket paths have a length limit
    opts = ClusterOptions(cloud=None, ray_port=port, dashboard_port=dash)
    script = run_script(opts)
    ip = "127.0.0.1"                                          # SkyPilot lists every node's internal IP, head first

    def own_ports() -> str:     # every other Ray port free too: other Ray clusters of the test suite may be up on this machine
        flags = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                 "--metrics-export-port", "--runtime-env-agent-port")
        return " ".join(f"{f}={free_port()}" for f in flags) + " --num-cpus=1 --object-store-memory=100000000"
    base = {**os.environ, "LORA_NB_BIN": str(ray_bin), "SKYPILOT_NODE_IPS": f"{ip}\n{ip}",
            "SKYPILOT_NUM_GPUS_PER_NODE": "2", "LORA_NB_RAY_IDLE_SECONDS": "3600", "RAY_USAGE_STATS_ENABLED": "0"}
    logs = [open(tmp_path / f"node{r}.log", "w") for r in (0, 1)]
    procs = []
    try:
        procs.append(subprocess.Popen(["bash", "-c", script], env={**base, "SKYPILOT_NODE_RANK": "0",
                                                                   "LORA_NB_RAY_ARGS": f"--temp-dir={temp} --ray-client-server-port={free_port()} {own_ports()}"},
                                      stdout=logs[0], stderr=subprocess.STDOUT, start_new_session=True))
        wait_for(lambda: "waiting until Ray" in (tmp_path / "node0.log").read_text() or procs[0].poll() is not None,
                 timeout=180, poll=0.5, what="the Ray head")
        assert procs[0].poll() is None, "the head's run ended:\n" + (tmp_path / "node0.log").read_text()[-3000:]
        for attempt in range(3):
            # Ray gives a starting node a fixed 30 s to register; on this shared 2-CPU box that can run out, so the
            # join is retried (each try a fresh worker run of the same script; a real node's SkyPilot job fails instead)
            procs.append(subprocess.Popen(["bash", "-c", script], env={**base, "SKYPILOT_NODE_RANK": "1", "LORA_NB_WORKER_RAY_ARGS": own_ports()},
                                          stdout=logs[1], stderr=subprocess.STDOUT, start_new_session=True))
            try:
                procs[-1].wait(timeout=75)          # `ray start --block` only returns on failure
            except subprocess.TimeoutExpired:
                break
            assert "timed out during startup" in (tmp_path / "node1.log").read_text(), (tmp_path / "node1.log").read_text()[-3000:]
        probe = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
                 "print(sum(1 for n in ray.nodes() if n['Alive']), ray.cluster_resources().get('GPU', 0))")

        def joined():
            out = subprocess.run([str(ray_bin / "python"), "-c", probe, f"{ip}:{port}"], capture_output=True, text=True, timeout=120)
            return out.stdout.split() == ["2", "4.0"] and out.stdout
        assert wait_for(lambda: "lora-nb: Ray head at" in (tmp_path / "node0.log").read_text(), timeout=10)
        wait_for(joined, timeout=180, poll=2, what="two alive nodes with 2 GPUs each")
        head_log = (tmp_path / "node0.log").read_text()
        assert f"Ray head at {ip}:{port} (dashboard http://{ip}:{dash})" in head_log
        assert procs[0].poll() is None and procs[-1].poll() is None         # both hold their SkyPilot job open
    finally:
        for p in procs:                                       # our bash scripts, then the Ray processes of THIS cluster only
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
        for victim in _ray_procs(str(temp)) + _ray_procs(f"{ip}:{port}") + _ray_procs(f"--port={port}"):
            try:
                victim.kill()
            except psutil.Error:
                pass
        for f in logs:
            f.close()
        shutil.rmtree(temp, ignore_errors=True)


def test_the_head_leaves_when_ray_has_been_idle_long_enough():
    t = [0.0]
    states = iter([["RUNNING"], ["PENDING"], [], [], [], [], [], []])

    def jobs():
        return [{"status": s} for s in next(states)]

    wait_idle(jobs, idle=3, poll=1, clock=lambda: t[0], sleep=lambda d: t.__setitem__(0, t[0] + 1))
    assert t[0] == 4                                           # busy until t=1, then 3 quiet seconds


def test_driver_answers_for_an_unknown_action(sky_python):
    proc = subprocess.run([sky_python, str(REPO / "lora_nb" / "cloud" / "sky_driver.py")], input=json.dumps({"action": "frobnicate"}),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout.strip().endswith('{"error": "unknown action \'frobnicate\'"}')
