"""Superseded by bench/dashboard_tti.py (time to interactive, median of 5 against a bare Voila notebook in the
same run, plus the 10,000-image gallery page). Kept so that the old command still works:

    .venv/bin/python bench/dashboard_load.py [--images 10000]
"""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.argv[0] = str(Path(__file__).with_name("dashboard_tti.py"))
    runpy.run_path(sys.argv[0], run_name="__main__")
