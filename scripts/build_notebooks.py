"""Write the task notebooks in notebooks/ from the cell lists below (run after editing; review the diff).

    python scripts/build_notebooks.py

Cells tagged ``gpu`` need a CUDA GPU and an installed engine; cells tagged ``internet`` download
something. Both are skipped by the test suite on machines without them (see conftest.py) and run
unskipped on a GPU host (``LORA_NB_NOTEBOOK_GPU=1``, ``LORA_NB_NOTEBOOK_INTERNET=1``).
dashboard.ipynb (what Voila serves) is not written here.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(__file__).resolve().parents[1] / "notebooks"


def md(text: str):
    return new_markdown_cell(text.strip())


def code(text: str, *tags: str):
    cell = new_code_cell(text.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


SETUP = code("""
import lora_nb
ws = lora_nb.Workspace()          # $LORA_NB_HOME, /workspace/lora-nb on Vast.ai, else ~/lora-nb
ws.root
""")


def fresh(name: str) -> str:
    return f"""
from lora_nb import demo
if "{name}" in ws.datasets:       # this notebook makes its own demo dataset; start clean on a re-run
    ws.datasets.delete("{name}")
"""


NOTEBOOKS = {
    "quickstart.ipynb": [
        md("""
# lora-nb quickstart

The whole flow through the Python API, on a demo dataset that lora-nb generates (coloured shapes),
so it runs anywhere:

1. import a dataset, 2. tag it with a local tagger, 3. fix captions, 4. configure a run and estimate
its steps, 5. start the job and follow it, 6. inspect the LoRA.

On a **GPU host** with an engine installed (`lora-nb engines install kohya`), the cell tagged `gpu`
trains for real. On a CPU-only machine the notebook runs a *stand-in* job instead: it behaves like a
training run (progress, loss, checkpoints) and writes a LoRA file with random weights — it shows the
job system, not training. The same panels are one call away: `from lora_nb.widgets import Dashboard; Dashboard()`.
"""),
        SETUP,
        md("## 1. A dataset\n\n`make_dataset` writes generated images into a new workspace dataset (a kohya `10_lnbdemo` folder: 10 repeats)."),
        code(fresh("quickstart") + """
ds = demo.make_dataset(ws, name="quickstart", n=12, size=(256, 256), captions=False)
print(len(ds.images()), "images;", ds.subsets())
print(ds.report(resolution=256))
"""),
        md("## 2. Tag it\n\nA real WD14-style tagger needs a download from the Hugging Face Hub (`model=\"wd-vit-tagger-v3\"`). The demo builds a tiny local one with the same inputs and outputs (random weights: its tags mean nothing, but the whole path runs). Tagging is a **job**: the kernel stays free while it runs."),
        code("""
tagger = demo.make_tagger(ws=ws)
job = ds.tag(model=str(tagger), general_threshold=0.2, trigger_words=["lnbdemo"])
print(job.wait(300), job.progress)
for item in ds.images()[:3]:
    print(item.path.name, "->", item.caption)
"""),
        code("""
job = ds.tag(model="wd-vit-tagger-v3", general_threshold=0.35, trigger_words=["lnbdemo"], existing="overwrite")
job.wait()
""", "internet"),
        md("## 3. Fix captions\n\nBulk edits return what changed (`preview=True` shows it without writing) and can be undone."),
        code("""
print(ds.captions.frequencies().most_common(5))
preview = ds.captions.replace("lnbdemo", "lnbdemo shape", preview=True)
print(preview)
ds.captions.add_trigger("lnbdemo")              # every caption starts with the trigger word
ds.captions.dedupe()
print(ds.images()[0].caption)
"""),
        md("## 4. Configure and estimate\n\nA `TrainingConfig` validates as you build it. `lora_nb.steps` counts steps exactly as sd-scripts will (bucketing included)."),
        code("""
cfg = ws.presets.load("sd15-8gb", dataset="quickstart", output_name="quickstart",
                      pretrained_model_name_or_path="stable-diffusion-v1-5/stable-diffusion-v1-5",
                      resolution="256", min_bucket_reso=128, max_bucket_reso=512, trigger_words=["lnbdemo"],
                      max_train_epochs=4)
est = lora_nb.steps(cfg, ws)
print(est.summary())
print(lora_nb.engines.get_engine("kohya", ws).check().summary())
"""),
        md("## 5. Run it\n\nOn this machine: the stand-in job. On a GPU host with sd-scripts installed, the next cell (tagged `gpu`) starts the real run. Either way the job is a supervised subprocess: close the tab or restart the kernel and it goes on; `ws.jobs.get(job.id)` finds it again."),
        code("""
job = demo.submit_demo_run(ws, dataset="quickstart", epochs=2, steps_per_epoch=5, seconds_per_step=0.05)
print(job.id, job.status)
"""),
        code("""
job = ws.jobs.submit_training(cfg)
""", "gpu", "internet"),
        code("""
status = job.wait(600)
p = job.progress
print(status, f"step {p.step}/{p.total_steps}, epoch {p.epoch}/{p.total_epochs}, loss {p.loss}")
print([a["kind"] + ": " + a["path"] for a in job.artifacts])
"""),
        md("In a notebook the live view is a widget: `from lora_nb.widgets import JobMonitor; JobMonitor(job)`."),
        md("## 6. Inspect the LoRA\n\nMetadata comes from the safetensors header (no tensors loaded)."),
        code("""
lora_path = next(a["path"] for a in job.artifacts if a["kind"] == "lora")
meta = lora_nb.lora.read_metadata(lora_path)
{k: meta[k] for k in ("ss_network_dim", "ss_network_alpha", "ss_num_train_images") if k in meta}
"""),
    ],
    "01_datasets.ipynb": [
        md("""
# Datasets

A dataset is a folder in the workspace (`datasets/<name>/`) with images and `.txt` captions.
kohya's convention works as is: a sub-folder `N_name` means "repeat these images N times".
Imports are atomic: a broken file is skipped and listed, a failed import leaves nothing behind.
"""),
        SETUP,
        code(fresh("shapes") + """
ds = demo.make_dataset(ws, name="shapes", n=9, size=(192, 192))
[(i.path.name, i.width, i.height, i.caption) for i in ds.images()[:3]]
"""),
        md("Import a ZIP (a path, bytes or a file object), a folder on the box, or a URL. Here a ZIP made on the spot:"),
        code("""
import io, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    for item in ds.images()[:4]:
        z.write(item.path, f"5_more/{item.path.name}")
        z.writestr("5_more/" + item.path.stem + ".txt", item.caption)
    z.writestr("notes/readme.txt", "not an image: skipped")
if "zipped" in ws.datasets:
    ws.datasets.delete("zipped")
result = ws.datasets.import_zip(buf.getvalue(), "zipped")
print(result.summary())
"""),
        md("The report is what to check before training: sizes, buckets at a resolution, captions, duplicates, broken files."),
        code("""
report = ws.datasets.get("zipped").report(resolution=512, trigger_words=["lnbdemo"])
print(report)
"""),
        code("""
thumb = ds.thumbnail(ds.images()[0], size=128)   # cached under the dataset's .lora-nb folder
thumb
"""),
        code("""
ws.datasets.rename("zipped", "zipped-2")
[d.name for d in ws.datasets.list()]
"""),
        md("From a URL (needs the internet; a job with progress, size limits checked):"),
        code("""
job = ws.datasets.import_url_job("https://example.com/my-dataset.zip", "from-url")
job.wait()
""", "internet"),
    ],
    "02_tagging.ipynb": [
        md("""
# Auto-tagging (WD14 on onnxruntime)

`ds.tag(model=...)` runs SmilingWolf's WD14 taggers as a job: image decoding and resizing in
worker threads overlap with batched inference, progress comes per batch, and every caption is
written whole (a stopped job never leaves half a file). The CUDA provider is used when
`onnxruntime-gpu` is installed.

Models are downloaded from the Hugging Face Hub and cached (`HF_HOME`); a local folder with
`model.onnx` and `selected_tags.csv` works too. This notebook builds a tiny local tagger so it runs
offline; its tags are random.
"""),
        SETUP,
        code(fresh("to-tag") + """
ds = demo.make_dataset(ws, name="to-tag", n=6, size=(160, 160), captions=False)
tagger = demo.make_tagger(ws=ws)
sorted(p.name for p in tagger.iterdir())
"""),
        md("The pure function, in-process (small batches, your own code):"),
        code("""
from lora_nb.tagging import tag_images
results = tag_images([i.path for i in ds.images()[:2]], model=str(tagger), general_threshold=0.2)
results[0]
"""),
        md("As a job on the whole dataset, with the options people use: thresholds, trigger words first, a blacklist, what to do with existing captions (`overwrite`, `append`, `skip`)."),
        code("""
job = ds.tag(model=str(tagger), general_threshold=0.2, character_threshold=0.5,
             trigger_words=["lnbdemo"], blacklist=["monochrome"], existing="overwrite")
print(job.wait(300), job.progress)
[(i.path.name, i.caption) for i in ds.images()[:3]]
"""),
        code("""
job = ds.tag(model="wd-eva02-large-tagger-v3", general_threshold=0.35, existing="append")
job.wait()
""", "internet", "gpu"),
    ],
    "03_captions.ipynb": [
        md("""
# Captions

Bulk edits work on every caption of a dataset (or a selection), return how many changed, can be
previewed first, and are undone one step at a time. They are the same operations as the caption
grid's toolbar.
"""),
        SETUP,
        code(fresh("captions-demo") + """
ds = demo.make_dataset(ws, name="captions-demo", n=8, size=(128, 128))
ds.captions.frequencies().most_common()
"""),
        code("""
print(ds.captions.replace("simple shape", "flat colour", preview=True))
print(ds.captions.replace("simple shape", "flat colour"))
print(ds.captions.remove(["white background"]))
print(ds.captions.sort(keep=1))                    # keep the trigger word first
ds.images()[0].caption
"""),
        code("""
print(ds.captions.history()[-1])
ds.captions.undo()                                 # the sort
ds.captions.undo()                                 # the removal
ds.images()[0].caption
"""),
        md("Filter by tags (what the frequency chips in the grid do):"),
        code("""
reds = ds.captions.filter(with_tags=["red circle"])
reds
"""),
    ],
    "04_training.ipynb": [
        md("""
# Configuring a run

`lora_nb.TrainingConfig` holds a run: field names are sd-scripts' option names wherever one exists,
so kohya users feel at home (and `TrainingConfig.from_kohya_toml(path)` imports an existing TOML).
Presets give good starting points per model family and GPU size.
"""),
        SETUP,
        code(fresh("train-demo") + """
ds = demo.make_dataset(ws, name="train-demo", n=10, size=(512, 512))
ws.presets.list()
"""),
        code("""
cfg = ws.presets.load("sdxl-24gb", dataset="train-demo", output_name="shapes_xl", trigger_words=["lnbdemo"],
                      pretrained_model_name_or_path="stabilityai/stable-diffusion-xl-base-1.0")
cfg.max_train_epochs = 6
cfg.network_dim, cfg.network_alpha, cfg.learning_rate
"""),
        md("Bad values are refused with one sentence per field (the Training panel shows them next to the field):"),
        code("""
from lora_nb.errors import ConfigError
try:
    cfg.network_dim = 0
except ConfigError as e:
    print(e)
lora_nb.TrainingConfig.check({"dataset": "x", "lr_scheduler": "constant", "lr_warmup_steps": 100})
"""),
        md("The step count, exactly as sd-scripts computes it (images go into aspect-ratio buckets; batches are per bucket):"),
        code("""
est = lora_nb.steps(cfg, ws)
print(est.summary())
est.buckets
"""),
        code("""
ws.presets.save("my-sdxl", cfg)
ws.presets.load("my-sdxl").max_train_epochs
"""),
        md("What the engine will get: lora-nb renders sd-scripts' TOMLs (or ai-toolkit's YAML) into the run folder. Check the engine:"),
        code("""
for name in ("kohya", "ai-toolkit"):
    print(lora_nb.engines.get_engine(name, ws).check().summary())
"""),
        code("""
job = ws.jobs.submit_training(cfg)
print(job.id, job.run_dir)
""", "gpu", "internet"),
    ],
    "05_jobs.ipynb": [
        md("""
# Jobs

Every long task — training, tagging, downloads, resizing — is a job: a subprocess with its own
supervisor that records status, progress and the log in the workspace's SQLite database. Jobs
survive kernel restarts and closed tabs; any kernel (or the CLI, `lora-nb jobs list`) sees them.
"""),
        SETUP,
        code("""
import sys
job = ws.jobs.submit_command([sys.executable, "-c", "import time\\nfor i in range(5):\\n    print(f'step {i+1}/5', flush=True); time.sleep(0.2)"],
                             name="hello", uses_gpu=False)
print(job.wait(60), job.exit_code)
job.log_tail(5)
"""),
        md("A stand-in training run (progress, loss, checkpoints) to follow and stop:"),
        code(fresh("jobs-demo") + """
demo.make_dataset(ws, name="jobs-demo", n=4, size=(96, 96))
run = demo.submit_demo_run(ws, dataset="jobs-demo", epochs=20, steps_per_epoch=10, seconds_per_step=0.1)
import time; time.sleep(3)
print(run.status, run.progress.step, run.progress.total_steps)
"""),
        code("""
events = []
unsubscribe = run.subscribe(events.append)   # called from a background thread, at a bounded rate
time.sleep(1.5)
unsubscribe()
print(len(events), "events, latest progress:", run.progress.step)
"""),
        code("""
run.stop()            # the whole process tree; SIGKILL after the grace period if it ignores SIGTERM
print(run.wait(30), "-", run.error)
"""),
        code("""
[(j.id, j.name, j.status.value) for j in ws.jobs.list()][-3:]
"""),
        md("After a kernel restart: `ws.jobs.get(job_id)` re-attaches (status, progress, log). The widget: `from lora_nb.widgets import JobsPanel; JobsPanel(ws)`."),
    ],
    "06_lora_tools.ipynb": [
        md("""
# LoRA tools

Read a LoRA's metadata without loading its tensors, verify it, resize its rank (exact SVD of the
low-rank product: fast), and publish it to the Hugging Face Hub.
"""),
        SETUP,
        code(fresh("lora-demo") + """
demo.make_dataset(ws, name="lora-demo", n=4, size=(96, 96))
job = demo.submit_demo_run(ws, dataset="lora-demo", epochs=1, steps_per_epoch=3, seconds_per_step=0.01, network_dim=8)
job.wait(120)
path = next(a["path"] for a in job.artifacts if a["kind"] == "lora")
meta = lora_nb.lora.read_metadata(path)
meta["ss_network_dim"], meta["ss_training_comment"]
"""),
        code("""
report = lora_nb.lora.verify(path)
report
"""),
        code("""
from pathlib import Path
out = Path(path).with_name("lnbdemo-r4.safetensors")
resized = lora_nb.lora.resize(path, out, rank=4)
resized
"""),
        code("""
lora_nb.lora.read_metadata(out)["ss_network_dim"]
"""),
        md("Publishing needs a Hugging Face token (`HF_TOKEN` or `huggingface-cli login`); it is never stored by lora-nb."),
        code("""
job = lora_nb.lora.publish(out, repo_id="your-name/lnbdemo-test", private=True)
job.wait()
""", "internet"),
    ],
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                                 "language_info": {"name": "python"}})
        for i, cell in enumerate(nb.cells):      # stable ids: rebuilding gives the same files
            cell.id = f"{Path(name).stem.replace('_', '-')}-{i:02d}"
        nbformat.validate(nb)
        (OUT / name).write_text(nbformat.writes(nb), encoding="utf-8")
        print("wrote", OUT / name)


if __name__ == "__main__":
    main()
