"""Workspace root resolution, folders, settings (and that secrets never reach the database)."""
from pathlib import Path

import pytest

import lora_nb
from lora_nb.errors import InvalidName, SecretError
from lora_nb.workspace import SUBFOLDERS, default_root


def test_root_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_NB_HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home"
    monkeypatch.delenv("LORA_NB_HOME")
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path / "user"))
    expected = Path("/workspace/lora-nb") if Path("/workspace").is_dir() else tmp_path / "user" / "lora-nb"
    assert default_root() == expected


def test_workspace_creates_folders_and_db(tmp_path):
    ws = lora_nb.Workspace(tmp_path / "w")
    for name in SUBFOLDERS:
        assert (ws.root / name).is_dir()
    assert (ws.root / "lora_nb.db").is_file()
    # opening again keeps what is there
    ws.settings.set("kohya_dir", "/opt/sd-scripts")
    assert lora_nb.Workspace(tmp_path / "w").settings.get("kohya_dir") == "/opt/sd-scripts"


def test_workspace_path_refuses_escape(ws):
    assert ws.path("datasets/a") == ws.root / "datasets" / "a"
    with pytest.raises(InvalidName):
        ws.path("../../etc/passwd")


def test_settings_defaults_and_round_trip(ws):
    assert ws.settings.get("gpu_slots") == 1
    ws.settings.set("gpu_slots", 2)
    ws.settings.set("nested", {"a": [1, 2.5, None]})
    assert ws.settings.get("gpu_slots") == 2
    assert ws.settings.all()["nested"] == {"a": [1, 2.5, None]}
    ws.settings.delete("gpu_slots")
    assert ws.settings.get("gpu_slots") == 1


@pytest.mark.parametrize("key, value", [("hf_token", "x"), ("civitai_api_key", "x"), ("note", "hf_" + "a" * 34)])
def test_secrets_are_refused_and_never_written(ws, key, value):
    with pytest.raises(SecretError, match="never stored"):
        ws.settings.set(key, value)
    data = (ws.root / "lora_nb.db").read_bytes()
    for suffix in ("", "-wal"):
        f = ws.root / f"lora_nb.db{suffix}"
        if f.exists():
            assert value.encode() not in f.read_bytes() or value == "x"
    assert key not in ws.settings.all()


def test_secret_names_are_credentials_not_option_names_that_contain_token():
    from lora_nb.settings import looks_secret

    for name in ("HF_TOKEN", "CIVITAI_TOKEN", "hub_token", "api_key", "AWS_SECRET_ACCESS_KEY", "password", "auth_token"):
        assert looks_secret(name), name
    for name in ("tokenizer_cache_dir", "max_token_length", "TOKENIZERS_PARALLELISM", "keep_tokens"):
        assert not looks_secret(name), name
    assert looks_secret("anything", "hf_abcdefghijklmnopqrstuvwxyz12")
