"""The workspace database: SQLite in WAL mode, with per-component schema migrations.

Each component (``core``, ``jobs``, ...) owns its tables and an ordered list of
migration scripts. ``Store.ensure_schema(component, migrations)`` applies the
missing ones inside one write transaction, so several processes opening the same
workspace at once never apply a step twice.

>>> import tempfile, pathlib
>>> s = Store(pathlib.Path(tempfile.mkdtemp()) / "t.db")
>>> s.ensure_schema("demo", ["CREATE TABLE t (x INTEGER)"])
1
>>> with s.transaction() as c:
...     _ = c.execute("INSERT INTO t VALUES (1)")
>>> s.query("SELECT x FROM t")
[(1,)]
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

from .errors import StoreError

__all__ = ["Store"]

BUSY_TIMEOUT_MS = 30_000


class Store:
    """A thread-aware handle on one SQLite file (one connection per thread and process)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._pid = None
        with self.transaction() as c:
            c.execute("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")

    # -- connections ---------------------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        """The calling thread's connection (a fresh one after ``fork``)."""
        import os

        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=True)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":  # e.g. a network file system without shared memory
                conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"The workspace database {self.path} cannot be opened ({e}).",
                             fix="Check that the file is a lora-nb database and that the disk is not full; move it aside to start fresh.") from e
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- transactions -------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): the write lock is taken up front.

        Nested use in one thread joins the outer transaction.
        """
        conn = self.connect()
        if conn.in_transaction:
            yield conn
            return
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise StoreError(f"The workspace database stayed locked for {BUSY_TIMEOUT_MS // 1000} s.",
                                     fix="Another process holds it; close stuck notebooks or retry.") from e
                time.sleep(0.05)
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple]:
        """Run a read query and return every row."""
        return self.connect().execute(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one write statement in its own transaction; return the row count."""
        with self.transaction() as c:
            return c.execute(sql, params).rowcount

    # -- schema -------------------------------------------------------------------
    def schema_version(self, component: str) -> int:
        row = self.query("SELECT version FROM schema_versions WHERE component=?", (component,))
        return row[0][0] if row else 0

    def ensure_schema(self, component: str, migrations: Sequence[str]) -> int:
        """Apply the migrations of ``component`` that this database lacks; return its version.

        ``migrations[i]`` takes the component from version ``i`` to ``i + 1``; each is
        one or more SQL statements. A database written by a newer lora-nb (a higher
        version than we know) is refused rather than damaged.
        """
        with self.transaction() as c:
            row = c.execute("SELECT version FROM schema_versions WHERE component=?", (component,)).fetchone()
            current = row[0] if row else 0
            if current > len(migrations):
                raise StoreError(
                    f"The workspace database has schema version {current} for '{component}', newer than this lora-nb knows ({len(migrations)}).",
                    fix="Upgrade lora-nb (pip install -U lora-nb) or use another workspace.")
            for version in range(current, len(migrations)):
                for statement in _split_sql(migrations[version]):
                    c.execute(statement)
            if current != len(migrations):
                c.execute("INSERT INTO schema_versions(component, version) VALUES(?, ?) "
                          "ON CONFLICT(component) DO UPDATE SET version=excluded.version", (component, len(migrations)))
        return len(migrations)


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (``sqlite3.complete_statement`` aware)."""
    statements, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return [s for s in statements if s.rstrip(";").strip()]
