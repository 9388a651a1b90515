"""Regenerate lora_nb/engines/aitoolkit_options.json from ai-toolkit's toolkit/config_modules.py.

Reads the ``kwargs.get('key', default)`` calls of the config classes the job's sections become
(BaseSDTrainProcess: network -> NetworkConfig, train -> TrainConfig, ...) with ``ast``; the type of each
option is the type of its literal default ('any' when the default is not a plain literal).

    python scripts/gen_aitoolkit_options.py /path/to/ai-toolkit [commit]
"""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

SECTIONS = {"network": "NetworkConfig", "save": "SaveConfig", "train": "TrainConfig", "model": "ModelConfig",
            "sample": "SampleConfig", "logging": "LoggingConfig"}
KINDS = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}


def options(source: str) -> dict[str, dict[str, str]]:
    tree = ast.parse(source)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    out: dict[str, dict[str, str]] = {}
    for section, cls in SECTIONS.items():
        keys: dict[str, str] = {}
        for node in ast.walk(classes[cls]):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "kwargs"
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                kind = "any"
                if len(node.args) > 1:
                    try:
                        value = ast.literal_eval(node.args[1])
                        kind = KINDS.get(type(value), "any")
                    except ValueError:
                        pass
                keys.setdefault(node.args[0].value, kind)
        out[section] = dict(sorted(keys.items()))
    return out


def main() -> None:
    root = Path(sys.argv[1])
    data = {"_source": f"ai-toolkit {sys.argv[2] if len(sys.argv) > 2 else ''} toolkit/config_modules.py".replace("  ", " "),
            **options((root / "toolkit" / "config_modules.py").read_text())}
    target = Path(__file__).resolve().parent.parent / "lora_nb" / "engines" / "aitoolkit_options.json"
    target.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{target}: " + ", ".join(f"{k} {len(v)}" for k, v in data.items() if k != "_source"))


if __name__ == "__main__":
    main()
