"""The single name/path validator: nothing user-supplied may lead outside the workspace."""
import os

import pytest

from lora_nb.errors import InvalidName, LoraNbError
from lora_nb.paths import is_within, safe_join, safe_name


@pytest.mark.parametrize("name", ["alice", "alice_v2", "my set (v2)", "a.b-c+d", "1_concept", "x" * 128])
def test_good_names_pass_unchanged(name):
    assert safe_name(name) == name


@pytest.mark.parametrize("name, words", [
    ("", "empty"),
    ("..", "dot"),
    (".hidden", "dot"),
    ("a/b", "separator"),
    ("a\\b", "separator"),
    ("a\x00b", "NUL"),
    ("CON", "reserved"),
    ("nul.txt", "reserved"),
    ("lpt1", "reserved"),
    (" lead", "space"),
    ("trail ", "space"),
    ("dot.", "dot"),
    ("x" * 129, "limit"),
    ("tab\there", "not allowed"),
    ("new\nline", "not allowed"),
    ("semi;colon", "not allowed"),
])
def test_bad_names_are_refused_with_a_reason_and_a_fix(name, words):
    with pytest.raises(InvalidName) as info:
        safe_name(name, "dataset name")
    err = info.value
    assert isinstance(err, LoraNbError) and isinstance(err, ValueError)
    assert words.lower() in str(err).lower()
    assert err.fix, "every error carries the fix"


def test_non_string_name():
    with pytest.raises(InvalidName, match="must be text"):
        safe_name(42)


def test_safe_join_stays_inside(tmp_path):
    assert safe_join(tmp_path, "a/b/c.png") == (tmp_path / "a" / "b" / "c.png").resolve()
    assert safe_join(tmp_path, "a\\b.png") == (tmp_path / "a" / "b.png").resolve()  # ZIPs made on Windows
    assert safe_join(tmp_path, "./a//b.png") == (tmp_path / "a" / "b.png").resolve()


@pytest.mark.parametrize("rel", ["../x", "a/../../x", "/etc/passwd", "C:/Windows/x", "C:\\x", "a/\x00/b", "", ".", "a/CON/b", "a/.git/config"])
def test_safe_join_refuses_escapes(tmp_path, rel):
    with pytest.raises(InvalidName):
        safe_join(tmp_path, rel)
    assert list(tmp_path.iterdir()) == []  # nothing was created while checking


def test_safe_join_refuses_a_symlink_that_leaves(tmp_path):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "link")
    with pytest.raises(InvalidName, match="link"):
        safe_join(root, "link/file.txt")
    os.symlink(root / "inner", root / "ok")
    (root / "inner").mkdir()
    assert is_within(safe_join(root, "ok/file.txt"), root)
