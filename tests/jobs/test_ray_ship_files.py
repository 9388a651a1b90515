"""Ray jobs whose nodes do not share the workspace (``ray_files='ship'``, lora_nb.jobs.ray_ship), against
the real two-node Ray cluster of tests/ray_cluster.py.

The cluster runs on this machine, so to prove a node used only what was shipped the workspace's
node root is a folder of its own (``ray_node_root``) and the local dataset is moved away once the
job was submitted, before the command reads anything. The command is a small CPU Python program
standing in for a trainer: it reads the dataset, writes a LoRA-like file and a sample into its run
folder and reports them as artifacts; they come back through Ray Client (pinned tasks on the node)
checked by sha256.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import textwrap
import time

import pytest

from lora_nb.errors import ClusterError
from lora_nb.progress.events import JobStatus

from support import wait_for

pytest.importorskip("ray.job_submission", reason="ray[default] is installed by scripts/test.sh (the dev extra)")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# A trainer stand-in: waits for the test's go (a file the test writes), reads every dataset file at the
# path it was given (the node's copy), writes output/<name>.safetensors (the dataset's sha256 and size,
# repeated) and sample/s1.png into its run folder, and reports both as artifacts (the 'task' parser's lines).
TRAIN = textwrap.dedent("""
    import hashlib, json, os, sys, time
    data, go = sys.argv[1], sys.argv[2]
    while not os.path.exists(go):
        time.sleep(0.1)
    print("reading", data, flush=True)
    h = hashlib.sha256()
    for name in sorted(os.listdir(data)):
        h.update(open(os.path.join(data, name), "rb").read())
    run = os.environ["LORA_NB_RUN_DIR"]
    os.makedirs(run + "/output"); os.makedirs(run + "/sample")
    lora, sample = run + "/output/cats.safetensors", run + "/sample/s1.png"
    open(lora, "wb").write(h.digest() * 40000)
    open(sample, "wb").write(b"PNG" + h.digest())
    for path, kind in ((lora, "lora"), (sample, "sample")):
        print("@@lora-nb " + json.dumps({"event": "artifact", "path": path, "kind": kind}), flush=True)
    print("done", h.hexdigest(), flush=True)
""")


@pytest.fixture(scope="module")
def cluster():
    from ray_cluster import LocalRayCluster

    c = LocalRayCluster(gpus_per_node=2, cpus_per_node=2, workers=1).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def sws(ws, cluster, tmp_path):
    """The test's workspace, its jobs sent to the Ray cluster with their files shipped."""
    assert ws.jobs.set_executor(cluster.address, files="ship") == cluster.address
    ws.settings.set("ray_node_root", str(tmp_path / "node"))
    ws.settings.set("ray_client_address", cluster.client_address)
    return ws


def _dataset(ws) -> tuple[str, str]:
    ds = ws.root / "datasets" / "cats"
    ds.mkdir(parents=True)
    h = hashlib.sha256()
    for i in range(5):
        body = os.urandom(20000 + i)
        (ds / f"{i}.png").write_bytes(body)
        (ds / f"{i}.txt").write_text(f"a cat, number {i}")
    for name in sorted(os.listdir(ds)):
        h.update((ds / name).read_bytes())
    return str(ds), h.hexdigest()


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_inputs_over_rays_package_limit_are_refused_at_submit(sws):
    ds = sws.root / "datasets" / "huge"
    ds.mkdir(parents=True)
    with open(ds / "big.bin", "wb") as f:      # sparse: 600 MiB by size, nothing on disk
        f.truncate(600 * 2**20)
    with pytest.raises(ClusterError, match=r"inputs are 600 MiB, over the 512 MiB Ray accepts in a job's working_dir.*"
                                           r"nothing was submitted.*files='shared'"):
        sws.jobs.submit_command([sys.executable, "-c", "pass"], name="too-big", meta={"inputs": [str(ds)]}, uses_gpu=False)
    assert sws.jobs.list() == []
    assert sorted(p.name for p in sws.runs_dir.iterdir()) == []       # no run folder left either


def test_a_shipped_training_reads_the_shipped_dataset_and_its_outputs_come_back_hash_checked(sws, tmp_path):
    ds, ds_sha = _dataset(sws)
    go = tmp_path / "go"
    job = sws.jobs.submit_command([sys.executable, "-c", TRAIN, ds, str(go)], name="ship-train", parser="task",
                                  meta={"inputs": [ds]}, gpus=1)
    wait_for(lambda: job.snapshot().status is JobStatus.RUNNING, timeout=240, what="the shipped job to run")
    shutil.move(ds, str(tmp_path / "moved-away"))        # the local dataset is gone before the command reads it
    go.write_text("go")
    assert job.wait(240) is JobStatus.SUCCEEDED, (job.error, job.log_path.read_text()[-2000:])
    log = job.log_path.read_text()
    node_root = str(tmp_path / "node")
    assert f"reading {node_root}/{job.snapshot().remote_id}{ds}" in log     # the node's copy, under its own root
    assert f"done {ds_sha}" in log                                           # every byte of the dataset arrived
    lora, sample = job.run_dir / "output" / "cats.safetensors", job.run_dir / "sample" / "s1.png"
    assert lora.read_bytes() == bytes.fromhex(ds_sha) * 40000 and sample.read_bytes() == b"PNG" + bytes.fromhex(ds_sha)
    assert [a["path"] for a in job.artifacts] == [str(lora), str(sample)]   # local paths, not the node's
    assert not list(job.run_dir.rglob("*.lora-nb-part"))
    wait_for(lambda: not os.path.exists(f"{node_root}/{job.snapshot().remote_id}"), timeout=10,
             what="the node's copy to be removed")


def test_an_output_changed_after_its_manifest_fails_the_job_and_leaves_nothing_under_its_name(sws, tmp_path):
    ds, _ = _dataset(sws)
    go = tmp_path / "go"
    go.write_text("go")
    job = sws.jobs.submit_command([sys.executable, "-c", TRAIN, ds, str(go)], name="ship-corrupt", parser="task",
                                  meta={"inputs": [ds]}, gpus=1,
                                  env={"LORA_NB_RAY_NODE_CORRUPT": "output/cats.safetensors"})   # the wrapper's test hook
    t = time.monotonic()
    assert job.wait(240) is JobStatus.FAILED
    assert "output/cats.safetensors came back from node" in job.error and "sha256" in job.error, job.error
    assert not (job.run_dir / "output" / "cats.safetensors").exists()
    assert not list(job.run_dir.rglob("*.lora-nb-part"))
    assert time.monotonic() - t < 240
