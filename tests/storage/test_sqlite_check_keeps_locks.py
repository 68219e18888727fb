"""Checking a database file's header keeps this process's SQLite locks (``check_is_sqlite``).

POSIX drops every lock a process holds on a file when it closes any descriptor of that file;
a header read with a plain ``open`` did so under a live connection of the same process (the
API, or a sweep's second launch), and another process could then write, or delete the
write-ahead log, under it (seen in the sweep benchmark: a "disk I/O error" and lost trials)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from storage.sqlite_file import check_is_sqlite

TRY_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    conn.execute("BEGIN EXCLUSIVE")
except sqlite3.OperationalError as exc:
    print(exc)
else:
    print("acquired")
"""


def other_process_locks(path: Path) -> str:
    out = subprocess.run([sys.executable, "-c", TRY_LOCK, str(path)], capture_output=True,
                         text=True, check=True, timeout=60)  # fmt: skip
    return out.stdout.strip()


def test_the_header_check_keeps_this_process_locks(tmp_path: Path) -> None:
    path = tmp_path / "studies.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")  # this process holds the file's write lock
    holder.execute("INSERT INTO t VALUES (1)")
    assert other_process_locks(path) == "database is locked"
    check_is_sqlite(path)
    assert other_process_locks(path) == "database is locked"  # still ours
    holder.execute("COMMIT")
    holder.close()
    assert other_process_locks(path) == "acquired"
