"""Shared fixtures: a fresh workspace per test, in a temporary folder."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import support`
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A new, empty Workspace under tmp_path (LORA_NB_HOME points at it, for child processes too)."""
    import lora_nb

    root = tmp_path / "ws"
    monkeypatch.setenv("LORA_NB_HOME", str(root))
    return lora_nb.Workspace(root)


@pytest.fixture
def fixtures_dir() -> Path:
    """../shared/fixtures (recorded real engine output). Tests that need it skip when it is absent."""
    if not FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is not beside this checkout")
    return FIXTURES


STANDIN_ENGINES = Path(__file__).resolve().parent / "engines"


@pytest.fixture
def model_file(tmp_path):
    """A stand-in base model file (only its existence is checked before a stand-in run)."""
    p = tmp_path / "models" / "sd15.safetensors"
    p.parent.mkdir()
    p.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    return p


@pytest.fixture
def standin_kohya(ws):
    """The kohya engine pointed at the STAND-IN sd-scripts checkout (tests/engines/fake_sdscripts: replays
    recorded real output), launched without accelerate."""
    folder = STANDIN_ENGINES / "fake_sdscripts"
    ws.settings.set("kohya_dir", str(folder))
    ws.settings.set("kohya_python", sys.executable)
    ws.settings.set("kohya_launcher", "python")
    return folder


@pytest.fixture
def standin_aitoolkit(ws):
    """The ai-toolkit engine pointed at the STAND-IN checkout (tests/engines/fake_aitoolkit/run.py)."""
    folder = STANDIN_ENGINES / "fake_aitoolkit"
    ws.settings.set("aitoolkit_dir", str(folder))
    ws.settings.set("aitoolkit_python", sys.executable)
    return folder


@pytest.fixture(scope="session")
def florence(tmp_path_factory):
    """A small RANDOM Florence-2 (transformers' Florence2ForConditionalGeneration from a tiny config, processor and a
    locally trained tokenizer; lora_nb.tagging.caption_tiny), saved once per session: the real captioning path."""
    from lora_nb.tagging.caption_tiny import build_tiny_florence2

    return build_tiny_florence2(tmp_path_factory.mktemp("captioners") / "florence")


@pytest.fixture(scope="session")
def joy(tmp_path_factory):
    """A small RANDOM JoyCaption (LlavaForConditionalGeneration: SigLIP + Llama), saved once per session."""
    from lora_nb.tagging.caption_tiny import build_tiny_joycaption

    return build_tiny_joycaption(tmp_path_factory.mktemp("captioners") / "joy")
