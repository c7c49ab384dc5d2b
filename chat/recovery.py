"""A chat database that cannot be used as it is: find out, keep it aside, or read what is left.

``problem(path)`` says why the database cannot be opened for writing, or ``None``
when it can (it is then opened and closed again, and checked with SQLite's
``quick_check``). ``readable(path)`` says whether SQLite can still read its
conversations read-only. ``keep_aside(path)`` renames it (with its ``-wal`` and
``-shm`` files) to ``<name>.damaged-<time>``, so that a new one can start: nothing
is ever deleted.
"""
from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Optional
from urllib.parse import quote

from chat.records import ChatStoreError, StoreLockedError


def is_damage(exc: BaseException) -> bool:
    """True when ``exc`` (from ``ChatStore.open`` or a query) means the file itself is bad."""
    if isinstance(exc, sqlite3.DatabaseError):
        return True
    return isinstance(exc, ChatStoreError) and isinstance(exc.__cause__, sqlite3.DatabaseError)


def integrity_problem(path: Path) -> Optional[str]:
    """SQLite's quick check of the file, read-only: None when it is sound, else the first finding."""
    try:
        conn = sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        conn.close()
    findings = [r[0] for r in rows if r and r[0] != "ok"]
    if not findings:
        return None
    first = findings[0].replace("*** in database main ***", "").strip().splitlines()
    return f"SQLite's check found damage ({first[0] if first else 'unreadable pages'})"


def readable(path: Path) -> bool:
    """Whether the conversations can still be listed read-only."""
    from chat.store import ChatStore

    try:
        store = ChatStore.open(path, read_only=True)
    except (ChatStoreError, sqlite3.Error, OSError):
        return False
    try:
        store.list(include_archived=True)
        return True
    except (ChatStoreError, sqlite3.Error):
        return False
    finally:
        store.close()


def keep_aside(path: Path) -> Path:
    """Rename the database (and its WAL files) out of the way; returns the new name of the main file."""
    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    suffix = f".damaged-{stamp}"
    n = 1
    while path.with_name(path.name + suffix).exists():
        n += 1
        suffix = f".damaged-{stamp}-{n}"
    target = path.with_name(path.name + suffix)
    for extra in ("-wal", "-shm"):
        side = path.with_name(path.name + extra)
        if side.exists():
            os.replace(side, target.with_name(target.name + extra))
    os.replace(path, target)
    return target


def problem(path: Path) -> Optional[str]:
    """Why the database cannot be used for writing (damaged), or None if it can.

    ``StoreLockedError`` (another window has it) is raised, not returned: that is
    not damage. Other store errors (a newer schema) are raised as well.
    """
    from chat.store import ChatStore

    if not Path(path).exists():
        return None
    try:
        store = ChatStore.open(path)
    except StoreLockedError:
        raise
    except (ChatStoreError, sqlite3.DatabaseError) as exc:
        if is_damage(exc):
            return str(exc)
        raise
    store.close()
    return integrity_problem(path)
