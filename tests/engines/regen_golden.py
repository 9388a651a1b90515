"""Regenerate tests/engines/golden from tests/golden_configs.py: .venv/bin/python tests/engines/regen_golden.py (review the diff!)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import tomli_w  # noqa: E402
import yaml  # noqa: E402

from golden_configs import AITK_CONFIGS, CONFIGS  # noqa: E402
from lora_nb.engines.aitoolkit import render_job  # noqa: E402
from lora_nb.engines.kohya import render_dataset, render_training  # noqa: E402

GOLD = Path(__file__).resolve().parent / "golden"
GOLD.mkdir(exist_ok=True)
AITK_FOLDERS = [{"image_dir": "/WS/datasets/alice/5_alice", "num_repeats": 5}]

for name, cfg in CONFIGS.items():
    train = render_training(cfg, Path("/RUN/dataset.toml"), Path("/RUN/output"), Path("/RUN/logs"),
                            Path("/RUN/sample_prompts.txt") if cfg.sample_prompts else None)
    ds = render_dataset(cfg, [{"image_dir": "/WS/datasets/alice/5_alice", "num_repeats": 5}])
    (GOLD / f"{name}.train.toml").write_text(tomli_w.dumps(train))
    (GOLD / f"{name}.dataset.toml").write_text(tomli_w.dumps(ds))
    print(name, "ok")
for name, cfg in AITK_CONFIGS.items():
    job = render_job(cfg, AITK_FOLDERS, cfg.max_train_steps, None, Path("/RUN/output"), Path("/RUN/logs"))
    (GOLD / f"{name}.job.yaml").write_text(yaml.safe_dump(job, sort_keys=False, allow_unicode=True))
    print(name, "ok")
