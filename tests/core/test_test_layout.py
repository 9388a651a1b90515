"""The suite runs without __init__.py files (pytest's default 'prepend' import mode), so two
test modules with the same basename in different folders break collection on a clean clone.
This guard fails with the names to rename instead of pytest's confusing 'import file mismatch'."""
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_basenames_are_unique() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py") if "fake_sdscripts" not in p.parts)
    dupes = sorted(n for n, c in names.items() if c > 1)
    assert not dupes, f"rename these test modules so their basenames are unique: {dupes}"
