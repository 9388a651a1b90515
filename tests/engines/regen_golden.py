"""Regenerate tests/engines/golden from tests/golden_configs.py: .venv/bin/python tests/engines/regen_golden.py (review the diff!)."""
import sys
from pathlib import Path
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lora_nb
from lora_nb.engines.kohya import render_training, render_dataset
import tomli_w
GOLD = Path(__file__).resolve().parent / "golden"
GOLD.mkdir(exist_ok=True)
from golden_configs import CONFIGS
for name, cfg in CONFIGS.items():
    train = render_training(cfg, Path("/RUN/dataset.toml"), Path("/RUN/output"), Path("/RUN/logs"), Path("/RUN/sample_prompts.txt") if cfg.sample_prompts else None)
    ds = render_dataset(cfg, [{"image_dir": "/WS/datasets/alice/5_alice", "num_repeats": 5}])
    (GOLD / f"{name}.train.toml").write_text(tomli_w.dumps(train))
    (GOLD / f"{name}.dataset.toml").write_text(tomli_w.dumps(ds))
    print(name, "ok")
