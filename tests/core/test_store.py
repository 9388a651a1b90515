"""SQLite store: WAL, migrations per component, concurrent writers, newer schemas refused."""
import multiprocessing as mp
import sqlite3

import pytest

from lora_nb.errors import StoreError
from lora_nb.store import Store

MIGRATIONS = ["CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)", "ALTER TABLE items ADD COLUMN n INTEGER DEFAULT 0"]


def test_wal_and_migrations_apply_once(tmp_path):
    s = Store(tmp_path / "db")
    assert s.query("PRAGMA journal_mode")[0][0] == "wal"
    assert s.ensure_schema("items", MIGRATIONS[:1]) == 1
    s.execute("INSERT INTO items(v) VALUES('a')")
    assert s.ensure_schema("items", MIGRATIONS) == 2          # only step 2 runs
    assert s.ensure_schema("items", MIGRATIONS) == 2          # and never again
    assert s.query("SELECT v, n FROM items") == [("a", 0)]
    assert s.schema_version("items") == 2
    assert s.schema_version("other") == 0


def test_a_newer_database_is_refused_not_damaged(tmp_path):
    s = Store(tmp_path / "db")
    s.ensure_schema("items", MIGRATIONS)
    with pytest.raises(StoreError, match="newer than this lora-nb"):
        Store(tmp_path / "db").ensure_schema("items", MIGRATIONS[:1])
    assert s.schema_version("items") == 2


def test_failed_migration_rolls_back_whole(tmp_path):
    s = Store(tmp_path / "db")
    with pytest.raises(sqlite3.OperationalError):
        s.ensure_schema("bad", ["CREATE TABLE ok (x)", "CREATE TABLE ok (x)"])
    assert s.schema_version("bad") == 0
    assert s.query("SELECT name FROM sqlite_master WHERE name='ok'") == []


def test_transaction_rolls_back_on_error(tmp_path):
    s = Store(tmp_path / "db")
    s.ensure_schema("items", MIGRATIONS)
    with pytest.raises(RuntimeError):
        with s.transaction() as c:
            c.execute("INSERT INTO items(v) VALUES('x')")
            raise RuntimeError("boom")
    assert s.query("SELECT count(*) FROM items") == [(0,)]


def test_not_a_database(tmp_path):
    p = tmp_path / "db"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot be opened"):
        Store(p)


def _writer(path, n, tag):
    s = Store(path)
    for i in range(n):
        with s.transaction() as c:
            (cur,) = c.execute("SELECT coalesce(max(n), 0) FROM items").fetchone()
            c.execute("INSERT INTO items(v, n) VALUES(?, ?)", (tag, cur + 1))


def test_concurrent_processes_serialise_read_modify_write(tmp_path):
    path = tmp_path / "db"
    Store(path).ensure_schema("items", MIGRATIONS)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, 50, t)) for t in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    rows = Store(path).query("SELECT n FROM items ORDER BY n")
    assert [r[0] for r in rows] == list(range(1, 101))  # no lost update, no duplicate
